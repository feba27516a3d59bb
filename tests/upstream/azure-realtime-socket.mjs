// Azure's realtime WebSocket (GA: wss://RESOURCE/openai/v1/realtime?model=DEPLOYMENT), as
// little of it as the companion's tests need (issue 25), over TLS with the test's
// certificate. The handshake checks `api-key` (401) and that `model` is a realtime
// deployment (404), answering Azure's JSON errors; then `session.created`, and for the
// client's events: `session.update` -> `session.updated`; `input_audio_buffer.append`
// (base64 PCM16, 24 kHz: 4800 bytes a 100 ms chunk) kept; `input_audio_buffer.commit` ->
// `input_audio_buffer.committed`; `response.create` -> `response.created`, audio and
// transcript deltas (one 100 ms chunk of audio per delta; as many as the response's
// `metadata.deltas` asks, else `deltas`), `response.done` with usage;
// anything else, or bad JSON or audio -> an `error` event. The test reads what each
// session received and how it closed, and can close a session with a code of its choice.
// Keyless: with `verifyBearer` (the Entra stand-in's verify), `Authorization: Bearer` is
// taken as Azure takes it, a token it finds wrong refused with 401. The dated preview shape
// (/openai/realtime?api-version=…&deployment=…) is answered too while `preview` is set
// (its api-version recorded). `refuseAll` ({ status, retryAfter }): every handshake
// refused so (a resource rate limited or down). `upgradeDelayMs`: each handshake answered
// that late (Azure slow to answer the upgrade); its `upgrades` entry says `closedUnanswered`
// when the caller closed the connection first. `silent`: each handshake accepted by hand
// (101), then nothing read or sent, a close frame never answered (Azure gone quiet).
import crypto from 'node:crypto';
import https from 'node:https';

import { WebSocketServer } from 'ws';

import { REALTIME_DEPLOYMENTS } from './azure-realtime.mjs';

export const AUDIO_CHUNK_BYTES = 4800;  // 24 kHz PCM16 mono, 100 ms

const id = (prefix) => `${prefix}_${crypto.randomBytes(8).toString('hex')}`;

function refuseUpgrade(socket, status, reason, code, message) {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`);
}

function errorEvent(code, message, eventId) {
  return { type: 'error', event_id: id('event'), error: { type: 'invalid_request_error', code, message, param: null, event_id: eventId ?? null } };
}

// Audio that a base64 decoder takes back byte for byte, of whole PCM16 samples.
function validAudio(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.length % 2 ? null : bytes;
}

// One session: the events of the GA protocol it answers.
function serveSession(ws, record, { deltas }) {
  const session = { type: 'realtime', object: 'realtime.session', id: id('sess'), model: record.deployment, output_modalities: ['audio'],
    instructions: '', audio: { input: { format: { type: 'audio/pcm', rate: 24000 } }, output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy' } } };
  const send = (event) => ws.send(JSON.stringify({ event_id: id('event'), ...event }));
  send({ type: 'session.created', session });
  ws.on('message', (data, isBinary) => {
    record.received.push(isBinary ? { binary: data.length } : data.toString());
    let event;
    try { event = JSON.parse(data.toString()); } catch { return send(errorEvent('invalid_json', 'The event is not JSON.')); }
    switch (event?.type) {
      case 'session.update':
        Object.assign(session, event.session ?? {});
        return send({ type: 'session.updated', session });
      case 'input_audio_buffer.append': {
        const audio = validAudio(event.audio);
        if (!audio) return send(errorEvent('invalid_value', 'The audio is not base64 PCM16.', event.event_id));
        record.audioBytes += audio.length;
        return undefined;
      }
      case 'input_audio_buffer.commit':
        return send({ type: 'input_audio_buffer.committed', previous_item_id: null, item_id: id('item') });
      case 'response.create':  // metadata.deltas (a string, as metadata's values are): a longer answer
        return respond(send, Number(event.response?.metadata?.deltas) || deltas);
      default:
        return send(errorEvent('invalid_event', `Unknown event type '${String(event?.type).slice(0, 40)}'.`, event?.event_id));
    }
  });
}

function respond(send, deltas) {
  const response = { object: 'realtime.response', id: id('resp'), status: 'in_progress', output: [] };
  const itemId = id('item');
  send({ type: 'response.created', response });
  send({ type: 'response.output_item.added', response_id: response.id, output_index: 0, item: { id: itemId, type: 'message', role: 'assistant', content: [] } });
  const chunk = Buffer.alloc(AUDIO_CHUNK_BYTES, 1).toString('base64');
  for (let i = 0; i < deltas; i++) {
    send({ type: 'response.output_audio.delta', response_id: response.id, item_id: itemId, output_index: 0, content_index: 0, delta: chunk });
    send({ type: 'response.output_audio_transcript.delta', response_id: response.id, item_id: itemId, output_index: 0, content_index: 0, delta: `word${i} ` });
  }
  send({ type: 'response.done', response: { ...response, status: 'completed', usage: { total_tokens: 42, input_tokens: 30, output_tokens: 12 } } });
}

// The 101 by hand (RFC 6455 4.2.2), then the connection held without a byte either way.
function acceptSilently(req, socket) {
  const accept = crypto.createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.on('data', () => {});
  socket.on('error', () => {});
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
}

// { url, sessions, upgrades, close() }. `apiKey`: the resource's key; `deltas`: how many
// audio deltas a response streams.
export async function startRealtimeSocketStandIn({ tls, apiKey, deltas = 5, verifyBearer = null, preview = true }) {
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => { res.writeHead(426); res.end(); });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 << 20 });
  const sessions = [];
  const upgrades = [];
  const standIn = { refuseAll: null, upgradeDelayMs: 0, silent: false };
  const held = new Set();  // every connection, ended at close() (the silent ones too)
  server.on('connection', (socket) => { held.add(socket); socket.on('close', () => held.delete(socket)); });
  server.on('upgrade', (req, socket, head) => {
    const upgrade = { url: req.url, headers: req.headers, closedUnanswered: false };
    upgrades.push(upgrade);
    if (!standIn.upgradeDelayMs) return answerUpgrade(req, socket, head);
    let answered = false;
    socket.on('close', () => { upgrade.closedUnanswered ||= !answered; });
    setTimeout(() => {
      answered = true;
      if (!socket.destroyed) answerUpgrade(req, socket, head);
    }, standIn.upgradeDelayMs);
  });
  function answerUpgrade(req, socket, head) {
    const url = new URL(req.url, 'https://stand-in');
    const previewShape = preview && url.pathname === '/openai/realtime' && url.searchParams.has('api-version');
    const deployment = url.searchParams.get(previewShape ? 'deployment' : 'model');
    if (standIn.silent) return acceptSilently(req, socket);
    if (standIn.refuseAll) {
      const { status, retryAfter } = standIn.refuseAll;
      const body = JSON.stringify({ error: { code: String(status), message: 'Refused by the test.' } });
      return socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\n` +
        (retryAfter ? `Retry-After: ${retryAfter}\r\n` : '') + `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    }
    if (url.pathname !== '/openai/v1/realtime' && !previewShape) return refuseUpgrade(socket, 404, 'Not Found', '404', 'Resource not found');
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const credentialOk = verifyBearer && bearer ? !verifyBearer(bearer) : req.headers['api-key'] === apiKey;
    if (!credentialOk)
      return refuseUpgrade(socket, 401, 'Unauthorized', '401', 'Access denied due to invalid subscription key or wrong API endpoint.');
    if (!REALTIME_DEPLOYMENTS.includes(deployment))
      return refuseUpgrade(socket, 404, 'Not Found', 'DeploymentNotFound', 'The API deployment for this resource does not exist.');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const record = { deployment, ws, received: [], audioBytes: 0, closed: null, bearer: bearer ?? null,
        apiVersion: previewShape ? url.searchParams.get('api-version') : null };
      record.closedPromise = new Promise((resolve) => ws.on('close', (code, reason) => {
        record.closed = { code, reason: reason.toString() };
        resolve(record.closed);
      }));
      sessions.push(record);
      serveSession(ws, record, { deltas });
    });
  }
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(standIn, {
    url: `https://127.0.0.1:${server.address().port}`,
    sessions, upgrades,
    close: () => new Promise((resolve) => {
      for (const client of wss.clients) client.terminate();
      for (const socket of held) socket.destroy();
      server.closeAllConnections?.();
      server.close(resolve);
    }),
  });
}
