// The HTTP proxy front end when things go wrong or end: refused and timed-out upstreams, an origin dying mid-body, rule denials, stale kept-alive connections, authentication, idle tunnels, close() and leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../src/util/logger.js';
import {
  closeServer,
  connections,
  curl,
  deadPort,
  eventually,
  fakeDialer,
  getOverSocket,
  openTunnel,
  rawExchange,
  startProxy,
  viaProxy,
} from '../helpers/http-proxy-fixtures.js';
import { TIMEOUT_PORT, dialer, origin, proxy } from '../helpers/http-proxy-shared.js';

test('a refused upstream is 502 (forwarding and CONNECT); a connect timeout is 504', async () => {
  const port = await deadPort();
  const fwd = await viaProxy(proxy.port, `http://127.0.0.1:${port}/x`);
  assert.equal(fwd.status, 502);
  assert.match(
    fwd.body.toString(),
    new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`),
  );

  const tunnel = await rawExchange(proxy.port, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.match(tunnel, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  assert.match(tunnel, /ECONNREFUSED/);

  const slow = await viaProxy(proxy.port, `http://127.0.0.1:${TIMEOUT_PORT}/x`);
  assert.equal(slow.status, 504);
  assert.match(slow.body.toString(), /timed out/);
  const slowTunnel = await rawExchange(
    proxy.port,
    `CONNECT 127.0.0.1:${TIMEOUT_PORT} HTTP/1.1\r\nHost: x\r\n\r\n`,
  );
  assert.match(slowTunnel, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);

  // curl sees the failure as such.
  const c = await curl([
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-x',
    `http://127.0.0.1:${proxy.port}`,
    `http://127.0.0.1:${port}/`,
  ]);
  assert.equal(c.stdout, '502');
});

test('an origin that dies mid-body cuts the client response instead of completing it', async () => {
  await assert.rejects(viaProxy(proxy.port, `http://127.0.0.1:${origin.port}/die`), (err: Error) =>
    /aborted|ECONNRESET|socket hang up/i.test(`${err.message} ${(err as { code?: string }).code}`),
  );
});

test("rules: a destination the dialer's rules deny is 403, nothing dialed", async () => {
  const dialsBefore = dialer.dials;
  const fwd = await viaProxy(proxy.port, 'http://denied.example/x');
  assert.equal(fwd.status, 403);
  assert.match(fwd.body.toString(), /denied\.example.*refused by a rule/);
  const tunnel = await rawExchange(proxy.port, 'CONNECT 127.0.0.1:6666 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(tunnel, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.equal(dialer.dials, dialsBefore);
});

test('a kept-alive origin connection closed under a GET is retried once on a fresh one', async () => {
  // Answers the first request of each connection, drops the connection on the second.
  let dropped = 0;
  const raw = net.createServer((s) => {
    let seen = '';
    s.on('error', () => {});
    s.on('data', (c: Buffer) => {
      seen += c.toString();
      const requests = seen.split('\r\n\r\n').length - 1;
      if (requests === 1 && !s.destroyed) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      if (requests >= 2 && !s.destroyed) {
        dropped++;
        s.destroy();
      }
    });
  });
  raw.listen(0, '127.0.0.1');
  await once(raw, 'listening');
  const port = (raw.address() as AddressInfo).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const dialsBefore = dialer.dials;
    const a = await viaProxy(proxy.port, `http://127.0.0.1:${port}/1`, { agent });
    const b = await viaProxy(proxy.port, `http://127.0.0.1:${port}/2`, { agent });
    assert.equal(a.body.toString(), 'ok');
    assert.equal(b.body.toString(), 'ok');
    assert.equal(a.localPort, b.localPort);
    assert.equal(dropped, 1, 'the second request went to the kept-alive connection first');
    assert.equal(dialer.dials, dialsBefore + 2, 'the retry dialled a fresh connection');
  } finally {
    agent.destroy();
    await closeServer(raw);
  }
});

test('authentication: missing or wrong credentials get 407, right ones pass; nothing secret is logged', async () => {
  const lines: string[] = [];
  const authDialer = fakeDialer();
  const p = await startProxy({
    dialer: authDialer,
    auth: { username: 'alice', password: 'pa55:word' },
    logger: createLogger('debug', (l) => lines.push(l)),
  });
  try {
    const url = `http://127.0.0.1:${origin.port}/x`;
    const none = await viaProxy(p.port, url);
    assert.equal(none.status, 407);
    assert.equal(none.headers['proxy-authenticate'], 'Basic realm="linkmux"');
    const wrong = await viaProxy(p.port, url, {
      headers: { 'Proxy-Authorization': `Basic ${Buffer.from('alice:nope').toString('base64')}` },
    });
    assert.equal(wrong.status, 407);
    const good = await viaProxy(p.port, url, {
      headers: { 'Proxy-Authorization': `Basic ${Buffer.from('alice:pa55:word').toString('base64')}` },
    });
    assert.equal(good.status, 200);
    assert.equal(good.body.toString(), 'hello from x');

    const curlGood = await curl(['-x', `http://127.0.0.1:${p.port}`, '-U', 'alice:pa55:word', url]);
    assert.equal(curlGood.stdout, 'hello from x', curlGood.stderr);
    const curlTunnel = await curl(['-p', '-x', `http://127.0.0.1:${p.port}`, '-U', 'alice:pa55:word', url]);
    assert.equal(curlTunnel.stdout, 'hello from x', curlTunnel.stderr);
    const curlBad = await curl([
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-x',
      `http://127.0.0.1:${p.port}`,
      '-U',
      'alice:x',
      url,
    ]);
    assert.equal(curlBad.stdout, '407');

    const tunnel = await rawExchange(p.port, `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(tunnel, /^HTTP\/1\.1 407 Proxy Authentication Required\r\n/);
    assert.match(tunnel, /Proxy-Authenticate: Basic realm="linkmux"\r\n/);
    const { socket, head } = await openTunnel(
      p.port,
      `127.0.0.1:${origin.port}`,
      `Proxy-Authorization: Basic ${Buffer.from('alice:pa55:word').toString('base64')}\r\n`,
    );
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.match(await getOverSocket(socket, `127.0.0.1:${origin.port}`, '/x'), /hello from x$/);

    // A POST refused with 407 under Expect: 100-continue does not hang waiting for the body.
    const post = await curl([
      '-o', '/dev/null', '-w', '%{http_code}', '-x', `http://127.0.0.1:${p.port}`,
      '-H', 'Expect: 100-continue', '--data-binary', 'x'.repeat(100_000), `http://127.0.0.1:${origin.port}/sha`,
    ]); // prettier-ignore
    assert.equal(post.stdout, '407');

    assert.ok(lines.length > 0, 'the debug log saw the traffic');
    const secret = [Buffer.from('alice:pa55:word').toString('base64'), 'pa55', 'bm9wZQ'];
    for (const line of lines) for (const s of secret) assert.ok(!line.includes(s), `secret in log: ${line}`);
    assert.equal(authDialer.dials >= 4, true);
  } finally {
    await closeServer(p.server);
  }
});

test('an idle tunnel is closed after idleTimeoutMs on both sides', async () => {
  const idleDialer = fakeDialer();
  const p = await startProxy({ dialer: idleDialer, idleTimeoutMs: 300 });
  try {
    const { socket, head } = await openTunnel(p.port, `127.0.0.1:${origin.port}`);
    assert.match(head, /^HTTP\/1\.1 200 /);
    const started = Date.now();
    await once(socket, 'close');
    assert.ok(Date.now() - started < 3_000);
    await eventually(() => idleDialer.open.size === 0, 2_000, 'the target side to close');
  } finally {
    await closeServer(p.server);
  }
});

test('close() + closeAllConnections() end open tunnels, kept-alive clients and their origin connections', async () => {
  const closeDialer = fakeDialer();
  const p = await startProxy({ dialer: closeDialer });
  const agent = new http.Agent({ keepAlive: true });
  try {
    const { socket } = await openTunnel(p.port, `127.0.0.1:${origin.port}`);
    socket.on('error', () => {});
    const r = await viaProxy(p.port, `http://127.0.0.1:${origin.port}/x`, { agent });
    assert.equal(r.status, 200);
    assert.equal(closeDialer.open.size, 2);
    const closed = closeServer(p.server);
    await Promise.race([closed, sleep(3_000).then(() => assert.fail('close() waited for open connections'))]);
    await eventually(() => closeDialer.open.size === 0, 2_000, 'the dialled sockets to close');
    await eventually(() => socket.destroyed, 2_000, 'the client side of the tunnel to close');
  } finally {
    agent.destroy();
    if (p.server.listening) await closeServer(p.server);
  }
});

test('no leaks: 500 proxied requests, some aborted mid-body, leave no connection behind', async () => {
  const leakDialer = fakeDialer();
  const p = await startProxy({ dialer: leakDialer });
  const big = `http://127.0.0.1:${origin.port}/big?n=${4 * 1024 * 1024}`;
  const small = `http://127.0.0.1:${origin.port}/big?n=32768`;

  /** A GET whose client hangs up after the first body chunk. */
  const abortDownload = () =>
    new Promise<void>((resolve) => {
      const req = http.request({
        host: '127.0.0.1',
        port: p.port,
        path: big,
        headers: { Host: 'x' },
        agent: false,
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.on('response', (res) => {
        res.on('error', () => {});
        res.once('data', () => req.destroy());
      });
      req.end();
    });
  /** A POST whose client hangs up halfway through its body. */
  const abortUpload = () =>
    new Promise<void>((resolve) => {
      const req = http.request({
        host: '127.0.0.1',
        port: p.port,
        method: 'POST',
        path: `http://127.0.0.1:${origin.port}/sha`,
        headers: { Host: 'x', 'Content-Length': 1024 * 1024 },
        agent: false,
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(Buffer.alloc(256 * 1024), () => setTimeout(() => req.destroy(), 5));
    });
  /** A CONNECT tunnel carrying one request. */
  const tunnelled = async () => {
    const { socket } = await openTunnel(p.port, `127.0.0.1:${origin.port}`);
    const text = await getOverSocket(socket, `127.0.0.1:${origin.port}`, '/x');
    assert.match(text, /hello from x$/);
  };

  try {
    let completed = 0;
    const one = async (i: number) => {
      switch (i % 10) {
        case 7:
          return abortDownload();
        case 8:
          return abortUpload();
        case 9:
          return tunnelled();
        default: {
          const r = await viaProxy(p.port, small);
          assert.equal(r.body.length, 32768);
          completed++;
        }
      }
    };
    const total = 500;
    const concurrency = 25;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await one(next++);
      }),
    );
    assert.equal(completed, 350);
    assert.equal(leakDialer.dials >= 450, true);
    await eventually(async () => (await connections(p.server)) === 0, 3_000, 'proxy connections to reach 0');
    // Below FREE_SOCKET_TIMEOUT_MS: origin connections must close with their client, not on idle expiry.
    await eventually(() => leakDialer.open.size === 0, 2_000, 'dialled sockets to reach 0');
    await eventually(() => origin.sockets.size === 0, 2_000, 'origin connections to reach 0');
  } finally {
    await closeServer(p.server);
  }
});
