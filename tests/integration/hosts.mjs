// The web servers the proxy ships configuration for, each started for real on loopback
// with the files from deploy/ (rendered for test ports and paths). Every process started
// here is tracked by the harness and stopped by its PID.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { PROXY_BIN, ROOT, canConnect, freePort, sleep, startChild, tempDir, waitFor } from './harness.mjs';

const PLACEHOLDER_ENDPOINT = 'https://YOUR-RESOURCE.openai.azure.com';
const APACHE_MODULES = '/usr/lib/apache2/modules';

// Copies a shipped file with its placeholders replaced by test values.
export function render(relative, replacements, destination) {
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
export function sharedDir(name) {
  const dir = tempDir(name);
  fs.chmodSync(dir, 0o755);
  return dir;
}

// The test binary, copied where a web server that runs as www-data may execute it.
export function installProgram(dir) {
  const program = path.join(dir, 'azure-openai-proxy');
  fs.copyFileSync(PROXY_BIN, program);
  fs.chmodSync(program, 0o755);
  return program;
}

export async function listening(server, port, what) {
  await waitFor(async () => server.exited || canConnect({ host: '127.0.0.1', port }), what, 15000);
  if (server.exited) throw new Error(`${what} exited at start: ${server.output}`);
}

// lighttpd with the shipped realtime snippet (deploy/lighttpd/azure-openai-proxy-realtime.conf)
// in front of the companion's unix socket `socket`; over TLS with `certificate` ({ certFile,
// keyFile }), else plain HTTP. The FastCGI settings beside it point at no program, so a
// session that reached them would fail.
export async function startLighttpdRealtimeFront(socket, certificate, fastcgi) {
  const dir = tempDir('lighttpd-rt');
  const port = await freePort();
  const snippet = render('lighttpd/azure-openai-proxy-realtime.conf',
    { '/run/azure-openai-proxy/realtime.sock': socket }, path.join(dir, 'realtime.conf'));
  const tls = certificate
    ? `ssl.engine = "enable"\nssl.pemfile = "${certificate.certFile}"\nssl.privkey = "${certificate.keyFile}"\n` : '';
  const config = path.join(dir, 'lighttpd.conf');
  fs.writeFileSync(config, `
server.modules += (${certificate ? '"mod_openssl", ' : ''}"mod_fastcgi")
server.document-root = "${dir}"
server.bind = "127.0.0.1"
server.port = ${port}
server.stream-response-body = 2
${tls}fastcgi.server = ( "/" => (( "socket" => "${fastcgi || `${dir}/no-fastcgi.sock`}", "check-local" => "disable", "fix-root-scriptname" => "enable" )))
include "${snippet}"
`);
  const server = startChild('lighttpd', ['-D', '-f', config], { env: { PATH: process.env.PATH } });
  await listening(server, port, 'lighttpd');
  return { server, port };
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

export function apacheBase({ dir, port, modules, extra = '' }) {
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

export async function startApache(dir, port, configText) {
  const config = path.join(dir, 'httpd.conf');
  fs.writeFileSync(config, configText);
  const errorLog = () => { try { return fs.readFileSync(path.join(dir, 'error.log'), 'utf8'); } catch { return ''; } };
  // Its own process group, stopped whole: a child Apache could not reclaim (seen once with
  // a realtime tunnel, stuck on a futex after the parent had gone) would otherwise keep the
  // test's pipes open and the test file from ending.
  const server = startChild('apache2', ['-f', config, '-DFOREGROUND'], { env: { PATH: process.env.PATH }, log: errorLog, detached: true });
  await listening(server, port, 'apache');
  server.errorLog = errorLog;
  return server;
}

export const HOSTS = {
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
    // A CGI program's shared state outlives each call: kept in the test's own directory.
    fs.appendFileSync(path.join(target, 'settings.env'), `\nAZURE_OPENAI_PROXY_STATE_FILE=${path.join(dir, 'run', 'aop-state')}\n`);
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
    pids: () => processes.map((p) => p.pid),
    // Apache: SIGUSR1 is a graceful restart (`apachectl graceful`); nginx: SIGHUP reloads.
    gracefulRestart: async () => {
      process.kill(processes[0].pid, processes[0].child.spawnfile === 'nginx' ? 'SIGHUP' : 'SIGUSR1');
      await sleep(1500);
      await listening(processes[0], port, 'the server after a graceful restart');
    },
  };
}

export async function startNginx(dir, socket, services) {
  const port = await freePort();
  const site = render('nginx/azure-openai-proxy.conf', {
    'listen 80 default_server': `listen 127.0.0.1:${port} default_server`,
    'unix:/run/azure-openai-proxy/proxy.sock': `unix:${socket}`,
  }, path.join(dir, 'site.conf'));
  const server = await runNginx(dir, port, site);
  return hostOf(dir, port, [server, ...services], async () => { await server.stop(); for (const s of services) await s.stop(); });
}

// nginx in the foreground with `site` (a rendered server block) listening on `port`.
export async function runNginx(dir, port, site) {
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
    proxy_temp_path ${dir}/proxy;
    include ${site};
}
`);
  const server = startChild('nginx', ['-c', config, '-p', dir], { env: { PATH: process.env.PATH } });
  await listening(server, port, 'nginx');
  return server;
}


// nginx with the shipped site (fastcgi_keep_conn) in front of a proxy's socket, given to
// www-data, nginx's workers' user: harness.mjs's startHostBehind(NGINX, ...).
export const NGINX = {
  name: 'nginx',
  proxyEnv: { AZURE_OPENAI_PROXY_FCGI_SOCKET_OWNER: 'www-data:www-data' },
  start: async (socket) => {
    const host = await startNginx(sharedDir('nginx'), socket, []);
    return { ...host, url: host.rootUrl };
  },
};
