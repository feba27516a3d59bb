// What a Redis client sent, read as a server would: the stand-ins for Redis that the tests
// and the fault run start (a Redis that answers garbage, lies or never answers).

// The commands in `buffer` (RESP arrays of bulk strings), each as its words; what is
// left incomplete stays for the next read.
export function takeCommands(state) {
  const commands = [];
  for (;;) {
    const text = state.buffer.toString('latin1');
    if (!text.startsWith('*')) { state.buffer = Buffer.alloc(0); return commands; }
    let at = text.indexOf('\r\n');
    if (at < 0) return commands;
    const count = Number(text.slice(1, at));
    const words = [];
    at += 2;
    for (let i = 0; i < count; i++) {
      const end = text.indexOf('\r\n', at);
      if (end < 0 || text[at] !== '$') return commands;
      const length = Number(text.slice(at + 1, end));
      if (text.length < end + 2 + length + 2) return commands;
      words.push(text.slice(end + 2, end + 2 + length));
      at = end + 2 + length + 2;
    }
    commands.push(words);
    state.buffer = state.buffer.subarray(at);
  }
}
