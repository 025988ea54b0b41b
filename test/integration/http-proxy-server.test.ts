// The HTTP proxy front end on loopback, driven by real clients (curl -x, curl -p,
// Node's http, raw sockets) against a local origin server. The proxy reaches the
// origin only through a FAKE Dialer (net.connect to the requested IP, counting
// its open sockets), standing in for the link pool wired later. Covers CONNECT
// tunnels, absolute-URI forwarding with keep-alive both sides, body streaming
// and malformed input. Failures, auth, shutdown and leaks:
// http-proxy-server-failures.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Reply } from '../helpers/http-proxy-fixtures.js';
import { closeServer, curl, originServer, rawExchange, viaProxy } from '../helpers/http-proxy-fixtures.js';
import { tempDir } from '../helpers/loopback.js';
import { dialer, origin, proxy } from '../helpers/http-proxy-shared.js';

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
