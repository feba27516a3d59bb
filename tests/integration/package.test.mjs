// The Debian package, as an operator meets it: built with `make deb` (lintian clean),
// installed with dpkg, enabled with lighty-enable-mod and a2enconf, the programs started by
// socket activation from the installed units' sockets, settings and user, answers and
// streams served through lighttpd and Apache, a realtime session seen in the FastCGI
// program's /metrics (the two units share one user and one state file), then purged,
// leaving nothing behind. No systemd here: what the units say (ExecStart, Environment=,
// EnvironmentFile=, User= with DynamicUser=, RuntimeDirectory=) is read from them and done
// as systemd would (systemd-socket-activate, setpriv).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import WebSocket from 'ws';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { startRealtimeSocketStandIn } from '../upstream/azure-realtime-socket.mjs';
import { ROOT, canConnect, fastcgiExchange, fastcgiRequest, freePort, openStream, postJson, startChild, waitFor } from './harness.mjs';
import { apacheBase, listening, sharedDir, startApache } from './hosts.mjs';
import { frontCertificate } from './realtime-fronts.mjs';

const KEY = 'test-key';
const VERSION = /^VERSION\s*:=\s*(\S+)/m.exec(fs.readFileSync(path.join(ROOT, 'Makefile'), 'utf8'))[1];
const DEB = path.join(ROOT, `build/deb/azure-openai-proxy_${VERSION}_amd64.deb`);
const SETTINGS = '/etc/default/azure-openai-proxy';
const SOCKET = '/run/azure-openai-proxy/proxy.sock';
const REALTIME_SOCKET = '/run/azure-openai-proxy/realtime.sock';
const UNITS = { fastcgi: '/lib/systemd/system/azure-openai-proxy.service', realtime: '/lib/systemd/system/azure-openai-proxy-realtime.service' };
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
const ENABLED = ['/etc/lighttpd/conf-enabled/15-azure-openai-proxy.conf', '/etc/apache2/conf-enabled/azure-openai-proxy.conf',
  '/etc/lighttpd/conf-enabled/16-azure-openai-proxy-realtime.conf'];

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, ...options });
  assert.equal(result.status, 0, `${command} ${args.join(' ')}:\n${result.stdout}\n${result.stderr}`);
  return result;
}

// What a service unit says about how its program runs: ExecStart, the environment
// (Environment= first, EnvironmentFile= over it, as systemd reads them), User= and
// DynamicUser=, RuntimeDirectory= and whether it is kept at a stop.
function unitSettings(file) {
  const unit = fs.readFileSync(file, 'utf8');
  const value = (name) => (new RegExp(`^${name}=(.*)$`, 'm').exec(unit) || [])[1];
  const settings = value('EnvironmentFile').replace(/^-/, '');
  const fromFile = fs.readFileSync(settings, 'utf8').split('\n').filter((line) => /^[A-Z_]+=/.test(line));
  const fromUnit = [...unit.matchAll(/^Environment=(.*)$/gm)].map((m) => m[1]);
  return {
    program: value('ExecStart').split(' ')[0], env: [...fromUnit, ...fromFile],
    user: value('User'), dynamicUser: value('DynamicUser'), runtimeDirectory: value('RuntimeDirectory'),
    preserve: value('RuntimeDirectoryPreserve'),
  };
}

// A UID from systemd's dynamic range that no one on this host has: the dynamic user.
function dynamicUid() {
  for (let uid = 61184 + Math.floor(Math.random() * 4000); ; uid++) {
    if (spawnSync('getent', ['passwd', String(uid)]).status !== 0) return uid;
  }
}

// The unit's program on `socket`, as systemd starts it: the socket passed by socket
// activation, the unit's environment (`overrides` last), its user, its runtime directory.
function activate(unit, socket, uid, overrides = []) {
  const { program, env, runtimeDirectory } = unitSettings(unit);
  const runtime = path.join('/run', runtimeDirectory);
  fs.mkdirSync(runtime, { recursive: true });
  fs.chownSync(runtime, uid, uid);
  return startChild('systemd-socket-activate', ['-l', socket, ...[...env, ...overrides].flatMap((e) => ['-E', e]),
    'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', program], { env: { PATH: process.env.PATH } });
}

describe('the Debian package', () => {
  let mock, activator, companion;
  const uid = dynamicUid();
  const purge = () => spawnSync('dpkg', ['--purge', 'azure-openai-proxy'], { encoding: 'utf8' });

  before(async () => {
    // What an interrupted earlier run may have left: the package, its socket.
    purge();
    fs.rmSync(path.dirname(SOCKET), { recursive: true, force: true });
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
  });
  after(async () => {
    await companion?.stop();
    await activator?.stop();
    purge();
    fs.rmSync(path.dirname(SOCKET), { recursive: true, force: true });
    await mock?.close();
  });

  it('builds with make deb, lintian clean', (t) => {
    // Both programs linked from the release build's objects, compiled with the package's flags
    // (`make test` builds them first); where there are none, compiled here (minutes).
    const built = run('make', ['--no-print-directory', '-C', ROOT, 'deb'], { timeout: 1200000 });
    t.diagnostic(`make deb compiled ${(built.stdout.match(/ -c src\//g) || []).length} files`);
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
    for (const link of ENABLED.slice(0, 2)) assert.ok(fs.lstatSync(link).isSymbolicLink(), link);

    const socketUnit = fs.readFileSync('/lib/systemd/system/azure-openai-proxy.socket', 'utf8');
    assert.equal(/^ListenStream=(\S+)/m.exec(socketUnit)[1], SOCKET);
    fs.mkdirSync(path.dirname(SOCKET), { recursive: true });
    activator = activate(UNITS.fastcgi, SOCKET, uid);
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

  it('runs both programs as one user naming one state file, in a directory a stop keeps', () => {
    const fastcgi = unitSettings(UNITS.fastcgi), realtime = unitSettings(UNITS.realtime);
    const stateFile = (unit) => unit.env.find((e) => e.startsWith('AZURE_OPENAI_PROXY_STATE_FILE='))?.split('=')[1];
    assert.ok(fastcgi.user, 'the FastCGI unit names its user');
    assert.equal(realtime.user, fastcgi.user, 'one user: systemd gives both units the same dynamic UID while either runs');
    assert.equal(fastcgi.dynamicUser, 'yes');
    assert.equal(realtime.dynamicUser, 'yes');
    assert.ok(stateFile(fastcgi), 'the FastCGI unit names a state file');
    assert.equal(stateFile(realtime), stateFile(fastcgi));
    // Under /run, not /dev/shm: the FastCGI unit's /dev is its own (PrivateDevices=).
    assert.equal(path.dirname(stateFile(fastcgi)), path.join('/run', fastcgi.runtimeDirectory));
    assert.equal(realtime.runtimeDirectory, fastcgi.runtimeDirectory);
    // Kept when either stops, or a restarted one would make a second file beside the first.
    assert.equal(fastcgi.preserve, 'yes');
    assert.equal(realtime.preserve, 'yes');
  });

  it('counts a realtime session, through lighttpd with both snippets enabled, in the FastCGI program\'s /metrics', { timeout: 60000 }, async () => {
    const certificate = frontCertificate();
    const standIn = await startRealtimeSocketStandIn({ tls: certificate, apiKey: KEY });
    const dir = sharedDir('package-realtime');
    const port = await freePort();
    const config = path.join(dir, 'lighttpd.conf');
    fs.writeFileSync(config, `server.document-root = "${dir}"\nserver.bind = "127.0.0.1"\nserver.port = ${port}\n` +
      `include "${ENABLED[0]}"\ninclude "${ENABLED[2]}"\n`);
    let lighttpd, ws;
    try {
      // The operator points the settings at the resource, trusts its certificate, and
      // restarts the FastCGI program; the companion's socket unit starts it on the first session.
      fs.writeFileSync(SETTINGS, fs.readFileSync(SETTINGS, 'utf8').replace(/^AZURE_OPENAI_ENDPOINT=.*$/m,
        `AZURE_OPENAI_ENDPOINT=${standIn.url}\nAZURE_OPENAI_TOKEN=${KEY}\nAZURE_OPENAI_PROXY_CA_BUNDLE=${certificate.certFile}`));
      await activator.stop();
      activator = activate(UNITS.fastcgi, SOCKET, uid);
      await waitFor(() => fs.existsSync(SOCKET), 'the activated socket');
      companion = activate(UNITS.realtime, REALTIME_SOCKET, uid);
      await waitFor(() => fs.existsSync(REALTIME_SOCKET), 'the companion\'s activated socket');
      run('lighty-enable-mod', ['azure-openai-proxy-realtime']);
      assert.ok(fs.lstatSync(ENABLED[2]).isSymbolicLink());
      lighttpd = startChild('lighttpd', ['-D', '-f', config], { env: { PATH: process.env.PATH } });
      await listening(lighttpd, port, 'lighttpd');

      ws = new WebSocket(`ws://127.0.0.1:${port}/v1/realtime?model=gpt-realtime`, ['realtime']);
      const created = await new Promise((resolve, reject) => {
        ws.on('message', (data) => resolve(JSON.parse(data.toString())));
        ws.on('error', reject);
        ws.on('unexpected-response', (req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      });
      assert.equal(created.type, 'session.created');
      const open = async () => Number((/^aop_realtime_sessions_open (\d+)/m.exec(await metrics()) || [])[1]);
      assert.equal(await open(), 1, 'the FastCGI program sees the companion\'s session');
      ws.close(1000);
      await waitFor(async () => (await open()) === 0, 'the session counted as closed');
      assert.match(await metrics(), /^aop_realtime_sessions_total\{[^}]*outcome="client closed"\} 1$/m);
      // The one state file both map, in the runtime directory, the dynamic user's.
      const state = fs.statSync('/run/azure-openai-proxy/state/shared');
      assert.equal(state.uid, uid);
    } finally {
      ws?.terminate();
      await lighttpd?.stop();
      await standIn.close();
    }
  });

  it('purges to nothing but what Debian policy keeps', async () => {
    await companion.stop();
    companion = null;
    await activator.stop();
    activator = null;
    const purged = purge();
    assert.equal(purged.status, 0, purged.stderr);
    for (const file of [...INSTALLED, ...ENABLED]) assert.ok(!fs.existsSync(file) && !isLink(file), `${file} is gone`);
    assert.match(spawnSync('dpkg', ['-s', 'azure-openai-proxy'], { encoding: 'utf8' }).stderr, /not installed/);
  });
});

// The FastCGI program's /metrics, asked on its socket as a web server on this host would.
async function metrics() {
  const answer = await fastcgiExchange(SOCKET, fastcgiRequest({ REQUEST_METHOD: 'GET', REQUEST_URI: '/metrics', SCRIPT_NAME: '/metrics', REMOTE_ADDR: '127.0.0.1' }, ''));
  assert.equal(answer.status, 200, answer.head + answer.text);
  return answer.text;
}

function isLink(file) {
  try { return fs.lstatSync(file).isSymbolicLink(); } catch { return false; }
}
