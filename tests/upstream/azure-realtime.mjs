// The realtime API's WebRTC session setup as Azure's GA routes serve it (issue 25), for
// azure-mock.mjs: POST /openai/v1/realtime/client_secrets gives an ephemeral key (`ek_…`)
// for a realtime deployment; POST /openai/v1/realtime/calls takes an SDP offer, either bare
// (`application/sdp`, with that ephemeral key as Bearer, or the resource's key and
// `?model=`) or as a form with the fields `sdp` and `session`, and answers 201 with an SDP
// answer a browser's RTCPeerConnection accepts and a Location naming the call. No media
// flows: the answer's ICE candidates are none and its DTLS fingerprint is fixed.
import crypto from 'node:crypto';

import { parseMultipart } from './azure-resources.mjs';

export const REALTIME_DEPLOYMENTS = ['gpt-realtime', 'gpt-4o-mini-realtime-preview'];

// A fixed SHA-256 fingerprint: the answer's DTLS identity (the handshake never runs).
const FINGERPRINT = Array.from(crypto.createHash('sha256').update('azure-realtime stand-in').digest())
  .map((byte) => byte.toString(16).padStart(2, '0').toUpperCase()).join(':');

const token = (bytes) => crypto.randomBytes(bytes).toString('base64url');

// The offer's session and media sections, each a list of lines.
function parseSdp(text) {
  const lines = text.split(/\r?\n/).filter((line) => line.length);
  if (lines[0] !== 'v=0') return null;
  const sections = [];
  for (const line of lines) {
    if (line.startsWith('m=')) sections.push([line]);
    else if (sections.length) sections[sections.length - 1].push(line);
  }
  return sections;
}

const attribute = (section, name) => section.find((line) => line.startsWith(`a=${name}:`))?.slice(name.length + 3);

// One answer section for an offered one: the same kind, mid and transport, the first
// codec of the offer (opus for audio), this side's ICE and DTLS identity.
function answerSection(offered, ice) {
  const [kind, port, proto, ...formats] = offered[0].slice(2).split(' ');
  const mid = attribute(offered, 'mid');
  const lines = [];
  if (port === '0') return [`m=${kind} 0 ${proto} ${formats.join(' ')}`, ...(mid !== undefined ? [`a=mid:${mid}`] : [])];
  const common = ['c=IN IP4 0.0.0.0', `a=ice-ufrag:${ice.ufrag}`, `a=ice-pwd:${ice.pwd}`,
    `a=fingerprint:sha-256 ${FINGERPRINT}`, 'a=setup:passive', ...(mid !== undefined ? [`a=mid:${mid}`] : [])];
  if (kind === 'application') {
    lines.push(`m=application 9 ${proto} ${formats.join(' ')}`, ...common, 'a=sctp-port:5000', 'a=max-message-size:262144');
    return lines;
  }
  const rtpmaps = offered.filter((line) => line.startsWith('a=rtpmap:'));
  const chosen = rtpmaps.find((line) => /opus\/48000/i.test(line)) || rtpmaps[0];
  const pt = chosen ? chosen.slice('a=rtpmap:'.length).split(' ')[0] : formats[0];
  lines.push(`m=${kind} 9 ${proto} ${pt}`, ...common, 'a=rtcp:9 IN IP4 0.0.0.0', 'a=sendrecv', 'a=rtcp-mux');
  if (chosen) lines.push(chosen);
  const fmtp = offered.find((line) => line.startsWith(`a=fmtp:${pt} `));
  if (fmtp) lines.push(fmtp);
  return lines;
}

export function sdpAnswer(offer) {
  const sections = parseSdp(offer);
  if (!sections || !sections.length) return null;
  const ice = { ufrag: token(6), pwd: token(18) };
  const mids = sections.map((s) => attribute(s, 'mid')).filter((mid) => mid !== undefined);
  const head = ['v=0', `o=- ${crypto.randomInt(1e9)} 2 IN IP4 127.0.0.1`, 's=-', 't=0 0',
    ...(mids.length ? [`a=group:BUNDLE ${mids.join(' ')}`] : []), 'a=msid-semantic: WMS'];
  return [...head, ...sections.flatMap((s) => answerSection(s, ice))].join('\r\n') + '\r\n';
}

// `checkAzureAuth(req, res)`: the mock's own check of the resource's key or Entra token.
export function createRealtime({ mock, checkAzureAuth, sendJson, azureError, deployments = REALTIME_DEPLOYMENTS }) {
  const known = new Set(deployments);
  const ephemeral = new Map();  // value -> { deployment, expiresAt (s), session }
  mock.realtimeCalls = [];      // each call answered: { auth, deployment, sdp, callId }
  mock.ephemeralKeys = ephemeral;

  const notFound = (res, name) => sendJson(res, 404, azureError('DeploymentNotFound',
    `The API deployment for this resource does not exist (${String(name).slice(0, 64)}).`));
  const bad = (res, message) => sendJson(res, 400, { error: { message, type: 'invalid_request_error', code: 'invalid_value', param: null } });

  function clientSecrets(req, res, raw) {
    if (!checkAzureAuth(req, res)) return;
    let body;
    try { body = JSON.parse(raw.toString('utf8')); } catch { return bad(res, 'The body is not valid JSON.'); }
    const session = body?.session;
    if (!session || session.type !== 'realtime') return bad(res, "session.type must be 'realtime'.");
    if (!known.has(session.model)) return notFound(res, session.model);
    const seconds = Number(body.expires_after?.seconds || 600);
    const expiresAt = Math.floor(Date.now() / 1000) + seconds;
    const value = `ek_${token(24)}`;
    const echoed = { ...session, id: `sess_${token(12)}`, object: 'realtime.session' };
    ephemeral.set(value, { deployment: session.model, expiresAt, session: echoed });
    sendJson(res, 200, { value, expires_at: expiresAt, session: echoed });
  }

  // The call's credential and deployment, or false (the answer sent).
  function callAuth(req, res, url, form) {
    const bearer = /^Bearer (ek_\S+)$/.exec(req.headers.authorization || '')?.[1];
    if (bearer) {
      const issued = ephemeral.get(bearer);
      if (!issued || issued.expiresAt * 1000 < Date.now()) {
        sendJson(res, 401, azureError('401', 'The ephemeral key is invalid or has expired.'));
        return false;
      }
      return { auth: 'ephemeral', key: bearer, deployment: issued.deployment };
    }
    if (!checkAzureAuth(req, res)) return false;
    let deployment = url.searchParams.get('model');
    if (form) {
      try { deployment = JSON.parse(form.fields.session || 'null')?.model; } catch { deployment = undefined; }
    }
    if (!known.has(deployment)) {
      notFound(res, deployment);
      return false;
    }
    return { auth: req.headers['api-key'] ? 'api-key' : 'entra', deployment };
  }

  function calls(req, res, url, raw) {
    const type = (req.headers['content-type'] || '').toLowerCase();
    const form = type.startsWith('multipart/form-data') ? parseMultipart(raw, type) : null;
    if (!form && !type.startsWith('application/sdp')) return bad(res, 'The body must be application/sdp or multipart/form-data.');
    if (form && form.fields.sdp === undefined) return bad(res, "The form has no field 'sdp'.");
    const who = callAuth(req, res, url, form);
    if (!who) return;
    const sdp = form ? form.fields.sdp : raw.toString('utf8');
    const answer = sdpAnswer(sdp);
    if (!answer) return bad(res, 'The SDP offer could not be parsed.');
    const callId = `rtc_${token(12)}`;
    mock.realtimeCalls.push({ ...who, sdp, callId, query: url.search, session: form?.fields.session });
    res.writeHead(201, { 'content-type': 'application/sdp', 'content-length': Buffer.byteLength(answer),
      location: `/openai/v1/realtime/calls/${callId}`, 'apim-request-id': crypto.randomUUID() });
    res.end(answer);
  }

  // Requests below /openai/v1/realtime/; false when the path is none of the calls'.
  function serve(req, res, url, raw) {
    const path = url.pathname.slice('/openai/v1/realtime'.length);
    if (req.method === 'POST' && path === '/client_secrets') return clientSecrets(req, res, raw), true;
    if (req.method === 'POST' && path === '/calls') return calls(req, res, url, raw), true;
    if (req.method === 'POST' && /^\/calls\/rtc_[\w-]+\/hangup$/.test(path)) {
      if (checkAzureAuth(req, res)) { res.writeHead(200, { 'content-length': 0 }); res.end(); }
      return true;
    }
    return false;
  }

  return { serve };
}
