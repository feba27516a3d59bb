// Every host the proxy ships configuration for, each started for real on loopback with
// the files from deploy/ (rendered for test ports and paths), and put through the same
// checks: answers, unbuffered streams, root and sub-path mounts, chunked and 5 MiB bodies,
// forward-proxy use, abandoned streams, and a clean stop.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import {
  PROXY_BIN, ROOT, canConnect, curl, freePort, openStream, postJson, processesMentioning,
  request, sanitizerReports, sleep, startChild, streamInLockstep, tempDir, waitFor,
} from './harness.mjs';

const KEY = 'server-test-key';
const PLACEHOLDER_ENDPOINT = 'https://YOUR-RESOURCE.openai.azure.com';
const APACHE_MODULES = '/usr/lib/apache2/modules';
const chat = (extra = {}) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], ...extra });
const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');

// Copies a shipped file with its placeholders replaced by test values.
function render(relative, replacements, destination) {
  let text = fs.readFileSync(path.join(ROOT, 'deploy', relative), 'utf8');
  for (const [from, to] of Object.entries(replacements)) {
    assert.ok(text.includes(from), `${relative} contains ${from}`);
    text = text.split(from).join(to);
  }
  fs.writeFileSync(destination, text);
  return destination;
}

// A directory other users (www-data, nobody) can enter: the web server and the workers
// run as them.
function sharedDir(name) {
  const dir = tempDir(name);
  fs.chmodSync(dir, 0o755);
  return dir;
}

// The test binary, copied where a web server that runs as www-data may execute it.
function installProgram(dir) {
  const program = path.join(dir, 'azure-openai-proxy');
  fs.copyFileSync(PROXY_BIN, program);
  fs.chmodSync(program, 0o755);
  return program;
}

async function listening(server, port, what) {
  await waitFor(async () => server.exited || canConnect({ host: '127.0.0.1', port }), what, 15000);
  if (server.exited) throw new Error(`${what} exited at start: ${server.output}`);
}

// Runs deploy/spawn-fcgi/azure-openai-proxy-spawn: N workers on a unix socket owned by
// www-data, running as nobody.
async function startSpawnFcgi(mock, dir) {
  const socket = path.join(dir, 'proxy.sock');
  const service = startChild(path.join(ROOT, 'deploy/spawn-fcgi/azure-openai-proxy-spawn'), [], {
    env: {
      PATH: process.env.PATH, ASAN_OPTIONS: 'detect_leaks=0',
      AOP_PROGRAM: installProgram(dir), AOP_SOCKET: socket, AOP_WORKERS: '2',
      AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_PROXY_THREADS: '4',
    },
  });
  await waitFor(async () => service.exited || (fs.existsSync(socket) && await canConnect({ path: socket })), 'spawn-fcgi', 15000);
  if (service.exited) throw new Error(`spawn-fcgi exited: ${service.output}`);
  const stat = fs.statSync(socket);
  assert.equal(stat.mode & 0o777, 0o660, 'the socket is mode 0660');
  assert.equal(stat.uid, 33, 'the socket belongs to www-data');
  return { service, socket };
}

function apacheBase({ dir, port, modules, extra = '' }) {
  fs.mkdirSync(path.join(dir, 'run'), { recursive: true });
  fs.chownSync(path.join(dir, 'run'), 33, 33);
  const load = modules.map((m) => `LoadModule ${m}_module ${APACHE_MODULES}/mod_${m}.so`).join('\n');
  return `
${load}
ServerName localhost
Listen 127.0.0.1:${port}
PidFile ${dir}/httpd.pid
DefaultRuntimeDir ${dir}/run
ErrorLog ${dir}/error.log
LogLevel warn
User www-data
Group www-data
MaxRequestWorkers 50
<IfModule mod_mime.c>
    TypesConfig /dev/null
</IfModule>
<IfModule mod_cgid.c>
    ScriptSock ${dir}/run/cgid.sock
</IfModule>
<IfModule mod_fcgid.c>
    FcgidIPCDir ${dir}/run/fcgid
    FcgidProcessTableFile ${dir}/run/fcgid_shm
</IfModule>
${extra}
`;
}

async function startApache(dir, port, configText) {
  const config = path.join(dir, 'httpd.conf');
  fs.writeFileSync(config, configText);
  const server = startChild('apache2', ['-f', config, '-DFOREGROUND'], { env: { PATH: process.env.PATH } });
  await listening(server, port, 'apache');
  server.errorLog = () => { try { return fs.readFileSync(path.join(dir, 'error.log'), 'utf8'); } catch { return ''; } };
  return server;
}

const HOSTS = {
  async lighttpd(mock) {
    const dir = sharedDir('lighttpd');
    const port = await freePort();
    const program = installProgram(dir);
    const replacements = (socket) => ({
      [socket]: path.join(dir, path.basename(socket)),
      '/usr/local/bin/azure-openai-proxy': program,
      [PLACEHOLDER_ENDPOINT]: mock.url,
    });
    const root = render('lighttpd/azure-openai-proxy.conf', replacements('/run/lighttpd/azure-openai-proxy.sock'), path.join(dir, 'root.conf'));
    const sub = render('lighttpd/azure-openai-proxy-subpath.conf', replacements('/run/lighttpd/azure-openai-proxy-subpath.sock'), path.join(dir, 'sub.conf'));
    // One lighttpd per mount: each snippet is a complete way to mount the proxy.
    const servers = [];
    const ports = [port, await freePort()];
    for (const [i, snippet] of [root, sub].entries()) {
      const config = path.join(dir, `lighttpd-${i}.conf`);
      fs.writeFileSync(config, `server.document-root = "${dir}"\nserver.bind = "127.0.0.1"\nserver.port = ${ports[i]}\ninclude "${snippet}"\n`);
      const server = startChild('lighttpd', ['-D', '-f', config], { env: { PATH: process.env.PATH } });
      await listening(server, ports[i], 'lighttpd');
      servers.push(server);
    }
    return {
      rootUrl: `http://127.0.0.1:${ports[0]}`, subUrl: `http://127.0.0.1:${ports[1]}/openai-proxy`,
      dir, logs: () => servers.map((s) => s.output).join(''),
      stop: async () => { for (const s of servers) await s.stop(); },
      // lighttpd: SIGUSR1 finishes what runs, then restarts, backends included.
      gracefulRestart: async () => {
        process.kill(servers[0].pid, 'SIGUSR1');
        await sleep(1000);
        await listening(servers[0], ports[0], 'lighttpd after a graceful restart');
      },
    };
  },

  async nginx(mock, env = {}) {
    // nginx in front of a proxy that listens on its own socket, given to www-data.
    const dir = sharedDir('nginx');
    const socket = path.join(dir, 'proxy.sock');
    const proxy = startChild(installProgram(dir), ['--listen', socket], {
      env: {
        PATH: process.env.PATH, ASAN_OPTIONS: 'detect_leaks=0', AZURE_OPENAI_ENDPOINT: mock.url,
        AZURE_OPENAI_PROXY_FCGI_SOCKET_OWNER: 'www-data:www-data', AZURE_OPENAI_PROXY_THREADS: '8', ...env,
      },
    });
    await waitFor(async () => proxy.exited || (fs.existsSync(socket) && await canConnect({ path: socket })), 'proxy', 15000);
    return startNginx(dir, socket, [proxy]);
  },

  async 'spawn-fcgi behind nginx'(mock) {
    const dir = sharedDir('spawn');
    const { service, socket } = await startSpawnFcgi(mock, dir);
    return startNginx(dir, socket, [service]);
  },

  async 'apache mod_proxy_fcgi'(mock) {
    const dir = sharedDir('apache-proxy');
    const port = await freePort();
    const { service, socket } = await startSpawnFcgi(mock, dir);
    const site = render('apache/proxy-fcgi.conf', {
      '/run/azure-openai-proxy/proxy.sock': socket, '<VirtualHost *:80>': `<VirtualHost *:${port}>`,
    }, path.join(dir, 'site.conf'));
    const server = await startApache(dir, port, apacheBase({
      dir, port, modules: ['mpm_event', 'authz_core', 'proxy', 'proxy_fcgi', 'setenvif'], extra: `Include ${site}`,
    }));
    return hostOf(dir, port, [server, service], async () => { await server.stop(); await service.stop(); }, server.errorLog);
  },

  async 'apache mod_fcgid'(mock) {
    const dir = sharedDir('apache-fcgid');
    const port = await freePort();
    const lib = path.join(dir, 'lib');
    fs.mkdirSync(lib, { mode: 0o755 });
    installProgram(lib);
    const conf = render('apache/fcgid.conf', {
      '/usr/local/lib/azure-openai-proxy': lib, [PLACEHOLDER_ENDPOINT]: mock.url,
    }, path.join(dir, 'fcgid.conf'));
    const server = await startApache(dir, port, apacheBase({
      dir, port, modules: ['mpm_event', 'authz_core', 'alias', 'fcgid'], extra: `Include ${conf}`,
    }));
    return hostOf(dir, port, [server], () => server.stop(), server.errorLog);
  },

  'apache CGI (shared hosting .htaccess)': (mock) => startSharedHosting(mock, ['cgid']),
  // The same files on a host with mod_fcgid set up for streaming (the host's settings,
  // which .htaccess cannot change; at mod_fcgid's defaults streams arrive in one lump, see
  // deploy/apache/README.md).
  'apache mod_fcgid (shared hosting .htaccess)': (mock) => startSharedHosting(mock, ['fcgid'],
    'FcgidOutputBufferSize 0\nFcgidMaxRequestLen 67108864\nFcgidIOTimeout 3600'),
};

async function startSharedHosting(mock, modules, hostSettings = '') {
  const dir = sharedDir('apache-shared');
  const port = await freePort();
  const www = path.join(dir, 'www');
  // The same files at the site's root (base URL /v1) and in a sub-directory.
  for (const target of [www, path.join(www, 'openai-proxy')]) {
    fs.mkdirSync(target, { recursive: true, mode: 0o755 });
    for (const file of ['.htaccess', 'azure-openai-proxy.fcgi'])
      fs.copyFileSync(path.join(ROOT, 'deploy/apache/shared-hosting', file), path.join(target, file));
    fs.chmodSync(path.join(target, 'azure-openai-proxy.fcgi'), 0o755);
    render('apache/shared-hosting/settings.env', { [PLACEHOLDER_ENDPOINT]: mock.url }, path.join(target, 'settings.env'));
    installProgram(target);
  }
  const server = await startApache(dir, port, apacheBase({
    dir, port, modules: ['mpm_event', 'authz_core', 'rewrite', 'mime', ...modules],
    extra: `${hostSettings}\nDocumentRoot ${www}\n<Directory ${www}>\n    AllowOverride All\n    Require all granted\n</Directory>`,
  }));
  return hostOf(dir, port, [server], () => server.stop(), server.errorLog);
}

function hostOf(dir, port, processes, stop, logs) {
  return {
    rootUrl: `http://127.0.0.1:${port}`, subUrl: `http://127.0.0.1:${port}/openai-proxy`,
    dir, stop, logs: () => processes.map((p) => p.output).join('') + (logs ? logs() : ''),
    // Apache: SIGUSR1 is a graceful restart (`apachectl graceful`); nginx: SIGHUP reloads.
    gracefulRestart: async () => {
      process.kill(processes[0].pid, processes[0].child.spawnfile === 'nginx' ? 'SIGHUP' : 'SIGUSR1');
      await sleep(1500);
      await listening(processes[0], port, 'the server after a graceful restart');
    },
  };
}

async function startNginx(dir, socket, services) {
  const port = await freePort();
  const site = render('nginx/azure-openai-proxy.conf', {
    'listen 80 default_server': `listen 127.0.0.1:${port} default_server`,
    'unix:/run/azure-openai-proxy/proxy.sock': `unix:${socket}`,
  }, path.join(dir, 'site.conf'));
  const config = path.join(dir, 'nginx.conf');
  fs.writeFileSync(config, `
user www-data;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/body;
    include ${site};
}
`);
  const server = startChild('nginx', ['-c', config, '-p', dir], { env: { PATH: process.env.PATH } });
  await listening(server, port, 'nginx');
  return hostOf(dir, port, [server, ...services], async () => { await server.stop(); for (const s of services) await s.stop(); });
}

for (const [name, start] of Object.entries(HOSTS)) {
  describe(name, () => {
    let mock, host;

    before(async () => {
      mock = createAzureMock({ apiKey: KEY });
      await mock.listen();
      host = await start(mock);
    });

    after(async () => {
      await host?.stop();
      await mock?.close();
    });

    const headers = { authorization: `Bearer ${KEY}` };

    it('answers a chat completion and an embedding with the upstream answer', async () => {
      let res = await postJson(`${host.rootUrl}/v1/chat/completions`, chat(), headers);
      assert.equal(res.status, 200, res.text);
      assert.match(res.json.choices[0].message.content, /You said: hi/);
      assert.equal(mock.lastRequest().headers['api-key'], KEY, 'the client key arrived as api-key');
      assert.equal(mock.lastRequest().path, '/openai/deployments/gpt-4o/chat/completions');
      res = await postJson(`${host.rootUrl}/v1/embeddings`, { model: 'text-embedding-3-small', input: 'x' }, headers);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.object, 'list');
    });

    it('streams each event before the upstream sends the next', async () => {
      const { stream, late } = await streamInLockstep(mock, `${host.rootUrl}/v1/chat/completions`, chat({ stream: true }), headers);
      assert.deepEqual(late, []);
      assert.equal(stream.events[stream.events.length - 1], 'data: [DONE]');
    });

    it('works mounted under a sub-path', async () => {
      const res = await postJson(`${host.subUrl}/v1/chat/completions`, chat(), headers);
      assert.equal(res.status, 200, res.text);
      assert.equal(mock.lastRequest().path, '/openai/deployments/gpt-4o/chat/completions');
      const models = await request(`${host.subUrl}/v1/models`);
      assert.equal(models.json.object, 'list');
    });

    it('passes a chunked body and a 5 MiB body intact', async () => {
      const small = JSON.stringify({ model: 'text-embedding-3-small', input: 'chunked body' });
      let res = await curl([`${host.rootUrl}/v1/embeddings`, '-H', `Authorization: Bearer ${KEY}`, '-H', 'Transfer-Encoding: chunked',
        '-H', 'Content-Type: application/json', '--data-binary', small]);
      assert.equal(res.status, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).object, 'list', res.stdout);
      assert.equal(mock.lastRequest().sha256, sha256(small));

      const big = JSON.stringify({ model: 'text-embedding-3-small', input: 'x'.repeat(5 * 1024 * 1024) });
      const file = path.join(tempDir('body'), 'big.json');
      fs.writeFileSync(file, big);
      res = await curl([`${host.rootUrl}/v1/embeddings`, '-H', `Authorization: Bearer ${KEY}`, '-H', 'Content-Type: application/json',
        '--data-binary', `@${file}`]);
      assert.equal(res.status, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).object, 'list', res.stdout.slice(0, 300));
      assert.equal(mock.lastRequest().sha256, sha256(big));
    });

    it('reaches the proxy as a forward proxy (absolute-form request line)', async () => {
      const res = await curl(['-x', host.rootUrl, 'http://api.openai.com/v1/chat/completions', '-H', `Authorization: Bearer ${KEY}`,
        '-H', 'Content-Type: application/json', '-d', JSON.stringify(chat())]);
      assert.equal(res.status, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).object, 'chat.completion', res.stdout.slice(0, 300));
    });

    it('closes the upstream connection within 2 s of the client leaving mid-stream', async () => {
      const stream = openStream(`${host.rootUrl}/v1/chat/completions`, chat({ stream: true }),
        { ...headers, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '30000' });
      await stream.waitForEvents(1);
      const upstream = mock.lastRequest();
      const left = Date.now();
      stream.abort();
      await waitFor(() => upstream.closedAt > 0, 'the upstream connection to close', 10000);
      assert.ok(upstream.closedAt - left < 2000, `closed ${upstream.closedAt - left} ms after the client left`);
    });

    // nginx drops the request itself when its client leaves; the others learn of it only
    // when they next write, which an SSE comment on an idle stream makes them do.
    it(name.includes('nginx') ? 'sends no heartbeat on an idle stream (nginx notices a client leaving itself)'
      : 'sends a heartbeat comment on an idle stream, so that a client leaving is noticed', async () => {
      const stream = openStream(`${host.rootUrl}/v1/chat/completions`, chat({ stream: true }),
        { ...headers, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '30000' });
      await stream.waitForEvents(1);
      await sleep(1300);
      stream.abort();
      if (name.includes('nginx')) assert.equal(stream.heartbeats, 0);
      else assert.ok(stream.heartbeats >= 1, `${stream.heartbeats} heartbeats in 1.3 s of silence`);
    });

    it('keeps serving across a graceful restart with a stream open', async () => {
      const stream = openStream(`${host.rootUrl}/v1/chat/completions`, chat({ stream: true }),
        { ...headers, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '30000' });
      await stream.waitForEvents(1);
      await host.gracefulRestart();
      const res = await postJson(`${host.rootUrl}/v1/chat/completions`, chat(), headers);
      assert.equal(res.status, 200, res.text);
      stream.abort();
    });

    it('leaves no proxy process behind when stopped, even with a stream open', async () => {
      const stream = openStream(`${host.rootUrl}/v1/chat/completions`, chat({ stream: true }),
        { ...headers, 'x-mock-scenario': 'slow', 'x-mock-delay-ms': '30000' });
      await stream.waitForEvents(1);
      // The binary is a private copy in host.dir: any process running it is this host's,
      // orphans of earlier restarts included.
      assert.ok(processesMentioning(host.dir).length > 0, 'proxy processes run');
      await host.stop();
      await waitFor(() => processesMentioning(host.dir).length === 0, 'every proxy process to stop', 5000);
      stream.abort();
      assert.deepEqual(sanitizerReports(host.logs()), []);
      host = null;
    });
  });
}

// Beyond AZURE_OPENAI_PROXY_MAX_REQUESTS a request is answered at once, never queued.
describe('a proxy at its request limit (nginx)', () => {
  it('answers 503 with retry-after at once, asks nothing upstream, and serves again when a slot frees', async () => {
    const mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    const host = await HOSTS.nginx(mock, { AZURE_OPENAI_PROXY_MAX_REQUESTS: '1' });
    try {
      let release;
      const held = new Promise((resolve) => { release = resolve; });
      mock.pace = async (index) => { if (index === 1) await held; };
      const headers = { authorization: `Bearer ${KEY}` };
      const busy = openStream(`${host.rootUrl}/v1/chat/completions`, chat({ stream: true }), { ...headers, 'x-mock-scenario': 'paced' });
      await busy.waitForEvents(1);
      const started = Date.now();
      const refused = await postJson(`${host.rootUrl}/v1/chat/completions`, chat({ model: 'refused-model' }), headers);
      assert.ok(Date.now() - started < 2000, 'answered at once');
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(refused.json.error.code, 'proxy_overloaded');
      assert.match(refused.json.error.message, /as many requests as it is set to \(1\)/);
      assert.ok(!mock.requests.some((r) => r.body.includes('refused-model')), 'it never reached the upstream');
      release();
      await busy.done;
      await waitFor(() => /outcome=ok/.test(host.logs()), 'the stream to be logged', 5000);
      const served = await postJson(`${host.rootUrl}/v1/chat/completions`, chat(), headers);
      assert.equal(served.status, 200, served.text);
      assert.match(host.logs(), /POST \/v1\/chat\/completions model=- deployment=- status=503 .*outcome=proxy_overloaded/);
    } finally {
      await host.stop();
      await mock.close();
    }
  });
});
