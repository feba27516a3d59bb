// The Debian package, as an operator meets it: built with `make deb` (lintian clean),
// installed with dpkg, enabled with lighty-enable-mod and a2enconf, the program started by
// socket activation from the installed unit's socket and settings, answers and streams
// served through lighttpd and Apache, then purged, leaving nothing behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { ROOT, canConnect, freePort, openStream, postJson, startChild, waitFor } from './harness.mjs';
import { apacheBase, listening, sharedDir, startApache } from './hosts.mjs';

const KEY = 'test-key';
const VERSION = /^VERSION\s*:=\s*(\S+)/m.exec(fs.readFileSync(path.join(ROOT, 'Makefile'), 'utf8'))[1];
const DEB = path.join(ROOT, `build/deb/azure-openai-proxy_${VERSION}_amd64.deb`);
const SETTINGS = '/etc/default/azure-openai-proxy';
const SOCKET = '/run/azure-openai-proxy/proxy.sock';
const INSTALLED = [
  '/usr/sbin/azure-openai-proxy', '/usr/share/man/man8/azure-openai-proxy.8.gz', SETTINGS,
  '/lib/systemd/system/azure-openai-proxy.socket', '/lib/systemd/system/azure-openai-proxy.service',
  '/etc/lighttpd/conf-available/15-azure-openai-proxy.conf', '/etc/apache2/conf-available/azure-openai-proxy.conf',
  '/etc/nginx/snippets/azure-openai-proxy.conf', '/etc/nginx/conf.d/azure-openai-proxy-upstream.conf',
  // The realtime WebSocket companion, its units and web server snippets (off until enabled).
  '/usr/sbin/azure-openai-proxy-realtime', '/usr/share/man/man8/azure-openai-proxy-realtime.8.gz',
  '/lib/systemd/system/azure-openai-proxy-realtime.socket', '/lib/systemd/system/azure-openai-proxy-realtime.service',
  '/etc/lighttpd/conf-available/16-azure-openai-proxy-realtime.conf',
  '/usr/share/doc/azure-openai-proxy/examples/apache/azure-openai-proxy-realtime.conf',
  '/etc/nginx/snippets/azure-openai-proxy-realtime.conf',
];
const ENABLED = ['/etc/lighttpd/conf-enabled/15-azure-openai-proxy.conf', '/etc/apache2/conf-enabled/azure-openai-proxy.conf'];

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, ...options });
  assert.equal(result.status, 0, `${command} ${args.join(' ')}:\n${result.stdout}\n${result.stderr}`);
  return result;
}

// What ExecStart and EnvironmentFile= of the unit would give the program.
function unitEnvironment() {
  const unit = fs.readFileSync('/lib/systemd/system/azure-openai-proxy.service', 'utf8');
  const program = /^ExecStart=(\S+)/m.exec(unit)[1];
  const settings = /^EnvironmentFile=-?(\S+)/m.exec(unit)[1];
  const env = fs.readFileSync(settings, 'utf8').split('\n').filter((line) => /^[A-Z_]+=/.test(line));
  return { program, env };
}

describe('the Debian package', () => {
  let mock, activator;
  const purge = () => spawnSync('dpkg', ['--purge', 'azure-openai-proxy'], { encoding: 'utf8' });

  before(async () => {
    // What an interrupted earlier run may have left: the package, its socket.
    purge();
    fs.rmSync(path.dirname(SOCKET), { recursive: true, force: true });
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
  });
  after(async () => {
    await activator?.stop();
    purge();
    fs.rmSync(path.dirname(SOCKET), { recursive: true, force: true });
    await mock?.close();
  });

  it('builds with make deb, lintian clean', () => {
    // Two programs from scratch, the WebSocket companion's Beast files among them (minutes).
    run('make', ['--no-print-directory', '-C', ROOT, 'deb'], { timeout: 1200000 });
    assert.ok(fs.existsSync(DEB));
  });

  it('installs with dpkg, starts nothing, and keeps its settings from others', () => {
    run('dpkg', ['-i', DEB]);
    for (const file of INSTALLED) assert.ok(fs.existsSync(file), file);
    const settings = fs.statSync(SETTINGS);
    assert.equal(settings.mode & 0o777, 0o640);
    assert.equal(settings.gid, 33, 'group www-data');
    assert.ok(!fs.existsSync(SOCKET), 'no socket until the operator enables the unit');
    const man = run('man', ['--warnings', '-l', '/usr/share/man/man8/azure-openai-proxy.8.gz'], { env: { ...process.env, MANWIDTH: '80', LC_ALL: 'C.UTF-8' } });
    assert.match(man.stdout, /AZURE_OPENAI_PROXY_API_KEYS/);
    assert.equal(man.stderr, '');
  });

  it('is enabled with lighty-enable-mod and a2enconf, and started by socket activation from the unit', async () => {
    // The operator edits the settings, then enables the snippets.
    fs.writeFileSync(SETTINGS, fs.readFileSync(SETTINGS, 'utf8').replace(/^AZURE_OPENAI_ENDPOINT=.*$/m, `AZURE_OPENAI_ENDPOINT=${mock.url}`));
    run('lighty-enable-mod', ['azure-openai-proxy']);
    run('a2enconf', ['-q', 'azure-openai-proxy']);
    for (const link of ENABLED) assert.ok(fs.lstatSync(link).isSymbolicLink(), link);

    const socketUnit = fs.readFileSync('/lib/systemd/system/azure-openai-proxy.socket', 'utf8');
    assert.equal(/^ListenStream=(\S+)/m.exec(socketUnit)[1], SOCKET);
    fs.mkdirSync(path.dirname(SOCKET), { recursive: true });
    const { program, env } = unitEnvironment();
    activator = startChild('systemd-socket-activate', ['-l', SOCKET, ...env.flatMap((e) => ['-E', e]), program], { env: { PATH: process.env.PATH } });
    await waitFor(() => fs.existsSync(SOCKET), 'the activated socket');
    // As SocketGroup=www-data and SocketMode=0660 set it.
    fs.chownSync(SOCKET, 0, 33);
    fs.chmodSync(SOCKET, 0o660);
    assert.ok(await canConnect({ path: SOCKET }));
  });

  const serves = async (url) => {
    const res = await postJson(`${url}/v1/chat/completions`, { model: 'gpt-4o', messages: [{ role: 'user', content: 'packaged' }] }, { authorization: `Bearer ${KEY}` });
    assert.equal(res.status, 200, res.text);
    assert.match(res.json.choices[0].message.content, /packaged/);
    const stream = openStream(`${url}/v1/chat/completions`, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${KEY}` });
    await stream.done;
    assert.equal(stream.status, 200);
    assert.equal(stream.events.at(-1), 'data: [DONE]');
  };

  it('serves a chat completion and a stream through lighttpd with the enabled snippet', async () => {
    const dir = sharedDir('package-lighttpd');
    const port = await freePort();
    const config = path.join(dir, 'lighttpd.conf');
    fs.writeFileSync(config, `server.document-root = "${dir}"\nserver.bind = "127.0.0.1"\nserver.port = ${port}\ninclude "${ENABLED[0]}"\n`);
    const lighttpd = startChild('lighttpd', ['-D', '-f', config], { env: { PATH: process.env.PATH } });
    try {
      await listening(lighttpd, port, 'lighttpd');
      await serves(`http://127.0.0.1:${port}`);
    } finally {
      await lighttpd.stop();
    }
  });

  it('serves a chat completion and a stream through Apache with the enabled conf', async () => {
    const dir = sharedDir('package-apache');
    const port = await freePort();
    const apache = await startApache(dir, port, apacheBase({
      dir, port, modules: ['mpm_event', 'authz_core', 'proxy', 'proxy_fcgi', 'setenvif'], extra: `Include ${ENABLED[1]}`,
    }));
    try {
      await serves(`http://127.0.0.1:${port}`);
    } finally {
      await apache.stop();
    }
  });

  it('serves a chat completion and a stream through nginx with the snippet, on kept connections', async () => {
    const dir = sharedDir('package-nginx');
    const port = await freePort();
    const config = path.join(dir, 'nginx.conf');
    // Debian's nginx.conf includes conf.d/*.conf in http { }; the operator includes the snippet in a server.
    fs.writeFileSync(config, `user www-data;\ndaemon off;\npid ${dir}/nginx.pid;\nerror_log stderr warn;\nevents { worker_connections 64; }\n` +
      `http {\n  access_log off;\n  client_body_temp_path ${dir}/body;\n  include /etc/nginx/conf.d/azure-openai-proxy-upstream.conf;\n` +
      `  server {\n    listen 127.0.0.1:${port};\n    include /etc/nginx/snippets/azure-openai-proxy.conf;\n  }\n}\n`);
    const nginx = startChild('nginx', ['-c', config, '-p', dir], { env: { PATH: process.env.PATH } });
    try {
      await listening(nginx, port, 'nginx');
      await serves(`http://127.0.0.1:${port}`);
      await serves(`http://127.0.0.1:${port}`);
      // The proxy answered four requests on kept connections: nginx still holds one.
      const held = spawnSync('ss', ['-xH', 'state', 'connected', 'src', SOCKET], { encoding: 'utf8' }).stdout.trim();
      assert.ok(held.split('\n').filter(Boolean).length >= 1, 'a kept connection to the proxy');
    } finally {
      await nginx.stop();
    }
  });

  it('purges to nothing but what Debian policy keeps', async () => {
    await activator.stop();
    activator = null;
    const purged = purge();
    assert.equal(purged.status, 0, purged.stderr);
    for (const file of [...INSTALLED, ...ENABLED]) assert.ok(!fs.existsSync(file) && !isLink(file), `${file} is gone`);
    assert.match(spawnSync('dpkg', ['-s', 'azure-openai-proxy'], { encoding: 'utf8' }).stderr, /not installed/);
  });
});

function isLink(file) {
  try { return fs.lstatSync(file).isSymbolicLink(); } catch { return false; }
}
