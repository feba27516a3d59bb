// The container image (Containerfile; README "Container image"). Where containers cannot
// be started (crun refuses cgroups in hybrid mode), the image is still built and run:
// the Debian 12 base made from Debian's packages (deploy/container/make-base.sh), the image
// built by `make image`'s script with buildah, its metadata checked, then its root
// filesystem run under bwrap as PID 1 of a new PID namespace, read-only, with the image's
// user, environment, working directory and entrypoint, on the host's network: the seed's
// `docker run` variables against the local Azure stand-in. Skipped, saying why, without
// buildah, bwrap, mmdebstrap or root; CI installs them (.ci/run).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import {
  ROOT, descendants, freePort, isRunning, openStream, postJson, request, sleep, startChild, tempDir, waitFor,
} from './harness.mjs';

// AOP_IMAGE=name: check an image built already (`make image`) instead of building one.
const TAG = process.env.AOP_IMAGE || 'localhost/azure-openai-proxy:integration-test';
const VERSION = /^VERSION\s*:=\s*(\S+)/m.exec(fs.readFileSync(path.join(ROOT, 'Makefile'), 'utf8'))[1];
const TOOLS = ['buildah', 'bwrap', 'mmdebstrap'];
const missing = TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const skip = missing.length ? `needs ${missing.join(', ')} (apt-get install buildah bubblewrap mmdebstrap)`
  : process.getuid() !== 0 ? 'needs root (buildah storage, bwrap setting the image user)' : false;

// Runs a command to its end without blocking the event loop; throws with its output's tail.
function run(command, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('nice', [command, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('close', (code) => (code === 0 ? resolve(output.trim())
      : reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output.slice(-4000)}`))));
  });
}

// The image as a container runtime would start it: its root filesystem read-only, /tmp and
// /dev/shm as tmpfs (as `--read-only --tmpfs /tmp`), its Env, WorkingDir and User, its
// Entrypoint as PID 1 of a new PID namespace. bwrap writes the host PID of that PID 1 to fd 3.
// `cgroup`: a directory shown as /sys/fs/cgroup (the container's own cgroup, as Docker shows it).
// `mounts`: [host directory, path in the image] pairs, bound read-only (as `-v dir:path:ro`).
function sandbox(rootfs, config, env, { command = [...config.Entrypoint, ...(config.Cmd || [])], cgroup, mounts = [] } = {}) {
  const [uid, gid = uid] = config.User.split(':');
  const args = ['--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev',
    '--perms', '1777', '--tmpfs', '/tmp', '--perms', '1777', '--tmpfs', '/dev/shm',
    ...(cgroup ? ['--tmpfs', '/sys', '--perms', '0755', '--dir', '/sys/fs', '--ro-bind', cgroup, '/sys/fs/cgroup'] : []),
    ...mounts.flatMap(([from, to]) => ['--ro-bind', from, to]),
    '--unshare-pid', '--as-pid-1', '--die-with-parent', '--info-fd', '3', '--clearenv', '--chdir', config.WorkingDir];
  const environment = Object.fromEntries(config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  for (const [name, value] of Object.entries({ ...environment, ...env })) args.push('--setenv', name, value);
  // setpriv execs the entrypoint in the same process: PID 1 stays PID 1, as the image's user.
  args.push('/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', ...command);
  const box = startChild('bwrap', args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  box.pid1 = new Promise((resolve, reject) => {
    let info = '';
    box.child.stdio[3].on('data', (d) => { info += d; });
    box.child.stdio[3].on('end', () => {
      try { resolve(JSON.parse(info)['child-pid']); } catch { reject(new Error(`bwrap info: ${info}`)); }
    });
  });
  return box;
}

// Stops a sandbox: its PID 1 first (SIGTERM, then SIGKILL, which ends every process of its PID
// namespace), then bwrap. Killing bwrap alone leaves the image's processes running.
async function stopSandbox(box) {
  const pid1 = await Promise.race([box.pid1.catch(() => null), sleep(1000).then(() => null)]);
  if (pid1 && isRunning(pid1)) {
    try { process.kill(pid1, 'SIGTERM'); } catch {}
    await waitFor(() => !isRunning(pid1), 'the image to stop', 3000).catch(() => {
      try { process.kill(pid1, 'SIGKILL'); } catch {}
    });
  }
  await box.stop('SIGKILL', 1000);
}

function statusField(pid, field) {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return line.slice(field.length + 1).trim().split(/\s+/);
}

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
    let mock, box, url, pid1, started, served;
    const processes = [];

    before(async () => {
      mock = createAzureMock();
      await mock.listen();
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      const seedEnv = {
        AZURE_OPENAI_ENDPOINT: mock.url,
        AZURE_OPENAI_MODEL_MAPPER: 'gpt-3.5-turbo=gpt-35-turbo,gpt-3.5-turbo-0301=gpt-35-turbo-0301',
        AZURE_OPENAI_APIVERSION: '2024-10-21',
        AZURE_OPENAI_PROXY_ADDRESS: `127.0.0.1:${port}`,  // loopback: the tests' rule
      };
      // A quota of half a CPU: the proxy gets one event loop, whatever the host has.
      const cgroup = tempDir('cgroup');
      fs.writeFileSync(path.join(cgroup, 'cpu.max'), '50000 100000\n');
      fs.chmodSync(cgroup, 0o755);  // readable by the image's user
      started = Date.now();
      box = sandbox(rootfs, config, seedEnv, { cgroup });
      await waitFor(async () => box.exited || (await request(`${url}/healthz`).catch(() => ({}))).status === 200,
        'the image to serve /healthz', 10000);
      served = Date.now() - started;
      if (box.exited) throw new Error(`the image's entrypoint exited: ${box.output}`);
      pid1 = await box.pid1;
    }, { timeout: STEP_MS });

    after(async () => {
      if (box) await stopSandbox(box);
      if (mock) await mock.close();
    });

    it('serves at once, as the image user, with tini as PID 1 and the root filesystem read-only', { timeout: STEP_MS }, async (t) => {
      // Within 1 s on an idle machine (README); the bound leaves room for a loaded one.
      t.diagnostic(`serving ${served} ms after bwrap started`);
      assert.ok(served < 2000, `${served} ms`);
      assert.deepEqual(statusField(pid1, 'NSpid').slice(-1), ['1'], 'PID 1 of its namespace');
      assert.match(fs.readFileSync(`/proc/${pid1}/cmdline`, 'utf8'), /^\/usr\/bin\/tini\0/);
      processes.push(pid1, ...descendants(pid1));
      const proxy = processes.find((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('/usr/local/bin/azure-openai-proxy'));
      assert.ok(proxy, 'lighttpd started the proxy');
      assert.ok(processes.some((pid) => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'lighttpd'));
      for (const pid of processes) assert.equal(statusField(pid, 'Uid')[0], config.User.split(':')[0], `pid ${pid}`);
      assert.equal(fs.readlinkSync(`/proc/${pid1}/cwd`), config.WorkingDir);
      assert.ok(fs.readFileSync(`/proc/${proxy}/environ`, 'utf8').split('\0').includes('AZURE_OPENAI_PROXY_THREADS=1'),
        'event loops from the CPU quota');
      const health = sandbox(rootfs, config, { AZURE_OPENAI_PROXY_ADDRESS: new URL(url).host }, { command: config.Healthcheck.Test.slice(1) });
      assert.equal((await health.exitPromise).code, 0, `the HEALTHCHECK command: ${health.output}`);
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

    it('stops on SIGTERM to PID 1 within 2 s: the stream in flight cut visibly, no process left', { timeout: STEP_MS }, async () => {
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
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      box = sandbox(rootfs, config, {
        AZURE_OPENAI_ENDPOINT: direct.url,
        AZURE_OPENAI_TOKEN: 'file:/etc/azure-openai-proxy/azure.key',
        AZURE_OPENAI_PROXY_CONFIG: '/etc/azure-openai-proxy/config.json',
        AZURE_OPENAI_PROXY_LOG_FORMAT: 'json',
        AZURE_OPENAI_PROXY_ADDRESS: `127.0.0.1:${port}`,
      }, { mounts: [[etc, '/etc/azure-openai-proxy']] });
      await waitFor(async () => box.exited || (await request(`${url}/healthz`).catch(() => ({}))).status === 200,
        'the image to serve /healthz', 10000);
      if (box.exited) throw new Error(`the image's entrypoint exited: ${box.output}`);
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
});
