// The README's commands and the program's start-up checks.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createAzureMock } from '../upstream/azure-mock.mjs';
import {
  ROOT, canConnect, commandOf, descendants, fastcgiExchange, fastcgiRequest, freePort, isRunning, openStream, postJson, startChild, tempDir, waitFor,
} from './harness.mjs';

const PROGRAM = `${ROOT}/build/azure-openai-proxy`;
const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME || '/root' };

function runProgram(env, args = []) {
  return spawnSync(PROGRAM, args, { env: { ...baseEnv, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 });
}

describe('start-up checks', () => {
  const cases = [
    [{ AZURE_OPENAI_PROXY_MODE: 'bogus', AZURE_OPENAI_ENDPOINT: 'https://x.example' }, 'AZURE_OPENAI_PROXY_MODE'],
    [{}, 'AZURE_OPENAI_ENDPOINT'],
    [{ AZURE_OPENAI_ENDPOINT: 'x.openai.azure.com' }, 'AZURE_OPENAI_ENDPOINT'],
    [{ AZURE_OPENAI_ENDPOINT: 'https://x.example', AZURE_OPENAI_MODEL_MAPPER: 'gpt-4o' }, 'AZURE_OPENAI_MODEL_MAPPER'],
    [{ AZURE_OPENAI_ENDPOINT: 'https://x.example', AZURE_OPENAI_PROXY_THREADS: 'many' }, 'AZURE_OPENAI_PROXY_THREADS'],
  ];
  for (const [env, variable] of cases) {
    it(`stops with one line naming ${variable} for ${JSON.stringify(env)}`, () => {
      const result = runProgram(env, ['--listen', '/tmp/never-used.sock']);
      assert.equal(result.status, 2);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0], new RegExp(`^azure-openai-proxy: ${variable}: `));
    });
  }

  it('says how to give it a socket when it has none', () => {
    const result = runProgram({ AZURE_OPENAI_ENDPOINT: 'https://x.example' });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--listen/);
  });

  it('refuses a socket path a live proxy listens on, and leaves that proxy serving', async () => {
    const dir = tempDir('socket');
    const socket = `${dir}/proxy.sock`;
    const first = startChild(PROGRAM, ['--listen', socket], { env: { ...baseEnv, AZURE_OPENAI_ENDPOINT: 'https://x.example' } });
    try {
      await waitFor(async () => first.exited || await canConnect({ path: socket }), 'the first proxy');
      const second = runProgram({ AZURE_OPENAI_ENDPOINT: 'https://x.example' }, ['--listen', socket]);
      assert.equal(second.status, 2);
      assert.match(second.stderr, /another server is listening on /);
      assert.ok(await canConnect({ path: socket }), 'the first proxy still has its socket');
      assert.equal(first.exited, null);
    } finally {
      await first.stop();
    }
  });

  it('--check-config prints the settings without the key', () => {
    const result = runProgram({ AZURE_OPENAI_ENDPOINT: 'https://x.example', AZURE_OPENAI_TOKEN: 'very-secret' }, ['--check-config']);
    assert.equal(result.status, 0);
    assert.match(result.stdout, /api-version: 2024-10-21/);
    assert.ok(!result.stdout.includes('very-secret'));
  });
});

describe('make run and make demo', () => {
  let mock;
  before(async () => {
    mock = createAzureMock({ apiKey: 'run-key' });
    await mock.listen();
  });
  after(async () => { await mock.close(); });

  it('make run without an endpoint says what to set and mentions make demo', () => {
    const result = spawnSync('make', ['-s', '--no-print-directory', 'run'], { cwd: ROOT, env: baseEnv, encoding: 'utf8', timeout: 120000 });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /AZURE_OPENAI_ENDPOINT=https:\/\/my-resource\.openai\.azure\.com make run/);
    assert.match(result.stderr, /make demo/);
  });

  // Serves through the shipped deploy/lighttpd/lighttpd.conf: lighttpd starts the proxy
  // and hands it the listening socket on fd 0.
  async function serve(target, env) {
    const port = await freePort();
    const served = startChild('make', ['-s', '--no-print-directory', target], {
      cwd: ROOT, detached: true,
      env: { ...baseEnv, AZURE_OPENAI_PROXY_ADDRESS: `127.0.0.1:${port}`, ...env },
    });
    await waitFor(async () => served.exited || canConnect({ host: '127.0.0.1', port }), `make ${target}`, 60000);
    assert.equal(served.exited, null, served.output);
    return { served, url: `http://127.0.0.1:${port}` };
  }

  async function stopAndCheckNothingLeft(served) {
    const below = descendants(served.pid);
    const proxies = below.filter((pid) => commandOf(pid).includes('azure-openai-proxy'));
    assert.ok(proxies.length > 0, 'the proxy runs under lighttpd');
    await served.stop('SIGTERM', 10000);
    await waitFor(() => below.every((pid) => !isRunning(pid)), 'every process to stop', 5000);
  }

  it('make run serves the proxy through lighttpd and stops cleanly', async () => {
    const { served, url } = await serve('run', { AZURE_OPENAI_ENDPOINT: mock.url });
    try {
      const res = await postJson(`${url}/v1/chat/completions`, { model: 'gpt-4o', messages: [{ role: 'user', content: 'run' }] },
        { authorization: 'Bearer run-key' });
      assert.equal(res.status, 200);
      const stream = openStream(`${url}/v1/chat/completions`, { model: 'gpt-4o', stream: true, messages: [] },
        { authorization: 'Bearer run-key' });
      await stream.done;
      assert.equal(stream.events[stream.events.length - 1], 'data: [DONE]');
      // The access log gathers its lines for up to 50 ms.
      await waitFor(() => /POST \/v1\/chat\/completions model=gpt-4o deployment=gpt-4o status=200/.test(served.output), 'the access log line', 5000);
      // The settings are printed once: by the proxy as it starts, not also by the script.
      assert.equal(served.output.split('\n').filter((line) => /azure-openai-proxy: mode: azure$/.test(line)).length, 1, served.output);
    } finally {
      await stopAndCheckNothingLeft(served);
    }
  });

  // make passes a SIGTERM on to its recipe's script and waits for it; a service manager
  // or a `kill` may send one to make alone, or to the script alone.
  for (const [target, whom] of [['demo', 'make'], ['demo', 'the script'], ['run', 'make']]) {
    it(`make ${target} stops everything it started when ${whom} alone gets SIGTERM`, async () => {
      const { served } = await serve(target, target === 'run' ? { AZURE_OPENAI_ENDPOINT: mock.url } : {});
      try {
        let below;
        await waitFor(() => (below = descendants(served.pid)).some((pid) => commandOf(pid).includes('azure-openai-proxy')),
          'the proxy to run under lighttpd');
        const script = below.find((pid) => /scripts\/(demo|serve)\.sh/.test(commandOf(pid)));
        process.kill(whom === 'make' ? served.pid : script, 'SIGTERM');
        await waitFor(() => below.every((pid) => !isRunning(pid)), 'every process to stop', 10000).catch(() => {});
        assert.deepEqual(below.filter(isRunning).map(commandOf), [], 'left running');
        await served.exitPromise;
      } finally {
        await served.stop('SIGTERM', 10000);
      }
    });
  }

  it('make demo answers a curl without any key or Azure account', async () => {
    const { served, url } = await serve('demo', {});
    try {
      const res = await postJson(`${url}/v1/chat/completions`, { model: 'gpt-4o', messages: [{ role: 'user', content: 'demo' }] },
        { authorization: '' });
      assert.equal(res.status, 200);
      assert.match(res.json.choices[0].message.content, /You said: demo/);
    } finally {
      await stopAndCheckNothingLeft(served);
    }
  });
});

describe('installing like a system program', () => {
  const read = (file) => fs.readFileSync(path.join(ROOT, file), 'utf8');
  // Every variable a parser of the configuration reads (config.cpp, endpoint_settings.cpp,
  // access_policy.cpp, ...: the whole core).
  const core = fs.readdirSync(path.join(ROOT, 'src/core')).filter((f) => f.endsWith('.cpp')).map((f) => read(`src/core/${f}`)).join('\n');
  const variables = [...new Set(core.match(/"AZURE_OPENAI_[A-Z_]+"/g).map((v) => v.slice(1, -1)))];

  it('--version names the version; --help lists every option', () => {
    const version = runProgram({}, ['--version']);
    assert.equal(version.status, 0);
    assert.match(version.stdout, /^azure-openai-proxy \d+\.\d+\.\d+ \(libcurl\//);
    const help = runProgram({}, ['--help']);
    assert.equal(help.status, 0);
    for (const option of ['--listen', '--workers', '--check-config', '--version', '--help', 'azure-openai-proxy(8)'])
      assert.ok(help.stdout.includes(option), `--help mentions ${option}`);
  });

  it('the man page, the README and the example settings name every variable the program reads', () => {
    assert.ok(variables.length >= 28, `${variables.length} variables`);
    for (const file of ['doc/azure-openai-proxy.8', 'README.md', 'deploy/azure-openai-proxy.env'])
      for (const variable of variables)
        assert.ok(read(file).includes(variable), `${file} names ${variable}`);
  });

  it('the man page renders without a warning', () => {
    const result = spawnSync('groff', ['-t', '-man', '-Tutf8', '-ww', '-z', path.join(ROOT, 'doc/azure-openai-proxy.8')], { encoding: 'utf8' });
    assert.equal(result.status, 0);
    assert.equal(result.stderr, '');
  });

  it('make install puts the program, the man page and the example under DESTDIR/PREFIX; uninstall removes them', () => {
    const root = tempDir('install');
    const make = (target) => spawnSync('make', ['--no-print-directory', '-C', ROOT, target, `DESTDIR=${root}`, 'PREFIX=/usr'], { encoding: 'utf8' });
    const installed = make('install');
    assert.equal(installed.status, 0, installed.stderr);
    const files = ['usr/sbin/azure-openai-proxy', 'usr/share/man/man8/azure-openai-proxy.8',
      'usr/share/doc/azure-openai-proxy/examples/azure-openai-proxy.env'];
    for (const file of files) assert.ok(fs.existsSync(path.join(root, file)), file);
    assert.equal(fs.statSync(path.join(root, files[0])).mode & 0o777, 0o755);
    const run = spawnSync(path.join(root, files[0]), ['--version'], { encoding: 'utf8' });
    assert.match(run.stdout, /^azure-openai-proxy /);
    assert.equal(make('uninstall').status, 0);
    for (const file of files) assert.ok(!fs.existsSync(path.join(root, file)), `${file} removed`);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('ships an MIT LICENSE', () => {
    assert.match(read('LICENSE'), /^MIT License/);
  });
});

describe('the portable build (make portable)', () => {
  const portable = path.join(ROOT, 'build/portable/azure-openai-proxy');
  // The real files behind the libraries a hosting server would lack.
  const library = (name) => fs.realpathSync(spawnSync('g++', [`-print-file-name=${name}`], { encoding: 'utf8' }).stdout.trim());

  it('needs only libc and libcurl from the system: libfcgi and the C++ runtime inside, libcjson beside it', () => {
    assert.ok(fs.existsSync(portable), 'make test builds it');
    const ldd = spawnSync('ldd', [portable], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(ldd, /libfcgi|libstdc\+\+|libgcc_s/);
    assert.match(ldd, new RegExp(`libcjson\\.so\\.1 => ${path.dirname(portable)}/libcjson\\.so\\.1`));
    assert.match(ldd, /libcurl\.so\.4 => \//);
  });

  it('serves a request with libfcgi, libcjson and libstdc++ hidden from it', async () => {
    const hidden = ['libfcgi.so.0', 'libcjson.so.1', 'libstdc++.so.6'].map(library);
    const mock = createAzureMock({ apiKey: 'test-key' });
    await mock.listen();
    const dir = tempDir('portable');
    const socket = path.join(dir, 'proxy.sock');
    // A private mount namespace where those files read as empty: as on a host without them.
    const script = `${hidden.map((file) => `mount --bind /dev/null ${file}`).join(' && ')} && exec ${portable} --listen ${socket}`;
    const proxy = startChild('unshare', ['--mount', 'sh', '-c', script], {
      env: { PATH: process.env.PATH, AZURE_OPENAI_ENDPOINT: mock.url, AZURE_OPENAI_PROXY_THREADS: '1' },
    });
    try {
      await waitFor(async () => proxy.exited || (fs.existsSync(socket) && await canConnect({ path: socket })), 'the portable proxy', 10000);
      assert.equal(proxy.exited, null, proxy.output);
      const url = new URL(mock.url);
      const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'portable' }] });
      const res = await fastcgiExchange(socket, fastcgiRequest({
        REQUEST_METHOD: 'POST', REQUEST_URI: '/v1/chat/completions', CONTENT_TYPE: 'application/json',
        CONTENT_LENGTH: String(body.length), HTTP_API_KEY: 'test-key', HTTP_HOST: url.host,
      }, body));
      assert.equal(res.status, 200, res.head + res.text);
      assert.match(res.json.choices[0].message.content, /portable/);
    } finally {
      await proxy.stop();
      await mock.close();
    }
  });
});
