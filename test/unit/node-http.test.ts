/**
 * The node:http range client against node's http server on loopback:
 * keep-alive reuse, chunked and 1xx replies, broken, stalled and abandoned
 * bodies, aborts, and a keep-alive connection the server closed while idle.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { LinkHttpClient } from '../../src/download/node-http.js';
import type { RangeResponse } from '../../src/download/http-request.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { loopbackLinks } from '../helpers/loopback.js';

const body = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
const big = Buffer.from(Array.from({ length: 8 * 1024 * 1024 }, (_, i) => (i * 7) % 253));
let server: http.Server;
let base: string;
let connections = 0;
const sockets = new Set<Socket>();
/** Requests seen per connection. */
const served = new WeakMap<Socket, number>();

before(async () => {
  server = http.createServer((req, res) => {
    const path = req.url ?? '';
    const nth = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, nth);
    if (path === '/chunked') {
      res.writeHead(206, { 'content-range': `bytes 0-9999/${body.length}` });
      res.write(body.subarray(0, 4000));
      res.end(body.subarray(4000, 10_000)); // no Content-Length: node sends it chunked
      return;
    }
    if (path === '/hints') {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.writeHead(206, { 'content-length': '10', 'content-range': `bytes 0-9/${body.length}` });
      res.end(body.subarray(0, 10));
      return;
    }
    if (path === '/cut') {
      res.writeHead(206, { 'content-length': '1000' });
      res.write(body.subarray(0, 500), () => req.socket.destroy());
      return;
    }
    if (path === '/stall') {
      res.writeHead(206, { 'content-length': '1000' });
      res.write(body.subarray(0, 500)); // and nothing more
      return;
    }
    if (path === '/silent') return; // no head at all
    if (path === '/drop-reused' && nth > 1) {
      // What a server that closed the idle connection does to a request already on its way.
      req.socket.destroy();
      return;
    }
    if (path === '/big') {
      res.writeHead(200, { 'content-length': String(big.length) });
      res.end(big);
      return;
    }
    const m = /bytes=(\d+)-(\d+)/.exec(String(req.headers.range));
    const a = Number(m?.[1] ?? 0);
    const b = Number(m?.[2] ?? body.length - 1);
    res.writeHead(206, {
      'content-length': String(b - a + 1),
      'content-range': `bytes ${a}-${b}/${body.length}`,
      'x-user-agent': String(req.headers['user-agent']),
    });
    res.end(body.subarray(a, b + 1));
  });
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

function client() {
  const [link] = loopbackLinks(1);
  assert.ok(link);
  return { http: new LinkHttpClient(link), link };
}

function get(
  c: LinkHttpClient,
  path: string,
  range?: string,
  { signal = new AbortController().signal, stallTimeoutMs = 2_000 } = {},
) {
  return c.get({
    url: new URL(path, base),
    headers: { 'user-agent': 'lmx-test', ...(range ? { range } : {}) },
    signal,
    stallTimeoutMs,
    connectTimeoutMs: 2_000,
  });
}

async function readAll(res: RangeResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of res.body) parts.push(c);
  return Buffer.concat(parts);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('consecutive ranges reuse one keep-alive connection and carry the right bytes', async () => {
  const { http: c, link } = client();
  const before = connections;
  try {
    for (const [a, b] of [
      [0, 99_999],
      [100_000, 149_999],
      [150_000, 199_999],
    ] as const) {
      const res = await get(c, '/f', `bytes=${a}-${b}`);
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes ${a}-${b}/${body.length}`);
      assert.equal(res.headers['x-user-agent'], 'lmx-test');
      assert.ok((await readAll(res)).equals(body.subarray(a, b + 1)));
    }
    assert.equal(connections - before, 1, 'one connection for three requests');
    assert.equal(link.stats().activeConnections, 1);
  } finally {
    c.close();
    link.destroy();
  }
});

test('a chunked reply is read as it is, and its connection reused', async () => {
  const { http: c, link } = client();
  const before = connections;
  try {
    const res = await get(c, '/chunked', 'bytes=0-9999');
    assert.equal(res.status, 206);
    assert.ok((await readAll(res)).equals(body.subarray(0, 10_000)));
    assert.ok((await readAll(await get(c, '/f', 'bytes=7-9'))).equals(body.subarray(7, 10)));
    assert.equal(connections - before, 1);
  } finally {
    c.close();
    link.destroy();
  }
});

test('an interim 103 reply is skipped: the final reply is the one handed out', async () => {
  const { http: c, link } = client();
  try {
    const res = await get(c, '/hints', 'bytes=0-9');
    assert.equal(res.status, 206);
    assert.ok((await readAll(res)).equals(body.subarray(0, 10)));
  } finally {
    c.close();
    link.destroy();
  }
});

for (const [path, code, opts] of [
  ['/cut', 'LINKMUX_ERR_CONNECT', undefined],
  ['/stall', 'LINKMUX_ERR_TIMEOUT', { stallTimeoutMs: 200 }],
] as const) {
  test(`a body that ${path === '/cut' ? 'breaks off' : 'stalls'} fails with ${code} after the bytes that came`, async () => {
    const { http: c, link } = client();
    try {
      const res = await get(c, path, undefined, opts);
      let got = 0;
      await assert.rejects(
        (async () => {
          for await (const chunk of res.body) got += chunk.length;
        })(),
        (err) => isLinkmuxError(err, code),
      );
      assert.equal(got, 500);
    } finally {
      c.close();
      link.destroy();
    }
  });
}

test('a server that never answers fails with LINKMUX_ERR_TIMEOUT', async () => {
  const { http: c, link } = client();
  try {
    await assert.rejects(get(c, '/silent', undefined, { stallTimeoutMs: 200 }), (err) =>
      isLinkmuxError(err, 'LINKMUX_ERR_TIMEOUT'),
    );
  } finally {
    c.close();
    link.destroy();
  }
});

test('a consumer slower than the stall timeout is not a stall (the client paused itself)', async () => {
  const { http: c, link } = client();
  try {
    const res = await get(c, '/big', undefined, { stallTimeoutMs: 200 });
    const parts: Buffer[] = [];
    for await (const chunk of res.body) {
      // The first pause outlasts the stall timeout while the reply waits in our buffers and the kernel's.
      if (parts.length === 0) await sleep(700);
      parts.push(chunk);
    }
    assert.ok(Buffer.concat(parts).equals(big));
  } finally {
    c.close();
    link.destroy();
  }
});

test('an abandoned body closes its connection; the next request opens a new one', async () => {
  const { http: c, link } = client();
  const before = connections;
  try {
    const res = await get(c, '/big');
    for await (const chunk of res.body) {
      assert.ok(chunk.length > 0);
      break;
    }
    const next = await get(c, '/f', 'bytes=10-19');
    assert.ok((await readAll(next)).equals(body.subarray(10, 20)));
    assert.equal(connections - before, 2);
  } finally {
    c.close();
    link.destroy();
  }
});

test('a keep-alive connection the server closed while idle is replaced at once', async () => {
  const { http: c, link } = client();
  try {
    assert.equal((await readAll(await get(c, '/f', 'bytes=0-9'))).length, 10);
    for (const s of sockets) s.destroy();
    await sleep(50);
    const res = await get(c, '/f', 'bytes=5-14');
    assert.ok((await readAll(res)).equals(body.subarray(5, 15)));
  } finally {
    c.close();
    link.destroy();
  }
});

test('a request that meets a connection closing under it is sent again on a new one', async () => {
  const { http: c, link } = client();
  const before = connections;
  try {
    assert.equal((await readAll(await get(c, '/drop-reused', 'bytes=0-9'))).length, 10);
    const res = await get(c, '/drop-reused', 'bytes=5-14');
    assert.ok((await readAll(res)).equals(body.subarray(5, 15)));
    assert.equal(connections - before, 2);
  } finally {
    c.close();
    link.destroy();
  }
});

test('an aborted request rejects with LINKMUX_ERR_ABORTED, before or while it waits', async () => {
  const { http: c, link } = client();
  try {
    const early = new AbortController();
    early.abort();
    await assert.rejects(get(c, '/f', 'bytes=0-9', { signal: early.signal }), (err) =>
      isLinkmuxError(err, 'LINKMUX_ERR_ABORTED'),
    );
    const late = new AbortController();
    const pending = get(c, '/silent', undefined, { signal: late.signal });
    setTimeout(() => late.abort(), 50);
    await assert.rejects(pending, (err) => isLinkmuxError(err, 'LINKMUX_ERR_ABORTED'));
  } finally {
    c.close();
    link.destroy();
  }
});
