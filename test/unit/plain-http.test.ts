/**
 * The plain HTTP/1.1 range client against node's http server on loopback:
 * keep-alive reuse, replies it leaves to undici, broken and abandoned bodies,
 * and a keep-alive connection the server closed while idle.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { PlainHttpClient, PlainHttpUnsupported } from '../../src/download/plain-http.js';
import type { RangeResponse } from '../../src/download/http-request.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { loopbackLinks } from '../helpers/loopback.js';

const body = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
let server: http.Server;
let base: string;
let connections = 0;
const sockets = new Set<Socket>();

before(async () => {
  server = http.createServer((req, res) => {
    const path = req.url ?? '';
    if (path === '/chunked') {
      res.writeHead(206, { 'content-range': `bytes 0-9/${body.length}` });
      res.end(body.subarray(0, 10)); // no Content-Length: node sends it chunked
      return;
    }
    if (path === '/cut') {
      res.writeHead(206, { 'content-length': '1000' });
      res.write(body.subarray(0, 500), () => req.socket.destroy());
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
  return { plain: new PlainHttpClient(link), link };
}

function get(plain: PlainHttpClient, path: string, range?: string, signal = new AbortController().signal) {
  return plain.get({
    url: new URL(path, base),
    headers: { 'user-agent': 'lmx-test', ...(range ? { range } : {}) },
    signal,
    stallTimeoutMs: 2_000,
    connectTimeoutMs: 2_000,
  });
}

async function readAll(res: RangeResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of res.body) parts.push(c);
  return Buffer.concat(parts);
}

test('consecutive ranges reuse one keep-alive connection and carry the right bytes', async () => {
  const { plain, link } = client();
  const before = connections;
  try {
    for (const [a, b] of [
      [0, 99_999],
      [100_000, 149_999],
      [150_000, 199_999],
    ] as const) {
      const res = await get(plain, '/f', `bytes=${a}-${b}`);
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes ${a}-${b}/${body.length}`);
      assert.equal(res.headers['x-user-agent'], 'lmx-test');
      assert.ok((await readAll(res)).equals(body.subarray(a, b + 1)));
    }
    assert.equal(connections - before, 1, 'one connection for three requests');
  } finally {
    plain.close();
    link.destroy();
  }
});

test('a chunked reply is left to undici: PlainHttpUnsupported before any body byte', async () => {
  const { plain, link } = client();
  try {
    await assert.rejects(get(plain, '/chunked', 'bytes=0-9'), PlainHttpUnsupported);
  } finally {
    plain.close();
    link.destroy();
  }
});

test('a body that breaks off fails with LINKMUX_ERR_CONNECT after the bytes that came', async () => {
  const { plain, link } = client();
  try {
    const res = await get(plain, '/cut');
    let got = 0;
    await assert.rejects(
      (async () => {
        for await (const c of res.body) got += c.length;
      })(),
      (err) => isLinkmuxError(err, 'LINKMUX_ERR_CONNECT'),
    );
    assert.equal(got, 500);
  } finally {
    plain.close();
    link.destroy();
  }
});

test('an abandoned body closes its connection; the next request opens a new one', async () => {
  const { plain, link } = client();
  const before = connections;
  try {
    const res = await get(plain, '/f', 'bytes=0-199999');
    for await (const c of res.body) {
      assert.ok(c.length > 0);
      break;
    }
    const next = await get(plain, '/f', 'bytes=10-19');
    assert.ok((await readAll(next)).equals(body.subarray(10, 20)));
    assert.equal(connections - before, 2);
  } finally {
    plain.close();
    link.destroy();
  }
});

test('a keep-alive connection the server closed while idle is replaced at once', async () => {
  const { plain, link } = client();
  try {
    assert.equal((await readAll(await get(plain, '/f', 'bytes=0-9'))).length, 10);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const res = await get(plain, '/f', 'bytes=5-14');
    assert.ok((await readAll(res)).equals(body.subarray(5, 15)));
  } finally {
    plain.close();
    link.destroy();
  }
});

test('an aborted request rejects with LINKMUX_ERR_ABORTED', async () => {
  const { plain, link } = client();
  try {
    const ctl = new AbortController();
    ctl.abort();
    await assert.rejects(get(plain, '/f', 'bytes=0-9', ctl.signal), (err) =>
      isLinkmuxError(err, 'LINKMUX_ERR_ABORTED'),
    );
  } finally {
    plain.close();
    link.destroy();
  }
});
