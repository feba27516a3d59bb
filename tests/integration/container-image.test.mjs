// The container image (Containerfile; README "Container image"). Where containers cannot
// be started (crun refuses cgroups in hybrid mode), the image is still built and run:
// the Debian 12 base made from Debian's packages (deploy/container/make-base.sh), the image
// built by `make image`'s script with buildah, its metadata checked, then its root
// filesystem run under bwrap as PID 1 of a new PID namespace, read-only, with the image's
// user, environment, working directory and entrypoint, on the host's network: the seed's
// `docker run` variables against the local Azure stand-in. Realtime WebSocket sessions go
// through the image's lighttpd to the companion it runs beside it, and on to the realtime
// stand-in (tests/upstream/azure-realtime-socket.mjs, over TLS). Skipped, saying why, without
// buildah, bwrap, mmdebstrap or root; CI installs them (.ci/run).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { AUDIO_CHUNK_BYTES, startRealtimeSocketStandIn } from '../upstream/azure-realtime-socket.mjs';
import {
  COMPANION, PROXY, healthcheck, programOf, realtimeSession, run, sandbox, serveImage, statusField, stopSandbox,
} from './container-parts.mjs';
import { ROOT, descendants, isRunning, openStream, postJson, request, sleep, tempDir, waitFor } from './harness.mjs';
import { makeCertificate } from './upstream-http2-parts.mjs';

// AOP_IMAGE=name: check an image built already (`make image`) instead of building one.
const TAG = process.env.AOP_IMAGE || 'localhost/azure-openai-proxy:integration-test';
const VERSION = /^VERSION\s*:=\s*(\S+)/m.exec(fs.readFileSync(path.join(ROOT, 'Makefile'), 'utf8'))[1];
const TOOLS = ['buildah', 'bwrap', 'mmdebstrap'];
const missing = TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const skip = missing.length ? `needs ${missing.join(', ')} (apt-get install buildah bubblewrap mmdebstrap)`
  : process.getuid() !== 0 ? 'needs root (buildah storage, bwrap setting the image user)' : false;

// A step that hangs (a build waiting on the network, a PID 1 that ignores SIGTERM) fails
// its test after these times instead of holding the whole run.
const BUILD_MS = 20 * 60 * 1000;
const STEP_MS = 30 * 1000;

describe('the container image', { skip }, () => {
  let config, rootfs, container, sizeBytes;

  before(async () => {
    if (!process.env.AOP_IMAGE) {
      await run('deploy/container/make-base.sh', []);
      await run('deploy/container/build-image.sh', [VERSION, TAG], { BUILDAH_ISOLATION: 'chroot' });
    }
    config = JSON.parse(await run('buildah', ['inspect', '--type', 'image', TAG])).Docker.config;
    container = await run('buildah', ['from', '--pull-never', TAG]);
    rootfs = await run('buildah', ['mount', container]);
    sizeBytes = Number((await run('du', ['-sxb', rootfs])).split(/\s/)[0]);
  }, { timeout: BUILD_MS });

  after(async () => {
    if (!container) return;
    await run('buildah', ['umount', container]).catch(() => {});
    await run('buildah', ['rm', container]).catch(() => {});
  });

  it('runs as a user, not root, on port 8080, with a healthcheck on /healthz, OCI labels, under 100 MB', { timeout: STEP_MS }, (t) => {
    assert.match(config.User, /^[1-9][0-9]*:[1-9][0-9]*$/, 'a numeric user and group other than root');
    assert.deepEqual(Object.keys(config.ExposedPorts), ['8080/tcp']);
    assert.match(config.Healthcheck.Test.join(' '), /^CMD .*healthcheck\.sh$/);
    assert.match(fs.readFileSync(path.join(rootfs, config.Healthcheck.Test[1]), 'utf8'), /\/healthz/);
    assert.equal(config.Labels['org.opencontainers.image.version'], VERSION);
    assert.equal(config.Labels['org.opencontainers.image.licenses'], 'MIT');
    assert.match(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
    assert.match(config.Labels['org.opencontainers.image.source'], /^https:\/\/github\.com\//);
    assert.equal(config.Entrypoint[0], '/usr/bin/tini', 'tini as PID 1');
    t.diagnostic(`image size: ${(sizeBytes / 1e6).toFixed(1)} MB uncompressed`);
    assert.ok(sizeBytes < 100e6, `${sizeBytes} bytes`);
  });

  describe("run as the seed's `docker run`", () => {
    let mock, box, url, pid1, served;
    const processes = [];

    before(async () => {
      mock = createAzureMock();
      await mock.listen();
      const seedEnv = {
        AZURE_OPENAI_ENDPOINT: mock.url,
        AZURE_OPENAI_MODEL_MAPPER: 'gpt-3.5-turbo=gpt-35-turbo,gpt-3.5-turbo-0301=gpt-35-turbo-0301',
        AZURE_OPENAI_APIVERSION: '2024-10-21',
      };
      // A quota of half a CPU: the proxy gets one event loop, whatever the host has.
      const cgroup = tempDir('cgroup');
      fs.writeFileSync(path.join(cgroup, 'cpu.max'), '50000 100000\n');
      fs.chmodSync(cgroup, 0o755);  // readable by the image's user
      ({ box, url, served, pid1 } = await serveImage(rootfs, config, seedEnv, { cgroup }));
    }, { timeout: STEP_MS });

    after(async () => {
      if (box) await stopSandbox(box);
      if (mock) await mock.close();
    });

    it('serves at once, lighttpd and the realtime companion as the image user, with tini as PID 1 and the root filesystem read-only', { timeout: STEP_MS }, async (t) => {
      // Within 1 s on an idle machine (README); the bound leaves room for a loaded one.
      t.diagnostic(`serving ${served} ms after bwrap started`);
      assert.ok(served < 2000, `${served} ms`);
      assert.deepEqual(statusField(pid1, 'NSpid').slice(-1), ['1'], 'PID 1 of its namespace');
      assert.match(fs.readFileSync(`/proc/${pid1}/cmdline`, 'utf8'), /^\/usr\/bin\/tini\0/);
      processes.push(pid1, ...descendants(pid1));
      const proxy = processes.find((pid) => programOf(pid) === PROXY);
      assert.ok(proxy, 'lighttpd started the proxy');
      assert.ok(processes.some((pid) => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'lighttpd'));
      assert.ok(processes.some((pid) => programOf(pid) === COMPANION), 'the realtime companion runs, with no extra flag');
      for (const pid of processes) assert.equal(statusField(pid, 'Uid')[0], config.User.split(':')[0], `pid ${pid}`);
      assert.equal(fs.readlinkSync(`/proc/${pid1}/cwd`), config.WorkingDir);
      assert.ok(fs.readFileSync(`/proc/${proxy}/environ`, 'utf8').split('\0').includes('AZURE_OPENAI_PROXY_THREADS=1'),
        'event loops from the CPU quota');
      const health = await healthcheck(rootfs, config, url);
      assert.equal(health.code, 0, `the HEALTHCHECK command: ${health.output}`);
    });

    it('answers /healthz, a chat through the model mapper, and a stream', { timeout: STEP_MS }, async () => {
      const health = await request(`${url}/healthz`);
      assert.equal(health.json.status, 'ok');
      const chat = await postJson(`${url}/v1/chat/completions`, { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(chat.status, 200, chat.text);
      assert.equal(mock.lastRequest().path, '/openai/deployments/gpt-35-turbo/chat/completions');
      assert.equal(mock.lastRequest().query.get('api-version'), '2024-10-21');
      const stream = openStream(`${url}/v1/chat/completions`, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      await stream.done;
      assert.equal(stream.status, 200);
      assert.ok(stream.events.length > 2 && stream.events.at(-1) === 'data: [DONE]', stream.raw);
      // Logs on stderr, as `docker logs` reads them: the access line of the chat.
      await waitFor(() => /POST \/v1\/chat\/completions model=gpt-3.5-turbo .*status=200/.test(box.output), 'the access log line');
    });

    it('stops on SIGTERM to PID 1 within 2 s: the stream in flight cut visibly, no process left (the companion included)', { timeout: STEP_MS }, async () => {
      const stream = openStream(`${url}/v1/chat/completions`, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] },
        { 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '10000' });
      await stream.waitForEvents(1);
      const stopping = Date.now();
      process.kill(pid1, 'SIGTERM');
      const exited = await Promise.race([box.exitPromise, sleep(5000).then(() => null)]);
      const ms = Date.now() - stopping;
      assert.ok(exited, `still running ${ms} ms after SIGTERM`);
      assert.deepEqual(exited, { code: 0, signal: null }, box.output);
      assert.ok(ms < 2000, `stopped after ${ms} ms`);
      // The stream it cut does not look complete: no [DONE], and no clean end of the answer.
      await assert.rejects(stream.done);
      assert.ok(!stream.raw.includes('[DONE]'));
      const left = processes.filter(isRunning);
      assert.deepEqual(left, [], 'every process of the image ended');
    });
  });

  // Kubernetes and Docker secrets arrive as files: the routing file, the client keys and the
  // upstream keys mounted at /etc/azure-openai-proxy, the server key as `file:`, the access
  // log as JSON on stderr (what a log collector reads).
  describe('with its configuration and secrets mounted at /etc/azure-openai-proxy', () => {
    let direct, routed, box, url;

    before(async () => {
      direct = createAzureMock({ apiKey: 'key-of-the-environment-endpoint' });
      routed = createAzureMock({ apiKey: 'key-of-the-routed-endpoint' });
      await direct.listen();
      await routed.listen();
      const etc = tempDir('etc-aop');
      fs.writeFileSync(path.join(etc, 'azure.key'), 'key-of-the-environment-endpoint\n');
      fs.writeFileSync(path.join(etc, 'routed.key'), 'key-of-the-routed-endpoint\n');
      fs.writeFileSync(path.join(etc, 'alice.key'), 'alice-client-key-0001\n');
      fs.writeFileSync(path.join(etc, 'config.json'), JSON.stringify({
        endpoints: { routed: { url: routed.url, key: 'file:/etc/azure-openai-proxy/routed.key' } },
        models: { 'gpt-4o-mini': ['routed/gpt-4o-mini'] },
        keys: { alice: { key: 'file:/etc/azure-openai-proxy/alice.key', requests_per_minute: 100 } },
      }));
      for (const file of fs.readdirSync(etc)) fs.chmodSync(path.join(etc, file), 0o644);  // the image's user reads them
      fs.chmodSync(etc, 0o755);
      ({ box, url } = await serveImage(rootfs, config, {
        AZURE_OPENAI_ENDPOINT: direct.url,
        AZURE_OPENAI_TOKEN: 'file:/etc/azure-openai-proxy/azure.key',
        AZURE_OPENAI_PROXY_CONFIG: '/etc/azure-openai-proxy/config.json',
        AZURE_OPENAI_PROXY_LOG_FORMAT: 'json',
      }, { mounts: [[etc, '/etc/azure-openai-proxy']] }));
    }, { timeout: STEP_MS });

    after(async () => {
      if (box) await stopSandbox(box);
      if (direct) await direct.close();
      if (routed) await routed.close();
    });

    it('asks for a mounted client key and sends each endpoint its mounted key', { timeout: STEP_MS }, async () => {
      const ask = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };
      const refused = await postJson(`${url}/v1/chat/completions`, ask);
      assert.equal(refused.status, 401, refused.text);
      assert.equal(refused.json.error.code, 'invalid_api_key');
      const alice = { authorization: 'Bearer alice-client-key-0001' };
      const chat = await postJson(`${url}/v1/chat/completions`, ask, alice);
      assert.equal(chat.status, 200, chat.text);
      assert.equal(direct.lastRequest().headers['api-key'], 'key-of-the-environment-endpoint');
      const mini = await postJson(`${url}/v1/chat/completions`, { ...ask, model: 'gpt-4o-mini' }, alice);
      assert.equal(mini.status, 200, mini.text);
      assert.equal(routed.lastRequest().headers['api-key'], 'key-of-the-routed-endpoint');
      assert.equal(routed.lastRequest().path, '/openai/deployments/gpt-4o-mini/chat/completions');
    });

    it('logs each request as one JSON object a line on stderr, with the key by name and no secret', { timeout: STEP_MS }, async () => {
      await waitFor(() => box.output.split('\n').filter((l) => l.startsWith('{')).length >= 3, 'three access lines');
      const lines = box.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      const routedLine = lines.find((l) => l.model === 'gpt-4o-mini');
      assert.ok(routedLine, JSON.stringify(lines));
      assert.equal(routedLine.status, 200);
      assert.equal(routedLine.key, 'alice');
      assert.ok(lines.some((l) => l.status === 401));
      for (const secret of ['alice-client-key-0001', 'key-of-the-environment-endpoint', 'key-of-the-routed-endpoint'])
        assert.ok(!box.output.includes(secret), `${secret} in the output`);
    });
  });

  // Realtime WebSocket sessions (README "Realtime (WebSocket)") as `docker run` serves them:
  // lighttpd hands /v1/realtime to the companion beside it, which opens Azure's session
  // (the stand-in, over TLS: its certificate mounted as the CA bundle) with the server key.
  describe('realtime sessions through the running image', () => {
    const AZURE_KEY = 'azure-resource-key-0001';
    const CLIENT_KEY = 'alice-client-key-0001';
    let standIn, image, companion;

    before(async () => {
      const certificate = makeCertificate();
      const certificates = path.dirname(certificate.certFile);
      fs.chmodSync(certificates, 0o755);
      fs.chmodSync(certificate.certFile, 0o644);  // the image's user reads it
      standIn = await startRealtimeSocketStandIn({ tls: certificate, apiKey: AZURE_KEY });
      image = await serveImage(rootfs, config, {
        AZURE_OPENAI_ENDPOINT: standIn.url,
        AZURE_OPENAI_TOKEN: AZURE_KEY,
        AZURE_OPENAI_PROXY_API_KEYS: `alice:${CLIENT_KEY}`,
        AZURE_OPENAI_PROXY_CA_BUNDLE: '/etc/azure-openai-proxy/cert.pem',
      }, { mounts: [[certificates, '/etc/azure-openai-proxy']] });
      companion = descendants(image.pid1).find((pid) => programOf(pid) === COMPANION);
    }, { timeout: STEP_MS });

    after(async () => {
      if (companion) try { process.kill(companion, 'SIGCONT'); } catch {}
      if (image) await stopSandbox(image.box);
      if (standIn) await standIn.close();
    });

    it('carries a conversation at /v1/realtime both ways, and the client\'s close code reaches Azure', { timeout: STEP_MS }, async () => {
      assert.ok(companion, 'the companion runs');
      assert.equal(statusField(companion, 'Uid')[0], config.User.split(':')[0], 'as the image user');
      const session = realtimeSession(image.url, '/v1/realtime?model=gpt-realtime', CLIENT_KEY);
      assert.deepEqual(await session.opened, { status: 101 });
      assert.equal(session.ws.protocol, 'realtime', 'the answer names realtime, never the key');
      assert.equal((await session.next('session.created')).session.model, 'gpt-realtime');
      session.send({ type: 'session.update', session: { type: 'realtime', instructions: 'Answer briefly.' } });
      assert.equal((await session.next('session.updated')).session.instructions, 'Answer briefly.');
      const audio = Buffer.alloc(AUDIO_CHUNK_BYTES, 7).toString('base64');
      for (let i = 0; i < 10; i++) session.send({ type: 'input_audio_buffer.append', audio });
      session.send({ type: 'input_audio_buffer.commit' });
      await session.next('input_audio_buffer.committed');
      session.send({ type: 'response.create' });
      assert.equal((await session.next('response.done')).response.status, 'completed');
      const deltas = session.events.filter((e) => e.type === 'response.output_audio.delta');
      assert.equal(deltas.length, 5);
      assert.equal(Buffer.from(deltas[0].delta, 'base64').length, AUDIO_CHUNK_BYTES);
      const upstream = standIn.sessions.at(-1);
      assert.equal(upstream.audioBytes, 10 * AUDIO_CHUNK_BYTES, 'every audio chunk reached Azure whole');
      assert.equal(upstream.deployment, 'gpt-realtime');
      session.ws.close(4001, 'done here');
      assert.equal((await upstream.closedPromise).code, 4001, 'Azure got the client\'s code');
      assert.equal(await session.closed, 4001);
      // The session's line on stderr (`docker logs`), the key by name only.
      await waitFor(() => /realtime session key=alice model=gpt-realtime .*client_close=4001/.test(image.box.output), 'the session\'s log line');
      for (const secret of [CLIENT_KEY, AZURE_KEY]) assert.ok(!image.box.output.includes(secret), 'no key in the output');
    });

    it('serves /openai/v1/realtime too, passes Azure\'s close code on, and refuses a wrong key before Azure', { timeout: STEP_MS }, async () => {
      const session = realtimeSession(image.url, '/openai/v1/realtime?model=gpt-realtime', CLIENT_KEY);
      assert.deepEqual(await session.opened, { status: 101 });
      await session.next('session.created');
      standIn.sessions.at(-1).ws.close(4002, 'going');
      assert.equal(await session.closed, 4002);
      const upgrades = standIn.upgrades.length;
      const wrong = await realtimeSession(image.url, '/v1/realtime?model=gpt-realtime', 'wrong-key-0001').opened;
      assert.equal(wrong.status, 401, JSON.stringify(wrong));
      assert.equal(JSON.parse(wrong.body).error.code, 'invalid_api_key');
      assert.equal(standIn.upgrades.length, upgrades, 'nothing reached Azure');
    });

    it('has a HEALTHCHECK that fails when the companion stops answering', { timeout: STEP_MS }, async () => {
      assert.equal((await healthcheck(rootfs, config, image.url)).code, 0);
      process.kill(companion, 'SIGSTOP');  // alive, listening, answering nothing
      try {
        const stuck = await healthcheck(rootfs, config, image.url);
        assert.notEqual(stuck.code, 0, stuck.output);
        assert.match(stuck.output, /realtime companion/);
      } finally {
        process.kill(companion, 'SIGCONT');
      }
      assert.equal((await healthcheck(rootfs, config, image.url)).code, 0, 'healthy again');
    });

    it('stops the container when the companion dies, with a failure status, no process left', { timeout: STEP_MS }, async () => {
      const processes = [image.pid1, ...descendants(image.pid1)];
      process.kill(companion, 'SIGKILL');
      const exited = await Promise.race([image.box.exitPromise, sleep(5000).then(() => null)]);
      assert.ok(exited, 'the container still runs 5 s after its companion died');
      assert.notEqual(exited.code, 0, 'a status the orchestrator restarts on');
      assert.match(image.box.output, /azure-openai-proxy-realtime ended \(status 137\): stopping the container/);
      assert.deepEqual(processes.filter(isRunning), [], 'lighttpd and the proxy ended with it');
    });
  });

  describe('with AZURE_OPENAI_PROXY_REALTIME=off, or a realtime setting the companion refuses', () => {
    let mock, image;

    before(async () => {
      mock = createAzureMock();
      await mock.listen();
      image = await serveImage(rootfs, config, { AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_PROXY_REALTIME: 'off' });
    }, { timeout: STEP_MS });

    after(async () => {
      if (image) await stopSandbox(image.box);
      if (mock) await mock.close();
    });

    it('runs no companion: /v1/realtime is the FastCGI program\'s 501, and the HEALTHCHECK passes', { timeout: STEP_MS }, async () => {
      const processes = descendants(image.pid1);
      assert.ok(processes.some((pid) => programOf(pid) === PROXY));
      assert.ok(!processes.some((pid) => programOf(pid) === COMPANION));
      const refused = await realtimeSession(image.url, '/v1/realtime?model=gpt-realtime', 'client-key-0001').opened;
      assert.equal(refused.status, 501, JSON.stringify(refused));
      assert.equal(JSON.parse(refused.body).error.type, 'invalid_request_error');
      const health = await healthcheck(rootfs, config, image.url, { AZURE_OPENAI_PROXY_REALTIME: 'off' });
      assert.equal(health.code, 0, health.output);
    });

    it('refuses to start with a value other than on or off, naming the variable', { timeout: STEP_MS }, async () => {
      const box = sandbox(rootfs, config, { AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_PROXY_REALTIME: 'maybe' });
      const exited = await Promise.race([box.exitPromise, sleep(5000).then(() => null)]);
      if (!exited) await stopSandbox(box);
      assert.deepEqual(exited, { code: 2, signal: null }, box.output);
      assert.match(box.output, /AZURE_OPENAI_PROXY_REALTIME: on or off, not 'maybe'/);
    });

    it('with realtime on, a companion that refuses its settings stops the start, saying how to do without it', { timeout: STEP_MS }, async () => {
      const box = sandbox(rootfs, config, { AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_PROXY_REALTIME_MAX_SESSIONS: 'many' });
      const exited = await Promise.race([box.exitPromise, sleep(5000).then(() => null)]);
      if (!exited) await stopSandbox(box);
      assert.deepEqual(exited, { code: 2, signal: null }, box.output);
      assert.match(box.output, /^azure-openai-proxy-realtime: AZURE_OPENAI_PROXY_REALTIME_MAX_SESSIONS: /m);
      assert.match(box.output, /AZURE_OPENAI_PROXY_REALTIME=off serves without realtime sessions/);
      assert.doesNotMatch(box.output, /server started/, 'lighttpd never started');
    });
  });
});
