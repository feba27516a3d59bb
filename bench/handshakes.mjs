// The TLS handshakes a streams run cost the upstream: full ones and resumed ones, as the
// upstream's nginx saw them ($ssl_session_reused in its access log of the streams' TLS
// port, one line per request). A path that shares TLS sessions between its connections
// resumes most of them after the first few; one that does not (the libcurl floor: each of
// its easy handles keeps its own session cache) makes a full handshake on every connection.
import fs from 'node:fs';

// nginx's log format for it: "r" when the connection resumed a session, "." when not.
export const HANDSHAKE_LOG_FORMAT = 'log_format handshakes \'$ssl_session_reused\';';

function logSize(file) {
  try { return fs.statSync(file).size; } catch { return 0; }
}

// Runs `work` and counts the lines the log gained meanwhile. The result gets `handshakes`
// ({ full, resumed }) when there were any: a run over plain HTTP leaves the log as it was.
export async function countHandshakes(file, work) {
  const before = logSize(file);
  const result = await work();
  const after = logSize(file);
  if (after <= before) return result;
  const handle = fs.openSync(file, 'r');
  const added = Buffer.alloc(after - before);
  try { fs.readSync(handle, added, 0, added.length, before); } finally { fs.closeSync(handle); }
  const marks = added.toString('utf8').split('\n').filter(Boolean);
  const resumed = marks.filter((mark) => mark === 'r').length;
  return { ...result, handshakes: { full: marks.length - resumed, resumed } };
}

// One line under the streams tables for the runs that made TLS handshakes.
export function handshakeLines(results) {
  const rows = [];
  for (const [key, runs] of Object.entries(results.streams))
    for (const r of runs)
      if (r.handshakes && !r.promptBytes)
        rows.push(`${results.names[key]}, ${r.streams} streams: ${r.handshakes.full} full, ${r.handshakes.resumed} resumed`);
  if (!rows.length) return [];
  return ['', `**TLS handshakes the streams cost the upstream** (nginx's \`$ssl_session_reused\`, one per connection): ${rows.join('; ')}.`];
}
