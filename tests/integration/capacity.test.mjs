// Capacity out of the box: the proxy as `make run` serves it (deploy/lighttpd/lighttpd.conf
// as shipped, no proxy setting changed) holds hundreds of streams open at once. The old
// thread-per-request engine held 16, and lighttpd's own defaults stop near 340.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import {
  PROXY_BIN, ROOT, canConnect, freePort, openStream, startChild, tempDir, waitFor,
} from './harness.mjs';

const KEY = 'capacity-test-key';
const STREAMS = 600;

describe('capacity, as make run serves it', () => {
  let mock, lighttpd, url;

  before(async () => {
    mock = createAzureMock({ apiKey: KEY });
    await mock.listen();
    const port = await freePort();
    lighttpd = startChild('lighttpd', ['-D', '-f', path.join(ROOT, 'deploy/lighttpd/lighttpd.conf')], {
      env: {
        PATH: process.env.PATH, ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0',
        AOP_HTTP_HOST: '127.0.0.1', AOP_HTTP_PORT: String(port), AOP_RUN_DIR: tempDir('capacity'),
        AOP_PROGRAM: PROXY_BIN, AOP_PROCS: '1', AZURE_OPENAI_ENDPOINT: mock.url,
      },
    });
    await waitFor(async () => lighttpd.exited || canConnect({ host: '127.0.0.1', port }), 'lighttpd');
    url = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    await lighttpd?.stop();
    await mock?.close();
  });

  it(`holds ${STREAMS} streams open at once and answers every one whole`, { timeout: 60000 }, async () => {
    const streams = [];
    const late = [];
    // Every upstream stream holds its second event until every client has its first:
    // only a proxy (and web server) holding all of them at once gets past this.
    mock.pace = async (index) => {
      if (index !== 1) return;
      try { await Promise.all(streams.map((s) => s.waitForEvents(1, 30000))); } catch (error) { late.push(error.message); }
    };
    for (let i = 0; i < STREAMS; i++) {
      streams.push(openStream(`${url}/v1/chat/completions`, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] },
        { authorization: `Bearer ${KEY}`, 'x-mock-scenario': 'paced' }));
    }
    const results = await Promise.allSettled(streams.map((s) => s.done));
    mock.pace = async () => {};
    assert.deepEqual(late.slice(0, 3), []);
    const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
    assert.deepEqual(failed.slice(0, 3), [], `${failed.length} streams failed`);
    const incomplete = streams.filter((s) => s.status !== 200 || s.events[s.events.length - 1] !== 'data: [DONE]');
    assert.equal(incomplete.length, 0, `${incomplete.length} streams incomplete, e.g. status ${incomplete[0]?.status}`);
  });
});
