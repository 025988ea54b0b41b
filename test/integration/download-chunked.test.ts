/**
 * A server whose 206 replies are chunked (no Content-Length): node:http reads
 * them like any other; the download must be intact, over every link, with
 * nothing fetched twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { download } from '../../src/download/downloader.js';
import { nullProgress } from '../../src/download/progress.js';
import { loopbackLinks, sha256, tempDir } from '../helpers/loopback.js';

test('chunked range replies: intact, every link used, no byte fetched twice', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  let bodyBytes = 0;
  const peers = new Set<string>();
  const server = http.createServer((req, res) => {
    const m = /bytes=(\d+)-(\d+)/.exec(String(req.headers.range));
    const a = Number(m?.[1] ?? 0);
    const b = Math.min(Number(m?.[2] ?? data.length - 1), data.length - 1);
    peers.add(req.socket.remoteAddress ?? '');
    res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${data.length}`, etag: '"v1"' });
    // Written in two parts without Content-Length: node sends the body chunked.
    const body = data.subarray(a, b + 1);
    const half = Math.floor(body.length / 2);
    res.write(body.subarray(0, half));
    res.end(body.subarray(half));
    bodyBytes += body.length;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const tmp = await tempDir();
  const links = loopbackLinks(3);
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/f.bin`;
    await download({ urls: [url], links, dir: tmp.dir, minPiece: 64 * 1024, progress: nullProgress });
    assert.equal(sha256(await readFile(join(tmp.dir, 'f.bin'))), sha256(data));
    assert.equal(peers.size, 3, `links seen by the server: ${[...peers].join(', ')}`);
    // Only the tail of a piece cut short by a steal may be sent twice (the server counts what it was asked).
    assert.ok(bodyBytes <= data.length + 256 * 1024, `${bodyBytes} body bytes for ${data.length}`);
  } finally {
    for (const l of links) l.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await tmp.cleanup();
  }
});
