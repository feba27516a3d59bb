// An SSE upstream that stamps every event with the time it was written, so a client can
// tell how long each event took to reach it: `data: {"t":<ms since the epoch>}`.
// Usage: node stamp-upstream.mjs PORT INTERVAL_MS EVENTS
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const [port, intervalMs, events] = process.argv.slice(2).map(Number);
const now = () => performance.timeOrigin + performance.now();

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let sent = 0;
    const timer = setInterval(() => {
      if (sent++ === events) {
        clearInterval(timer);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.write(`data: {"t":${now().toFixed(3)}}\n\n`);
    }, intervalMs);
    res.on('close', () => clearInterval(timer));
  });
});
server.listen(port, '127.0.0.1', () => console.log(`stamp upstream on ${port}`));
process.on('SIGTERM', () => process.exit(0));
