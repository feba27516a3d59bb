// Realtime over WebRTC through the FastCGI program (issue 25): a real browser's
// RTCPeerConnection gets an ephemeral key and makes its SDP offer through lighttpd and the
// proxy, against a stand-in of Azure's GA realtime routes (tests/upstream/azure-realtime.mjs)
// whose SDP answer the browser accepts; the form shape (sdp + session) through nginx with
// curl; the errors a client can meet on the way.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { clearOfMinuteEdge, curl, request, startLighttpd, startProxy, tempDir } from './harness.mjs';
import { HOSTS } from './hosts.mjs';

const SERVER_KEY = 'azure-server-key';
const WEB_KEY = 'web-client-key-1';   // the page's key to the proxy
const TIGHT_KEY = 'tight-client-key';  // one request a minute
const MAX_BODY = 200000;
// The model clients name, and the deployment it maps to.
const MAPPER = 'voice=gpt-realtime,voice-mini=gpt-4o-mini-realtime-preview';

// The page: client_secrets through the proxy (its client key), a peer connection with an
// audio transceiver and the `oai-events` data channel, the offer posted to /v1/realtime/calls
// with the ephemeral key, the answer set as the remote description.
const PAGE = `<!doctype html>
<html><body><p id="status">starting</p><script>
async function run() {
  const secret = await fetch('/v1/realtime/client_secrets', {
    method: 'POST',
    headers: { 'Authorization': 'Bearer ${WEB_KEY}', 'Content-Type': 'application/json' },
    body: JSON.stringify({ session: { type: 'realtime', model: 'voice', instructions: 'Be brief.' } }),
  });
  const minted = await secret.json();
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', { direction: 'sendrecv' });
  const events = pc.createDataChannel('oai-events');
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const call = await fetch('/v1/realtime/calls', {
    method: 'POST',
    headers: { 'Authorization': 'Bearer ' + minted.value, 'api-key': '${WEB_KEY}', 'Content-Type': 'application/sdp' },
    body: offer.sdp,
  });
  const answer = await call.text();
  const result = { secretStatus: secret.status, minted, callStatus: call.status, offer: offer.sdp, answer,
    type: call.headers.get('content-type'), location: call.headers.get('location'), channel: events.label };
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  result.signaling = pc.signalingState;
  result.remoteMids = pc.getTransceivers().map((t) => t.mid);
  pc.close();
  return result;
}
run().then((r) => { window.result = r; document.getElementById('status').textContent = 'done'; },
  (e) => { window.result = { error: String(e) }; document.getElementById('status').textContent = 'failed'; });
</script></body></html>`;

// lighttpd: the page as a static file, /v1/ to the proxy.
const siteConfig = (socket) => ({ port, dir }) => {
  fs.writeFileSync(path.join(dir, 'index.html'), PAGE);
  return `
server.modules += ("mod_fastcgi")
server.document-root = "${dir}"
server.bind = "127.0.0.1"
server.port = ${port}
mimetype.assign = (".html" => "text/html; charset=utf-8")
fastcgi.server = ( "/v1/" => (( "socket" => "${socket}", "check-local" => "disable" )) )
`;
};

// A small SDP offer as a browser makes it (for the curl and error cases).
const OFFER = ['v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuv',
  'a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF',
  'a=setup:actpass', 'a=mid:0', 'a=sendrecv', 'a=rtcp-mux', 'a=rtpmap:111 opus/48000/2', 'a=fmtp:111 minptime=10;useinbandfec=1',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:abcd',
  'a=ice-pwd:abcdefghijklmnopqrstuv', 'a=setup:actpass', 'a=mid:1', 'a=sctp-port:5000', ''].join('\r\n');

describe('realtime over WebRTC through the proxy', () => {
  let mock, proxy, web, browser, nginx, dir;

  before(async () => {
    mock = createAzureMock({ apiKey: SERVER_KEY });
    await mock.listen();
    dir = tempDir('realtime');
    const config = path.join(dir, 'config.json');
    fs.writeFileSync(config, JSON.stringify({ keys: { tight: { key: TIGHT_KEY, requests_per_minute: 1 } } }));
    const env = {
      AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_TOKEN: SERVER_KEY, AZURE_OPENAI_MODEL_MAPPER: MAPPER,
      AZURE_OPENAI_PROXY_API_KEYS: `web:${WEB_KEY}`, AZURE_OPENAI_PROXY_CONFIG: config,
      AZURE_OPENAI_PROXY_MAX_BODY_BYTES: String(MAX_BODY),
    };
    proxy = await startProxy(env);
    web = await startLighttpd({ configText: siteConfig(proxy.socket) });
    nginx = await HOSTS.nginx(mock, { ...env, AZURE_OPENAI_PROXY_STATE_FILE: path.join(dir, 'nginx-state') });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium', headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  after(async () => {
    await browser?.close();
    await nginx?.stop();
    await web?.stop();
    const stopped = await proxy?.stop();
    await mock?.close();
    fs.rmSync(dir, { recursive: true, force: true });
    if (stopped) assert.equal(stopped.code, 0, proxy.logs());
  });

  it("a browser's RTCPeerConnection accepts the answer to the offer it made through the proxy", async () => {
    const tab = await browser.newPage();
    await tab.goto(`${web.url}/index.html`);
    await tab.waitForFunction(() => document.getElementById('status').textContent !== 'starting', null, { timeout: 20000 });
    const result = await tab.evaluate(() => window.result);
    await tab.close();
    assert.equal(result.error, undefined, result.error);
    assert.equal(result.secretStatus, 200);
    assert.match(result.minted.value, /^ek_/);
    assert.ok(result.minted.expires_at > Date.now() / 1000);
    assert.equal(result.minted.session.model, 'gpt-realtime');  // Azure's echo: the deployment
    assert.equal(result.callStatus, 201);
    assert.equal(result.type, 'application/sdp');
    assert.match(result.location, /^\/v1\/realtime\/calls\/rtc_[\w-]+$/);  // the proxy's path, not Azure's
    assert.equal(result.signaling, 'stable');
    assert.equal(result.channel, 'oai-events');

    // What Azure saw: client_secrets with the server's key and the mapped deployment, the
    // call with the ephemeral key alone, the offer byte for byte.
    const secrets = mock.requests.find((r) => r.path === '/openai/v1/realtime/client_secrets');
    assert.equal(secrets.headers['api-key'], SERVER_KEY);
    assert.equal(secrets.headers.authorization, undefined);
    assert.deepEqual(JSON.parse(secrets.body).session, { type: 'realtime', model: 'gpt-realtime', instructions: 'Be brief.' });
    const call = mock.requests.find((r) => r.path === '/openai/v1/realtime/calls');
    assert.equal(call.headers.authorization, `Bearer ${result.minted.value}`);
    assert.equal(call.headers['api-key'], undefined);
    assert.equal(call.url, '/openai/v1/realtime/calls');
    const seen = mock.realtimeCalls.at(-1);
    assert.equal(seen.auth, 'ephemeral');
    assert.equal(seen.deployment, 'gpt-realtime');
    assert.equal(seen.sdp, result.offer);
    assert.ok(result.location.endsWith(seen.callId));
    await proxy.waitForLog(/POST \/v1\/realtime\/client_secrets .*model=voice.*status=200.*key=web/);
    await proxy.waitForLog(/POST \/v1\/realtime\/calls .*status=201.*key=web/);

    // The Location names the call where the proxy serves it: its hangup goes to Azure with the server's key.
    const hangup = await request(`${web.url}${result.location}/hangup`, { method: 'POST', headers: { Authorization: `Bearer ${WEB_KEY}` } });
    assert.equal(hangup.status, 200, hangup.text);
    assert.equal(mock.lastRequest().path, `/openai/v1/realtime/calls/${seen.callId}/hangup`);
    assert.equal(mock.lastRequest().headers['api-key'], SERVER_KEY);
  });

  it('takes the form shape (sdp + session) through nginx, with the server key and the session model mapped', async () => {
    const offerFile = path.join(dir, 'offer.sdp');
    fs.writeFileSync(offerFile, OFFER);
    const session = JSON.stringify({ type: 'realtime', model: 'voice-mini', audio: { output: { voice: 'marin' } } });
    const { stdout, stderr } = await curl(['-i', '-H', `Authorization: Bearer ${WEB_KEY}`,
      '-F', `sdp=<${offerFile}`, '-F', `session=${session}`, `${nginx.subUrl}/v1/realtime/calls?webrtcfilter=on`]);
    assert.match(stdout, /^HTTP\/1\.1 201/, stderr);
    assert.match(stdout, /\r\ncontent-type: application\/sdp\r\n/i);
    assert.match(stdout, /\r\nlocation: \/openai-proxy\/v1\/realtime\/calls\/rtc_[\w-]+\r\n/i);
    assert.match(stdout, /\r\n\r\nv=0\r\n[^]*a=setup:passive/);
    const seen = mock.realtimeCalls.at(-1);
    assert.equal(seen.auth, 'api-key');
    assert.equal(seen.deployment, 'gpt-4o-mini-realtime-preview');
    assert.equal(seen.sdp, OFFER);  // the form's field byte for byte
    assert.equal(seen.query, '?webrtcfilter=on');
    assert.deepEqual(JSON.parse(seen.session), { type: 'realtime', model: 'gpt-4o-mini-realtime-preview', audio: { output: { voice: 'marin' } } });
    const sent = mock.lastRequest();
    assert.equal(sent.headers['api-key'], SERVER_KEY);
    assert.equal(sent.headers.authorization, undefined);
  });

  const post = (route, { headers = {}, body = '' } = {}) =>
    request(`${web.url}/v1/realtime/${route}`, { method: 'POST', headers, body });
  const secretsBody = (model) => JSON.stringify({ session: { type: 'realtime', model } });
  const json = { 'Content-Type': 'application/json' };

  it("takes a bare SDP offer with the server's key and the query's model mapped", async () => {
    const answer = await post('calls?model=voice&webrtcfilter=on', {
      headers: { 'api-key': WEB_KEY, 'Content-Type': 'application/sdp', Origin: 'https://app.example' }, body: OFFER });
    assert.equal(answer.status, 201, answer.text);
    // a page on another origin may read the call's Location
    assert.match(answer.headers['access-control-expose-headers'], /\blocation\b/);
    assert.match(answer.headers.location, /^\/v1\/realtime\/calls\/rtc_/);
    assert.match(answer.text, /^v=0\r\n/);
    const seen = mock.realtimeCalls.at(-1);
    assert.equal(seen.auth, 'api-key');
    assert.equal(seen.deployment, 'gpt-realtime');
    assert.equal(seen.query, '?model=gpt-realtime&webrtcfilter=on');
    assert.equal(seen.sdp, OFFER);
    assert.equal(mock.lastRequest().headers['api-key'], SERVER_KEY);
  });

  it('refuses a wrong client key, on client_secrets and on a call (whose Bearer is not the client key)', async () => {
    const wrong = await post('client_secrets', { headers: { ...json, Authorization: 'Bearer not-a-key-at-all' }, body: secretsBody('voice') });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.code, 'invalid_api_key');
    // an ephemeral-looking Bearer without the proxy's key in api-key
    const bare = await post('calls', { headers: { Authorization: 'Bearer ek_whatever', 'Content-Type': 'application/sdp' }, body: OFFER });
    assert.equal(bare.status, 401);
    assert.equal(bare.json.error.code, 'invalid_api_key');
    // the proxy's key, but an ephemeral key Azure never gave: Azure's 401 relayed
    const forged = await post('calls', { headers: { Authorization: 'Bearer ek_forged', 'api-key': WEB_KEY, 'Content-Type': 'application/sdp' }, body: OFFER });
    assert.equal(forged.status, 401);
    assert.match(forged.text, /ephemeral key is invalid/);
  });

  it("counts a call as a request in the key's limits", async () => {
    await clearOfMinuteEdge(5000);
    const first = await post('client_secrets', { headers: { ...json, Authorization: `Bearer ${TIGHT_KEY}` }, body: secretsBody('voice') });
    assert.equal(first.status, 200);
    const second = await post('calls?model=voice', { headers: { 'api-key': TIGHT_KEY, 'Content-Type': 'multipart/form-data; boundary=b' },
      body: `--b\r\nContent-Disposition: form-data; name="sdp"\r\n\r\n${OFFER}\r\n--b\r\nContent-Disposition: form-data; name="session"\r\n\r\n{"type":"realtime","model":"voice"}\r\n--b--\r\n` });
    assert.equal(second.status, 429);
    assert.equal(second.json.error.code, 'rate_limit_exceeded');
    assert.match(second.json.error.message, /request/);
    assert.ok(Number(second.headers['retry-after']) > 0);
  });

  it('gives an unknown model the usual answer, and clear 400s and 413s for bodies that cannot be a call', async () => {
    const auth = { Authorization: `Bearer ${WEB_KEY}` };
    const unknown = await post('client_secrets', { headers: { ...json, ...auth }, body: secretsBody('no-such-voice') });
    assert.equal(unknown.status, 404);  // no mapping: the seed's deployment name, which Azure lacks
    assert.equal(unknown.json.error.code, 'DeploymentNotFound');
    const noModel = await post('client_secrets', { headers: { ...json, ...auth }, body: '{"session":{"type":"realtime"}}' });
    assert.equal(noModel.status, 400);
    assert.equal(noModel.json.error.code, 'missing_model');
    const twice = await post('client_secrets', { headers: { ...json, ...auth }, body: '{"session":{"model":"voice"},"session":{"model":"x"}}' });
    assert.equal(twice.status, 400);

    // A bare SDP call's Bearer is Azure's credential: the proxy's key comes in api-key.
    const sdpAuth = { 'api-key': WEB_KEY, 'Content-Type': 'application/sdp' };
    const notSdp = await post('calls', { headers: sdpAuth, body: '{"sdp":"v=0"}' });
    assert.equal(notSdp.status, 400);
    assert.equal(notSdp.json.error.code, 'invalid_realtime_call');
    assert.match(notSdp.json.error.message, /v=0/);
    const wrongType = await post('calls', { headers: { ...auth, 'Content-Type': 'text/plain' }, body: OFFER });
    assert.equal(wrongType.status, 400);
    assert.match(wrongType.json.error.message, /application\/sdp/);
    const noSdp = await post('calls', { headers: { ...auth, 'Content-Type': 'multipart/form-data; boundary=b' },
      body: '--b\r\nContent-Disposition: form-data; name="session"\r\n\r\n{"type":"realtime","model":"voice"}\r\n--b--\r\n' });
    assert.equal(noSdp.status, 400);
    assert.match(noSdp.json.error.message, /fields sdp .* and session/);
    const huge = await post('calls', { headers: sdpAuth, body: OFFER + 'a=x\r\n'.repeat(MAX_BODY / 5) });
    assert.equal(huge.status, 413);
    assert.equal(huge.json.error.code, 'request_too_large');
    // none of these reached Azure
    assert.equal(mock.requests.filter((r) => r.path === '/openai/v1/realtime/calls' && r.body.length > MAX_BODY).length, 0);

    const websocket = await request(`${web.url}/v1/realtime?model=voice`, { headers: auth });
    assert.equal(websocket.status, 501);
    assert.equal(websocket.json.error.code, 'realtime_not_supported');
    assert.match(websocket.json.error.message, /client_secrets/);
  });
});
