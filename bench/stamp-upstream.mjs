// An SSE upstream that stamps every event with the time it was written, so a client can
// tell how long each event took to reach it: `data: {"t":<ms since the epoch>}`.
// A request to the Responses API (/openai/responses, /openai/v1/responses: what the
// proxy's Chat→Responses bridge sends) gets a Responses stream instead, each text delta
// the stamp `@<ms since the epoch>`, which the bridge turns into a chat chunk's content.
// Usage: node stamp-upstream.mjs PORT INTERVAL_MS EVENTS
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const [port, intervalMs, events] = process.argv.slice(2).map(Number);
const now = () => performance.timeOrigin + performance.now();

const chatEvent = () => `data: {"t":${now().toFixed(3)}}\n\n`;
const chatEnd = () => 'data: [DONE]\n\n';

// The Responses stream's frame around the stamped deltas, in Azure's order.
function responsesStream() {
  let sequence = 0;
  const event = (type, fields) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`;
  const response = { id: 'resp_bench', object: 'response', created_at: Math.floor(Date.now() / 1000), model: 'bench-stamp-codex', output: [] };
  const item = { id: 'msg_bench', type: 'message', role: 'assistant' };
  return {
    start: () => event('response.created', { response: { ...response, status: 'in_progress' } }) +
      event('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } }),
    next: () => event('response.output_text.delta', { item_id: item.id, output_index: 0, content_index: 0, delta: `@${now().toFixed(3)}`, logprobs: [] }),
    end: () => event('response.completed', {
      response: { ...response, status: 'completed', usage: { input_tokens: 9, output_tokens: events, total_tokens: 9 + events } },
    }),
  };
}

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const stream = /^\/openai\/(v1\/)?responses\b/.test(req.url) ? responsesStream() : { start: () => '', next: chatEvent, end: chatEnd };
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const opening = stream.start();
    if (opening) res.write(opening);
    let sent = 0;
    const timer = setInterval(() => {
      if (sent++ === events) {
        clearInterval(timer);
        res.end(stream.end());
        return;
      }
      res.write(stream.next());
    }, intervalMs);
    res.on('close', () => clearInterval(timer));
  });
});
server.listen(port, '127.0.0.1', () => console.log(`stamp upstream on ${port}`));
process.on('SIGTERM', () => process.exit(0));
