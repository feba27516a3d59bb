// What the fault run runs against: three local upstreams, a real Redis, the proxy with
// 4 workers and a routing file, lighttpd in front. Every process is started here, tracked
// by PID, and stopped by stop() (in the reverse order), on success, failure or SIGINT.
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import {
  PROXY_BIN, descendants, freePort, isRunning, processesMentioning, sleep, startLighttpd, startProxy, tempDir, waitFor,
} from '../integration/harness.mjs';
import { KEYS, KEY_LIMITS } from './clients.mjs';
import { startRedis } from './redis.mjs';

const UPSTREAM_KEY = 'chaos-upstream-key';
export const WORKERS = 4;
// The main and backup upstreams pace their streams (the clients ask for 20 ms between
// events), so that a stream is still running when a fault arrives.
const NORMAL_SCENARIO = 'slow';
export const RETRY = { max_tries: 3, circuit_failures: 2, circuit_open_seconds: 1, cooldown_cap_seconds: 5, default_cooldown_seconds: 1 };
export const UNRESOLVABLE_URL = 'http://nonexistent.invalid:8080';

// The routing file's text. `variant`: 'base'; 'shuffled' (other weights, priorities and
// limits, the same names: a reload that changes what is in force); 'unresolvable' (an
// endpoint whose host does not resolve, first for gpt-4o and the embeddings).
export function routing(mocks, variant = 'base', random = Math.random) {
  const weight = () => (variant === 'shuffled' ? 1 + Math.floor(random() * 3) : 1);
  const endpoints = {
    main: { url: mocks.main.url, key: 'env:UPSTREAM_KEY', weight: weight() },
    backup: { url: mocks.backup.url, key: 'env:UPSTREAM_KEY', priority: 1, weight: weight() },
    trial: { url: mocks.trial.url, key: 'env:UPSTREAM_KEY' },
  };
  const pair = variant === 'shuffled' && random() < 0.5 ? ['main', { endpoint: 'backup', priority: 0 }] : ['main', 'backup'];
  const models = {
    'gpt-4o': pair,
    'gpt-4o-mini': ['main', 'backup'],
    'text-embedding-3-small': ['main', 'backup'],
    'gpt-trial': ['trial/gpt-4o'],
  };
  if (variant === 'unresolvable') {
    endpoints.nowhere = { url: UNRESOLVABLE_URL, key: 'env:UPSTREAM_KEY' };
    models['gpt-4o'] = ['nowhere', ...models['gpt-4o']];
    models['text-embedding-3-small'] = ['nowhere', ...models['text-embedding-3-small']];
  }
  const keys = Object.fromEntries(Object.entries(KEY_LIMITS).map(([name, limits]) => {
    const scaled = variant === 'shuffled' && limits.concurrent ? { ...limits, concurrent: limits.concurrent + Math.floor(random() * 64) } : limits;
    return [name, { key: `env:KEY_${name.toUpperCase()}`, ...scaled }];
  }));
  return JSON.stringify({ endpoints, models, keys, retry: RETRY }, null, 2);
}

// The targets a routing variant routes to (what aop_target_circuit_open must show closed).
export function routedTargets(text) {
  const config = JSON.parse(text);
  const names = new Set();
  for (const [model, targets] of Object.entries(config.models))
    for (const target of targets) {
      const endpoint = typeof target === 'string' ? target.split('/')[0] : target.endpoint;
      const deployment = typeof target === 'string' && target.includes('/') ? target.split('/')[1] : model;
      names.add(`${endpoint}/${deployment}`);
    }
  return [...names];
}

// In-flight answers of a mock, with the client port of each (the proxy worker's side of
// the connection), so that a fault can find or reset them.
function trackAnswers(mock) {
  mock.answers = new Set();
  mock.server.on('request', (req, res) => {
    const answer = { res, port: req.socket.remotePort, since: Date.now() };
    mock.answers.add(answer);
    res.on('close', () => mock.answers.delete(answer));
  });
}

// The run's processes, none started yet: startStack() starts them, stop() stops whatever
// was started (also when starting failed half-way).
export function createStack() {
  const stack = { dir: tempDir('chaos'), stops: [], children: [], killedByUs: new Set() };
  // Until the supervisor has its full set of workers again (none of `gone` among them).
  stack.workers = () => (stack.proxy ? descendants(stack.proxy.pid).filter(isRunning) : []);
  stack.waitForWorkers = async (timeoutMs, gone = []) => {
    try {
      await waitFor(() => {
        const live = stack.workers();
        return live.length === WORKERS && !live.some((pid) => gone.includes(pid));
      }, `${WORKERS} workers`, timeoutMs);
      return true;
    } catch { return false; }
  };
  // The proxy's output since `offset` (its length when a fault began).
  stack.logSince = (offset) => stack.proxy.output.slice(offset);
  // SIGHUP to the supervisor; resolves once it and every worker took the file (or said
  // it refused it), or after `timeoutMs`, with how many processes did.
  stack.reload = async (timeoutMs = 5000) => {
    const offset = stack.proxy.output.length;
    process.kill(stack.proxy.pid, 'SIGHUP');
    const taken = () => (stack.logSince(offset).match(/SIGHUP: .* (in force|refused)/g) || []).length;
    try { await waitFor(() => taken() >= WORKERS + 1, 'the reload', timeoutMs); } catch {}
    return Math.min(taken(), WORKERS + 1);
  };
  // Stops every process of the run, the last started first; never throws. What went
  // wrong (a process that would not stop, one left running) comes back as text.
  stack.stop = async () => {
    const problems = [];
    for (const [what, stop] of stack.stops.reverse()) {
      try { await stop(); } catch (error) { problems.push(`stopping ${what}: ${error.message}`); }
    }
    stack.stops = [];
    await sleep(200);
    const left = [...stack.children.filter((child) => !child.exited).map((child) => child.pid), ...processesMentioning(stack.dir)];
    if (left.length) problems.push(`processes left running: ${[...new Set(left)].join(', ')}`);
    return problems;
  };
  return stack;
}

export async function startStack(stack, { proxyEnv = {} } = {}) {
  const onStop = (what, stop) => stack.stops.push([what, stop]);
  stack.mocks = {};
  for (const name of ['main', 'backup', 'trial']) {
    const mock = createAzureMock({ apiKey: UPSTREAM_KEY });
    await mock.listen();
    trackAnswers(mock);
    mock.scenario = name === 'trial' ? '' : NORMAL_SCENARIO;
    stack.mocks[name] = mock;
    onStop(`upstream ${name}`, () => mock.close());
  }
  stack.normalScenario = NORMAL_SCENARIO;

  stack.redisPort = await freePort();
  onStop('redis', async () => { await stack.fakeRedis?.stop(); await stack.redis?.stop(); });
  stack.startRedis = async () => {
    stack.redis = await startRedis(stack.redisPort);
    stack.children.push(stack.redis);
  };
  await stack.startRedis();

  stack.routingFile = path.join(stack.dir, 'config.json');
  stack.writeRouting = (variant, random) => {
    stack.routingText = routing(stack.mocks, variant, random);
    fs.writeFileSync(stack.routingFile, stack.routingText);
  };
  stack.writeRouting('base');
  stack.stateFile = path.join(stack.dir, 'state');
  const keyEnv = Object.fromEntries(Object.entries(KEYS).map(([name, key]) => [`KEY_${name.toUpperCase()}`, key]));
  stack.proxy = await startProxy({
    AZURE_OPENAI_ENDPOINT: stack.mocks.main.url, AZURE_OPENAI_TOKEN: UPSTREAM_KEY, UPSTREAM_KEY, ...keyEnv,
    AZURE_OPENAI_PROXY_CONFIG: stack.routingFile, AZURE_OPENAI_PROXY_WORKERS: String(WORKERS),
    AZURE_OPENAI_PROXY_THREADS: '2', AZURE_OPENAI_PROXY_STATE_FILE: stack.stateFile,
    AZURE_OPENAI_PROXY_REDIS_URL: `redis://127.0.0.1:${stack.redisPort}/5`,
    AZURE_OPENAI_PROXY_CONNECT_TIMEOUT: '2',
    // A small quarantine: the sanitizer build's memory then says what the program holds.
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0:quarantine_size_mb=16',
    ...proxyEnv,
  }, { dir: stack.dir });
  stack.children.push(stack.proxy);
  onStop('proxy', async () => { stack.stopped = await stack.proxy.stop('SIGTERM', 10000); });
  stack.web = await startLighttpd({ socket: stack.proxy.socket });
  stack.children.push(stack.web);
  onStop('lighttpd', () => stack.web.stop());
  stack.url = stack.web.url;
  if (!await stack.waitForWorkers(15000)) throw new Error(`the proxy did not start ${WORKERS} workers: ${stack.proxy.output}`);
}

export { PROXY_BIN };
