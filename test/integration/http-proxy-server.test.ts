// The HTTP proxy front end on loopback, driven by real clients (curl -x, curl -p,
// Node's http, raw sockets) against a local origin server. The proxy reaches the
// origin only through a FAKE Dialer (net.connect to the requested IP, counting
// its open sockets), standing in for the link pool wired later. Covers CONNECT
// tunnels, absolute-URI forwarding with keep-alive both sides, body streaming,
// authentication, malformed input, upstream failures and socket leaks.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../src/util/logger.js';
import { LinkmuxError } from '../../src/util/errors.js';
import type { Destination } from '../../src/links/link.js';
import type { Dialer } from '../../src/proxy/dialer.js';
import type { FakeDialer, Reply } from '../helpers/http-proxy-fixtures.js';
import {
  closeServer,
  connections,
  curl,
  deadPort,
  eventually,
  fakeDialer,
  getOverSocket,
  openTunnel,
  originServer,
  rawExchange,
  startProxy,
  viaProxy,
} from '../helpers/http-proxy-fixtures.js';
import { tempDir } from '../helpers/loopback.js';

// ---------------------------------------------------------------- shared setup

/** The dialer applies the rules (as PoolDialer does): a denied destination is LINKMUX_ERR_DENIED, never dialed. */
function denying(inner: FakeDialer, denied: (dst: Destination) => boolean): Dialer {
  return {
    dial: (dst, ctx) =>
      denied(dst)
        ? Promise.reject(
            new LinkmuxError('LINKMUX_ERR_DENIED', `${dst.host}:${dst.port} is refused by a rule`),
          )
        : inner.dial(dst, ctx),
    openUdp: (family, ctx) => inner.openUdp(family, ctx),
  };
}

let origin: Awaited<ReturnType<typeof originServer>>;
let dialer: FakeDialer;
let proxy: Awaited<ReturnType<typeof startProxy>>;
const TIMEOUT_PORT = 9; // the fake dialer reports a connect timeout for it

before(async () => {
  origin = await originServer();
  dialer = fakeDialer(new Set([TIMEOUT_PORT]));
  proxy = await startProxy({
    dialer: denying(dialer, (dst) => dst.host === 'denied.example' || dst.port === 6666),
  });
});

after(async () => {
  await closeServer(proxy.server);
  await closeServer(origin.server);
});

// ---------------------------------------------------------------- tests

test('curl -x forwards an absolute-URI GET through the dialer', async () => {
  const dialsBefore = dialer.dials;
  const r = await curl(['-x', `http://127.0.0.1:${proxy.port}`, `http://127.0.0.1:${origin.port}/x`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello from x');
  assert.equal(dialer.dials, dialsBefore + 1);
  const ctx = dialer.contexts.at(-1);
  assert.match(ctx?.client ?? '', /^127\.0\.0\.1:\d+$/);
});

test('curl -p -x tunnels through CONNECT', async () => {
  const r = await curl([
    '-p',
    '-x',
    `http://127.0.0.1:${proxy.port}`,
    `http://127.0.0.1:${origin.port}/x`,
    '-v',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello from x');
  assert.match(r.stderr, /CONNECT 127\.0\.0\.1:\d+ HTTP\/1\.1/);
  assert.match(r.stderr, /HTTP\/1\.1 200 Connection Established/);
});

test('CONNECT to a bracketed IPv6 target, with bytes sent before the 200 passed on first', async () => {
  const v6 = await originServer('::1');
  try {
    // Send the tunnelled request in the same write as the CONNECT head: the proxy gets it as `head`.
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port });
    await once(socket, 'connect');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.write(
      `CONNECT [::1]:${v6.port} HTTP/1.1\r\nHost: [::1]:${v6.port}\r\n\r\n` +
        `GET /x HTTP/1.1\r\nHost: [::1]:${v6.port}\r\nConnection: close\r\n\r\n`,
    );
    await once(socket, 'close');
    const text = Buffer.concat(chunks).toString();
    assert.match(text, /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /hello from x$/);

    // And an absolute URI with an IPv6 literal: dialled unbracketed, Host bracketed.
    const fwd = await viaProxy(proxy.port, `http://[::1]:${v6.port}/headers`);
    const seen = JSON.parse(fwd.body.toString()) as { raw: string[] };
    assert.equal(seen.raw[seen.raw.findIndex((h) => /^host$/i.test(h)) + 1], `[::1]:${v6.port}`);
  } finally {
    await closeServer(v6.server);
  }
});

test('Node http through the proxy: two requests on one kept-alive client connection', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const dialsBefore = dialer.dials;
    const url = `http://127.0.0.1:${origin.port}/headers`;
    const a = await viaProxy(proxy.port, url, { agent });
    const b = await viaProxy(proxy.port, `http://127.0.0.1:${origin.port}/x`, { agent });
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(b.body.toString(), 'hello from x');
    assert.equal(a.localPort, b.localPort, 'both requests used one client connection');
    // The origin connection was kept too: one dial for both (same client connection, same origin).
    assert.equal(dialer.dials, dialsBefore + 1);
    assert.equal(a.headers['via'], '1.1 linkmux');
    const seen = JSON.parse(a.body.toString()) as { url: string; raw: string[] };
    assert.equal(seen.url, '/headers', 'the origin gets the origin-form target');
    assert.ok(seen.raw.includes('Via') && seen.raw.includes('1.1 linkmux'));
  } finally {
    agent.destroy();
  }
});

test('hop-by-hop headers are stripped both ways; Host comes from the URI; repeats survive', async () => {
  const r = await viaProxy(proxy.port, `http://127.0.0.1:${origin.port}/headers`, {
    headers: {
      Host: 'wrong.example',
      Connection: 'keep-alive, X-Drop-Me',
      'X-Drop-Me': '1',
      'Proxy-Connection': 'keep-alive',
      'Proxy-Authorization': 'Basic dTpw',
      'Keep-Alive': 'timeout=5',
      TE: 'trailers',
      Upgrade: 'websocket',
      'X-Keep': 'kept',
    },
  });
  assert.equal(r.status, 200);
  const seen = JSON.parse(r.body.toString()) as { raw: string[] };
  const names = seen.raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  for (const gone of [
    'x-drop-me',
    'proxy-connection',
    'proxy-authorization',
    'keep-alive',
    'te',
    'upgrade',
  ]) {
    assert.ok(!names.includes(gone), `${gone} reached the origin`);
  }
  assert.ok(names.includes('x-keep'));
  assert.equal(seen.raw[names.indexOf('host') * 2 + 1], `127.0.0.1:${origin.port}`);

  const c = await viaProxy(proxy.port, `http://127.0.0.1:${origin.port}/cookies`);
  assert.deepEqual(
    c.raw.filter((_, i) => i % 2 === 0 && /^set-cookie$/i.test(c.raw[i] ?? '')).length,
    2,
    'both Set-Cookie headers arrive',
  );
  assert.deepEqual(c.headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(c.headers['x-hop'], undefined, 'a header named by the origin’s Connection is dropped');
  assert.equal(c.body.toString(), 'ok');
});

test('HEAD through the proxy has headers and no body', async () => {
  const r = await viaProxy(proxy.port, `http://127.0.0.1:${origin.port}/big?n=1000`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], '1000');
  assert.equal(r.body.length, 0);
});

test('a 5 MiB POST body streams intact both as chunked and with Content-Length', async () => {
  const body = randomBytes(5 * 1024 * 1024);
  const expected = createHash('sha256').update(body).digest('hex');

  // Chunked: written in pieces so the proxy cannot see it whole.
  const chunked = await new Promise<Reply>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxy.port,
      method: 'POST',
      path: `http://127.0.0.1:${origin.port}/sha`,
      headers: { Host: `127.0.0.1:${origin.port}` },
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          raw: [],
          body: Buffer.concat(chunks),
          localPort: 0,
        }),
      );
    });
    let off = 0;
    const step = 256 * 1024;
    const write = () => {
      while (off < body.length) {
        const part = body.subarray(off, off + step);
        off += step;
        if (!req.write(part)) return void req.once('drain', write);
      }
      req.end();
    };
    write();
  });
  assert.equal(chunked.status, 200);
  assert.deepEqual(JSON.parse(chunked.body.toString()), { sha: expected, bytes: body.length });

  const sized = await viaProxy(proxy.port, `http://127.0.0.1:${origin.port}/sha`, {
    method: 'POST',
    headers: { 'Content-Length': body.length },
    body,
  });
  assert.deepEqual(JSON.parse(sized.body.toString()), { sha: expected, bytes: body.length });

  // curl sends Expect: 100-continue for big bodies: the proxy must answer it.
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'body.bin');
    await writeFile(file, body);
    const r = await curl([
      '-x',
      `http://127.0.0.1:${proxy.port}`,
      '-H',
      'Expect: 100-continue',
      '--data-binary',
      `@${file}`,
      `http://127.0.0.1:${origin.port}/sha`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { sha: expected, bytes: body.length });
  } finally {
    await cleanup();
  }
});

test('a large response streams intact, and a paused client holds the origin back (backpressure)', async () => {
  const n = 128 * 1024 * 1024;
  const socket = net.connect({ host: '127.0.0.1', port: proxy.port });
  await once(socket, 'connect');
  socket.pause();
  socket.write(
    `GET http://127.0.0.1:${origin.port}/big?n=${n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
  );
  const originWritten = () => [...origin.sockets].reduce((sum, s) => sum + s.bytesWritten, 0);
  // Once the socket buffers on the way are full the origin must stall; without
  // backpressure the proxy would keep reading it into memory (tens of MB/s here).
  await sleep(500);
  const early = originWritten();
  await sleep(500);
  const late = originWritten();
  assert.ok(early > 0 && early < n, `the origin wrote ${early} bytes`);
  assert.ok(late - early < 2 * 1024 * 1024, `the origin kept writing to a paused client: ${early} → ${late}`);
  let total = 0;
  for await (const chunk of socket) total += (chunk as Buffer).length;
  assert.ok(total > n && total < n + 1024, `got ${total} bytes`);
});

test('origin-form requests get 400 with a hint to configure a proxy; the connection stays usable', async () => {
  const r = await curl([`http://127.0.0.1:${proxy.port}/some/page`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /HTTP proxy.*configure it as your HTTP proxy/);
  const status = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${proxy.port}/`]);
  assert.equal(status.stdout, '400');

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const direct = await new Promise<{ status: number; port: number }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: proxy.port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, port: req.socket?.localPort ?? 0 }));
      });
      req.on('error', reject);
    });
    assert.equal(direct.status, 400);
    const proxied = await viaProxy(proxy.port, `http://127.0.0.1:${origin.port}/x`, { agent });
    assert.equal(proxied.body.toString(), 'hello from x');
    assert.equal(proxied.localPort, direct.port, 'the 400 kept the client connection open');
  } finally {
    agent.destroy();
  }
});

test('https:// absolute URIs are refused with a pointer to CONNECT', async () => {
  const text = await rawExchange(
    proxy.port,
    'GET https://example.org/ HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n',
  );
  assert.match(text, /^HTTP\/1\.1 400 /);
  assert.match(text, /CONNECT/);
});

test('malformed requests over a raw socket are answered 400 and the server keeps serving', async () => {
  const cases: [string, string | Buffer][] = [
    ['CONNECT without a port', 'CONNECT example.org HTTP/1.1\r\nHost: example.org\r\n\r\n'],
    ['CONNECT port out of range', 'CONNECT example.org:70000 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['CONNECT port zero', 'CONNECT example.org:0 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['CONNECT unbracketed IPv6', 'CONNECT ::1:443 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['CONNECT garbage host', 'CONNECT exa$mple:443 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['not HTTP at all', 'HELLO THERE\r\n\r\n'],
    ['binary junk', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a])],
    ['bad header line', 'GET http://127.0.0.1/ HTTP/1.1\r\nBad Header\r\n\r\n'],
    ['oversized headers', `GET http://127.0.0.1/ HTTP/1.1\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`],
    ['bad absolute URI', 'GET http://exa mple/ HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['bad port in URI', 'GET http://127.0.0.1:99999/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ];
  for (const [name, bytes] of cases) {
    const text = await rawExchange(proxy.port, bytes);
    assert.match(text, /^HTTP\/1\.1 400 /, `${name}: ${JSON.stringify(text.slice(0, 80))}`);
  }
  const r = await curl(['-x', `http://127.0.0.1:${proxy.port}`, `http://127.0.0.1:${origin.port}/x`]);
  assert.equal(r.stdout, 'hello from x', 'still serving after malformed input');
});

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
