// The HTTP/2 upstream the upstream-http2*.test.mjs files talk to: the Azure stand-in's
// handler behind node:http2 over TLS, with a certificate made for the run (trusted by the
// proxy through AZURE_OPENAI_PROXY_CA_BUNDLE), and a record of every stream it served.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';

import { tempDir } from './harness.mjs';

export const KEY = 'test-key';
export const AUTH = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
export const chat = (extra = {}) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], ...extra });

// The SSE `error` event the proxy adds when a stream breaks, parsed.
export function errorEvent(body) {
  const match = /event: error\ndata: (.*)\n\n/.exec(body.toString());
  return match && JSON.parse(match[1]);
}

export function makeCertificate() {
  const dir = tempDir('h2-tls');
  const keyFile = path.join(dir, 'key.pem'), certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  return { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile), certFile };
}

// Serves `mock`'s handler over TLS and HTTP/2 only. `intercept(req, res)` may take a
// request first (true: it answered). Each stream is recorded: its `x-test-id`, HTTP
// version, connection (numbered as the mock numbers them) and the client's port on it,
// whether it closed, with which RST_STREAM code (0: ended cleanly).
export async function h2Upstream(mock, tls, intercept = () => false) {
  const records = [];
  const sockets = new Set();
  const server = http2.createSecureServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const record = {
      id: req.headers['x-test-id'], version: req.httpVersion, connection: req.socket.mockId, clientPort: req.socket.remotePort,
      closed: false, rstCode: 0,
    };
    records.push(record);
    res.stream.on('close', () => {
      record.closed = true;
      record.rstCode = res.stream.rstCode ?? 0;
    });
    if (!intercept(req, res)) mock.server.emit('request', req, res);
  });
  let connections = 0;
  // What the mock keeps per connection (its own 'connection' listener is for plain HTTP).
  server.on('secureConnection', (socket) => {
    socket.mockId = ++connections;
    socket.entries = [];
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server, records, mock,
    url: `https://127.0.0.1:${server.address().port}`,
    record: (id) => records.find((r) => r.id === id),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      await mock.close();
    },
  };
}
