// The realtime companion and the web servers in front of it (lighttpd, nginx, Apache over
// TLS with the snippets shipped in deploy/), shared by the realtime-*.test.mjs files: the
// companion started on a unix socket, each front, and a raw WebSocket client of a front.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import tls from 'node:tls';

import WebSocket from 'ws';

import { startRealtimeSocketStandIn } from '../upstream/azure-realtime-socket.mjs';
import { ROOT, canConnect, freePort, proxyEnv, startChild, startProxy, tempDir, waitFor } from './harness.mjs';
import { apacheBase, render, runNginx, startApache, startLighttpdRealtimeFront } from './hosts.mjs';
import { makeCertificate } from './upstream-http2-parts.mjs';

export const REALTIME_BIN = process.env.REALTIME_BIN || path.join(ROOT, 'build/asan/azure-openai-proxy-realtime');
export const AZURE_KEY = 'azure-resource-key';
export const CLIENT_KEY = 'alice-key-123';
export const MAX_MESSAGE = 1 << 20;  // the companion's limit for this run (its default is 16 MiB)

// `env`: more settings (a routing file, a shared state file), over the defaults below.
export async function startCompanion(standIn, certificate, env = {}) {
  const dir = tempDir('realtime');
  fs.chmodSync(dir, 0o755);  // nginx's workers (www-data) reach the socket in it
  const socket = path.join(dir, 'realtime.sock');
  const companion = startChild(REALTIME_BIN, ['--listen', socket], {
    env: proxyEnv({
      AZURE_OPENAI_ENDPOINT: standIn.url, AZURE_OPENAI_TOKEN: AZURE_KEY,
      AZURE_OPENAI_PROXY_API_KEYS: `alice:${CLIENT_KEY}`, AZURE_OPENAI_PROXY_CA_BUNDLE: certificate.certFile,
      AZURE_OPENAI_PROXY_REALTIME_MAX_MESSAGE_BYTES: String(MAX_MESSAGE),
      AZURE_OPENAI_PROXY_REALTIME_SOCKET_OWNER: 'www-data',
      AZURE_OPENAI_PROXY_WRITE_TIMEOUT: '3',  // a client that stops reading is cut after 3 s
      ...env,
    }),
  });
  await waitFor(async () => companion.exited || (fs.existsSync(socket) && await canConnect({ path: socket })), 'the companion');
  if (companion.exited) throw new Error(`the companion exited at start: ${companion.output}`);
  companion.socket = socket;
  companion.logLine = async (pattern) => {
    let found;
    await waitFor(() => (found = companion.output.split('\n').find((l) => /^\S+ realtime session /.test(l) && pattern.test(l))),
      `a log line ${pattern}`, 5000);
    return found;
  };
  return companion;
}

// A suite's realtime host, as suiteHost (harness.mjs) is a suite's HTTP one: the fronts'
// certificate, the stand-in of Azure's socket, the companion, with `withProxy` the FastCGI
// program beside it, and `startFront(companion, certificate, proxy socket)` in front; started
// before the suite's tests and stopped after them (the WebSockets a test pushed to `open`
// dropped first), failing on an unclean exit. `env` (or `env(standIn)`): settings both
// programs get over the defaults; `companionEnv`: the companion's alone, under `env`.
// The object returned holds them then: { certificate, standIn, companion, proxy, front, open }.
export function suiteRealtimeHost(startFront, { env = {}, companionEnv = {}, withProxy = false } = {}) {
  const host = { open: [] };
  before(async () => {
    host.certificate = frontCertificate();
    host.standIn = await startRealtimeSocketStandIn({ tls: host.certificate, apiKey: AZURE_KEY });
    const settings = typeof env === 'function' ? env(host.standIn) : env;
    host.companion = await startCompanion(host.standIn, host.certificate, { ...companionEnv, ...settings });
    if (withProxy) {
      host.proxy = await startProxy({
        AZURE_OPENAI_ENDPOINT: host.standIn.url, AZURE_OPENAI_TOKEN: AZURE_KEY, AZURE_OPENAI_PROXY_CA_BUNDLE: host.certificate.certFile,
        AZURE_OPENAI_PROXY_API_KEYS: `alice:${CLIENT_KEY}`, AZURE_OPENAI_PROXY_FCGI_SOCKET_OWNER: 'www-data:www-data', ...settings,
      });
    }
    host.front = await startFront(host.companion, host.certificate, host.proxy?.socket);
  });
  after(async () => {
    for (const ws of host.open) ws.terminate();
    await host.front?.server.stop();
    const stopped = await host.companion?.stop();
    const proxyStopped = await host.proxy?.stop();
    await host.standIn?.close();
    assert.equal(stopped?.code, 0, `the companion stopped cleanly: ${JSON.stringify(stopped)}`);
    if (host.proxy) assert.equal(proxyStopped?.code, 0, `the proxy stopped cleanly: ${JSON.stringify(proxyStopped)}`);
  });
  return host;
}

// lighttpd over TLS with the shipped snippet; the FastCGI settings beside it point at
// `fastcgi` (a proxy's socket), by default at no program, so a session that reached them would fail.
export const startLighttpdFront = (companion, certificate, fastcgi) =>
  startLighttpdRealtimeFront(companion.socket, certificate, fastcgi);

// The shipped realtime snippet and site of `web` (nginx or apache), rendered in a directory
// of their own: `replacements({ port, snippet, dir })` gives the site's.
async function renderFront(web, companion, siteFile, replacements) {
  const dir = tempDir(`${web}-rt`);
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const snippet = render(`${web}/azure-openai-proxy-realtime.conf`,
    { 'unix:/run/azure-openai-proxy/realtime.sock': `unix:${companion.socket}` }, path.join(dir, 'realtime.conf'));
  const site = render(`${web}/${siteFile}`, replacements({ port, snippet, dir }), path.join(dir, 'site.conf'));
  return { dir, port, site };
}

// nginx over TLS with the shipped site, its realtime location and upstream included.
export async function startNginxFront(companion, certificate, fastcgi) {
  const { dir, port, site } = await renderFront('nginx', companion, 'azure-openai-proxy.conf', ({ port, snippet, dir }) => ({
    'listen 80 default_server;': `listen 127.0.0.1:${port} ssl default_server; ssl_certificate ${certificate.certFile}; ssl_certificate_key ${certificate.keyFile};`,
    'unix:/run/azure-openai-proxy/proxy.sock': `unix:${fastcgi || `${dir}/no-fastcgi.sock`}`,
    '# include /etc/nginx/snippets/azure-openai-proxy-realtime.conf;': `include ${snippet};`,
  }));
  const server = await runNginx(dir, port, site);
  return { server, port };
}

// Apache over TLS with the shipped mod_proxy_fcgi site and its realtime line included.
export async function startApacheFront(companion, certificate) {
  const { dir, port, site } = await renderFront('apache', companion, 'proxy-fcgi.conf', ({ port, snippet, dir }) => ({
    '<VirtualHost *:80>': `<VirtualHost 127.0.0.1:${port}>\n    SSLEngine on\n    SSLCertificateFile ${certificate.certFile}\n    SSLCertificateKeyFile ${certificate.keyFile}`,
    'unix:/run/azure-openai-proxy/proxy.sock': `unix:${dir}/no-fastcgi.sock`,
    '# Include /etc/apache2/azure-openai-proxy-realtime.conf': `Include ${snippet}`,
  }));
  const server = await startApache(dir, port, apacheBase({
    dir, port, modules: ['mpm_event', 'authz_core', 'setenvif', 'proxy', 'proxy_fcgi', 'proxy_http', 'socache_shmcb', 'ssl'],
    extra: `Include ${site}`,
  }));
  return { server, port };
}

// A raw client of the front (the `ws` package, trusting the test's certificate): for what
// the SDK cannot show — a refusal's HTTP status and body, frames it would not send.
export function rawSession(port, urlPath, { protocols = ['realtime', `openai-insecure-api-key.${CLIENT_KEY}`], headers = {}, ca } = {}) {
  const ws = new WebSocket(`wss://127.0.0.1:${port}${urlPath}`, protocols, { ca, headers });
  return new Promise((resolve) => {
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('open', () => resolve({ ws, status: 101, protocol: ws.protocol }));
    ws.on('error', (error) => resolve({ error }));
  });
}


// The fronts' TLS certificate, readable by every web server's user, and trusted by this
// process (Node's own WebSocket, the SDK's, and fetch).
export function frontCertificate() {
  const certificate = makeCertificate();
  certificate.keyFile = path.join(path.dirname(certificate.certFile), 'key.pem');
  fs.chmodSync(path.dirname(certificate.certFile), 0o755);
  fs.chmodSync(certificate.keyFile, 0o644);  // nginx reads it as root, lighttpd as itself: test-only
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), certificate.cert.toString()]);
  return certificate;
}
