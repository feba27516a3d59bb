// A real browser: headless Chromium opens a page from another origin, which streams a chat
// completion from the proxy with fetch() and renders it as it comes. The browser sends the
// CORS preflight (x-stainless-* headers make the request non-simple) to the proxy first.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { chromium } from 'playwright-core';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import { startStack } from './harness.mjs';

const KEY = 'browser-key';

// The page: streams /v1/chat/completions, parses SSE, appends each delta to #answer.
const page = (proxy) => `<!doctype html>
<html><body>
<p id="status">starting</p>
<p id="answer"></p>
<script>
async function run() {
  const response = await fetch(${JSON.stringify(proxy)} + '/v1/chat/completions', {
    method: 'POST',
    headers: {
      'Authorization': 'Bearer ${KEY}',
      'Content-Type': 'application/json',
      'X-Stainless-Lang': 'js',
      'X-Stainless-OS': 'Unknown',
      'X-Stainless-Retry-Count': '0',
    },
    body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'from the browser' }] }),
  });
  document.getElementById('status').textContent = 'status ' + response.status;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    let at;
    while ((at = pending.indexOf('\\n\\n')) >= 0) {
      const event = pending.slice(0, at);
      pending = pending.slice(at + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const chunk = JSON.parse(event.slice(6));
      const delta = chunk.choices[0] && chunk.choices[0].delta.content;
      if (delta) document.getElementById('answer').textContent += delta;
    }
  }
  document.getElementById('status').textContent = 'done ' + response.status;
}
run().catch((error) => { document.getElementById('status').textContent = 'failed: ' + error; });
</script>
</body></html>`;

describe('a browser page on another origin', () => {
  let stack, site, browser;

  before(async () => {
    stack = await startStack(() => createAzureMock({ apiKey: KEY }), {});
    site = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page(stack.url));
    });
    await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,  // playwright gives it a fresh, empty profile
      // No network but loopback here: keep Chromium from reaching for Google's hosts.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  after(async () => {
    await browser?.close();
    site?.close();
    await stack?.stop();
  });

  it('streams a chat completion through CORS and renders it', async () => {
    const tab = await browser.newPage();
    const seen = [];
    tab.on('request', (r) => seen.push(`${r.method()} ${new URL(r.url()).pathname}`));
    // The page's origin differs from the proxy's by port: a cross-origin call.
    await tab.goto(`http://localhost:${site.address().port}/`);
    await tab.waitForFunction(() => document.getElementById('status').textContent.startsWith('done') ||
      document.getElementById('status').textContent.startsWith('failed'), null, { timeout: 20000 });
    assert.equal(await tab.textContent('#status'), 'done 200');
    assert.equal(await tab.textContent('#answer'), 'Hello from the mock! You said: from the browser');

    // The preflight was answered by the proxy itself; Azure saw only the POST, with its key.
    await stack.proxy.waitForLog(/OPTIONS \/v1\/chat\/completions .*status=204/);
    assert.deepEqual(stack.mock.requests.map((r) => r.method), ['POST']);
    assert.equal(stack.mock.lastRequest().headers['api-key'], KEY);
    assert.equal(stack.mock.lastRequest().headers['x-stainless-lang'], 'js');
    assert.ok(seen.includes('POST /v1/chat/completions'));
    await tab.close();
  });
});
