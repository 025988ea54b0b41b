/**
 * The dashboard's server side on a loopback control server: the page and its
 * files (types, CSP, ETag revalidation, nothing outside the table), the status
 * stream (first frame at once, one a second, the timer only while a client is
 * connected, a bound on clients, close() ends streams) and the control server's
 * guards in front of it (405, foreign Host). The page itself runs in a real
 * browser in test/netns/dashboard.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { startControlServer, type ControlServer } from '../../src/control/control-server.js';
import { createDashboard, pageCsp, rpcOrigin, type Dashboard } from '../../src/dashboard/dashboard.js';
import { silentLogger } from '../../src/util/logger.js';
import { threeLinkStatus } from '../helpers/daemon-status.js';

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function split(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

function get(
  address: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { ...split(address), path, method: opts.method ?? 'GET', agent: false, headers: opts.headers ?? {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path}: no answer within 5 s`)));
    req.end();
  });
}

/** Opens /events and collects its text until `frames` data frames arrived (bounded by 5 s). */
function events(
  address: string,
  frames: number,
): Promise<{ res: IncomingMessage; text: string; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ ...split(address), path: '/events', agent: false }, (res) => {
      let text = '';
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`only ${text.split('data: ').length - 1} frames within 5 s`));
      }, 5000);
      res.setEncoding('utf8');
      const done = () => {
        clearTimeout(timer);
        resolve({ res, text, close: () => req.destroy() });
      };
      if (res.statusCode !== 200) {
        res.resume();
        done();
        return;
      }
      res.on('data', (d: string) => {
        text += d;
        if (text.split('data: ').length - 1 >= frames) done();
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function withDashboard(
  opts: { maxClients?: number; intervalMs?: number },
  fn: (server: ControlServer, dash: Dashboard) => Promise<void>,
): Promise<void> {
  const dash = createDashboard({ status: threeLinkStatus, logger: silentLogger, ...opts });
  const server = await startControlServer({
    listen: '127.0.0.1:0',
    status: threeLinkStatus,
    logger: silentLogger,
    routes: [dash],
    dashboard: false,
  });
  try {
    await fn(server, dash);
  } finally {
    await server.close();
  }
}

test('GET / serves the page with a strict CSP; the default control server has the dashboard', async () => {
  const server = await startControlServer({
    listen: '127.0.0.1:0',
    status: threeLinkStatus,
    logger: silentLogger,
  });
  try {
    const page = await get(server.address, '/');
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(page.body, /<script type="module" src="assets\/app.js"><\/script>/);
    const csp = String(page.headers['content-security-policy'] ?? '');
    assert.match(csp, /^default-src 'self';/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /connect-src/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
  } finally {
    await server.close();
  }
});

test('?rpc= widens connect-src to a loopback origin only', () => {
  assert.equal(rpcOrigin('/?rpc=http://127.0.0.1:6800/jsonrpc'), 'http://127.0.0.1:6800');
  assert.equal(rpcOrigin('/?rpc=http%3A%2F%2F%5B%3A%3A1%5D%3A6800%2Fjsonrpc'), 'http://[::1]:6800');
  assert.equal(rpcOrigin('/?rpc=http://localhost:6800/jsonrpc'), 'http://localhost:6800');
  assert.equal(rpcOrigin('/?rpc=http://evil.example/jsonrpc'), undefined);
  assert.equal(rpcOrigin('/?rpc=http://10.0.0.1:6800/jsonrpc'), undefined);
  assert.equal(rpcOrigin('/?rpc=javascript:alert(1)'), undefined);
  assert.equal(rpcOrigin('/?rpc=not a url'), undefined);
  assert.equal(rpcOrigin('/'), undefined);
  assert.match(
    pageCsp('/?rpc=http://127.0.0.1:6800/jsonrpc'),
    /; connect-src 'self' http:\/\/127\.0\.0\.1:6800$/,
  );
});

test('assets: right types, ETag revalidation, vendored libraries, nothing outside the table', async () => {
  await withDashboard({}, async (server) => {
    const types: Record<string, RegExp> = {
      '/assets/app.js': /^text\/javascript/,
      '/assets/style.css': /^text\/css/,
      '/assets/icon.svg': /^image\/svg\+xml/,
      '/assets/vendor/preact.js': /^text\/javascript/,
      '/assets/vendor/htm.js': /^text\/javascript/,
      '/assets/vendor/uplot.js': /^text\/javascript/,
      '/assets/vendor/uplot.css': /^text\/css/,
    };
    for (const [path, type] of Object.entries(types)) {
      const r = await get(server.address, path);
      assert.equal(r.status, 200, path);
      assert.match(r.headers['content-type'] ?? '', type, path);
      assert.equal(r.headers['cache-control'], 'no-cache', path);
      assert.ok(r.headers.etag, path);
      assert.doesNotMatch(r.body, /sourceMappingURL/, path);
      const again = await get(server.address, path, { headers: { 'if-none-match': r.headers.etag ?? '' } });
      assert.equal(again.status, 304, path);
      assert.equal(again.body, '');
    }
    assert.match(
      (await get(server.address, '/assets/vendor/uplot.js')).body,
      /export \{ uPlot as default \}/,
    );
    for (const path of [
      '/assets/../../package.json',
      '/assets/%2e%2e/package.json',
      '/assets/vendor/preact.module.js.map',
      '/assets/Nope.js',
      '/assets/nope.js',
      '/assets/web/app.js',
    ]) {
      assert.equal((await get(server.address, path)).status, 404, path);
    }
  });
});

test('the control server guards the dashboard: 405 for POST, 403 for a foreign Host', async () => {
  await withDashboard({}, async (server) => {
    const post = await get(server.address, '/', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.equal((await get(server.address, '/', { headers: { host: 'evil.example:9190' } })).status, 403);
    assert.equal(
      (await get(server.address, '/events', { headers: { host: 'evil.example:9190' } })).status,
      403,
    );
    assert.equal((await get(server.address, '/', { method: 'HEAD' })).status, 200);
  });
});

test('/events: the first frame at once, then one a tick; the timer runs only while a client is connected', async () => {
  await withDashboard({ intervalMs: 200 }, async (server, dash) => {
    assert.equal(dash.stream.ticking, false);
    const started = Date.now();
    const first = await events(server.address, 1);
    assert.ok(Date.now() - started < 150, 'the first frame did not wait for a tick');
    assert.equal(first.res.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.match(first.text, /^retry: \d+\n\n/);
    first.close();
    const three = await events(server.address, 3);
    assert.equal(dash.stream.ticking, true);
    const frames = three.text.split('\n\n').filter((f) => f.startsWith('data: '));
    const status = JSON.parse((frames[0] ?? '').slice('data: '.length)) as { links: { id: string }[] };
    assert.deepEqual(
      status.links.map((l) => l.id),
      ['up0', 'up1', 'up2'],
    );
    three.close();
    for (let i = 0; i < 50 && dash.stream.ticking; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(dash.stream.size, 0);
    assert.equal(dash.stream.ticking, false, 'the timer stopped with the last client');
  });
});

test('/events: at most maxClients streams; close() ends open streams promptly', async () => {
  let server: ControlServer | undefined;
  const dash = createDashboard({ status: threeLinkStatus, logger: silentLogger, maxClients: 2 });
  server = await startControlServer({
    listen: '127.0.0.1:0',
    status: threeLinkStatus,
    logger: silentLogger,
    routes: [dash],
    dashboard: false,
  });
  try {
    const a = await events(server.address, 1);
    const b = await events(server.address, 1);
    const c = await events(server.address, 1);
    assert.equal(c.res.statusCode, 503);
    assert.equal(c.res.headers['retry-after'], '5');
    assert.equal(dash.stream.size, 2);
    const ended = new Promise<void>((resolve) => a.res.on('close', () => resolve()));
    const started = Date.now();
    await server.close();
    server = undefined;
    await ended;
    assert.ok(Date.now() - started < 2000);
    assert.equal(dash.stream.ticking, false);
    b.close();
  } finally {
    await server?.close();
  }
});
