/**
 * The downloader against a real HTTP server on loopback, over three links bound
 * to 127.0.0.2-4: good servers, bad servers, interruptions and resume.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { download, type DownloadOptions } from '../../src/download/downloader.js';
import { startFileServer, type Behaviour, type FileServer } from '../../src/testbed/file-server.js';
import { isLinkmuxError, type ErrorCode } from '../../src/util/errors.js';
import { loopbackLinks, randomFile, sha256File, tempDir } from '../helpers/loopback.js';
import type { ProgressSink } from '../../src/download/progress.js';

const MiB = 1024 * 1024;
let root: { dir: string; cleanup: () => Promise<void> };
let sums: Record<string, string>;
let server: FileServer;
let n = 0;

before(async () => {
  root = await tempDir();
  await mkdir(join(root.dir, 'srv'));
  sums = {
    'a.bin': await randomFile(join(root.dir, 'srv'), 'a.bin', 6 * MiB + 12345),
    'small.bin': await randomFile(join(root.dir, 'srv'), 'small.bin', 1000),
    'empty.bin': await randomFile(join(root.dir, 'srv'), 'empty.bin', 0),
  };
  server = await startFileServer({ root: join(root.dir, 'srv') });
});

after(async () => {
  await server.close();
  await root.cleanup();
});

/** A fresh output dir per test, the server's behaviour set, and download() with test defaults. */
async function fetchWith(behaviour: Behaviour, extra: Partial<DownloadOptions> & { urls?: string[] } = {}) {
  server.setBehaviour(behaviour);
  server.resetStats();
  const out = join(root.dir, `out${n++}`);
  await mkdir(out, { recursive: true });
  const notices: string[] = [];
  const progress: ProgressSink = {
    start: () => {},
    update: () => {},
    notice: (m) => notices.push(m),
    finish: () => {},
    abort: () => {},
  };
  const links = loopbackLinks(3);
  const opts: DownloadOptions = {
    urls: [server.fileUrl('a.bin')],
    links,
    dir: out,
    minPiece: 64 * 1024,
    backoff: { baseMs: 20, capMs: 100 },
    stallTimeoutMs: 2_000,
    progress,
    ...extra,
  };
  return { out, notices, links, run: () => download(opts) };
}

async function expectError(p: Promise<unknown>, code: ErrorCode, re?: RegExp) {
  await assert.rejects(p, (err) => {
    assert.ok(isLinkmuxError(err, code), `expected ${code}, got ${String(err)}`);
    if (re) assert.match(err.message, re);
    return true;
  });
}

test('a ranged download over three links is intact and every link carries bytes', async () => {
  const { out, run } = await fetchWith({});
  const summary = await run();
  assert.equal(await sha256File(join(out, 'a.bin')), sums['a.bin']);
  assert.equal(summary.size, 6 * MiB + 12345);
  for (const l of summary.links) assert.ok(l.bytes > 0, `link ${l.id} carried nothing`);
  assert.equal(
    summary.links.reduce((s, l) => s + l.bytes, 0),
    summary.size,
    'every byte was fetched exactly once',
  );
  await assert.rejects(stat(join(out, 'a.bin.part')), /ENOENT/);
  await assert.rejects(stat(join(out, 'a.bin.linkmux')), /ENOENT/);
});

test('several connections per link, a tiny file and an empty file', async () => {
  const a = await fetchWith({}, { connectionsPerLink: 3 });
  await a.run();
  assert.equal(await sha256File(join(a.out, 'a.bin')), sums['a.bin']);
  const small = await fetchWith({}, { urls: [server.fileUrl('small.bin')] });
  await small.run();
  assert.equal(await sha256File(join(small.out, 'small.bin')), sums['small.bin']);
  const empty = await fetchWith({}, { urls: [server.fileUrl('empty.bin')] });
  await empty.run();
  assert.equal((await stat(join(empty.out, 'empty.bin'))).size, 0);
});

test('a server without Range support gets one stream, with a notice', async () => {
  const { out, notices, run } = await fetchWith({ noRange: true });
  const summary = await run();
  assert.equal(await sha256File(join(out, 'a.bin')), sums['a.bin']);
  assert.match(notices.join('\n'), /does not support byte ranges/);
  assert.equal(summary.links.length, 1);
});

test('redirects are followed; loops are refused', async () => {
  const ok = await fetchWith({ redirect: true }, { urls: [`${server.url}/redirect/3/a.bin`] });
  await ok.run();
  assert.equal(await sha256File(join(ok.out, 'a.bin')), sums['a.bin']);
  const loop = await fetchWith({ redirect: true }, { urls: [`${server.url}/redirect-loop/a.bin`] });
  await expectError(loop.run(), 'LINKMUX_ERR_TOO_MANY_REDIRECTS');
});

test('a file that changes mid-download stops with a clear error and keeps the partial data', async () => {
  const { out, run } = await fetchWith({ changeAfterRequests: 2 });
  await expectError(run(), 'LINKMUX_ERR_FILE_CHANGED', /--overwrite/);
  await stat(join(out, 'a.bin.part'));
  await stat(join(out, 'a.bin.linkmux'));
  await assert.rejects(stat(join(out, 'a.bin')), /ENOENT/);
});

test('dropped connections are retried and the file is intact', async () => {
  const { out, run } = await fetchWith({ dropAfterBytes: { bytes: 300_000, times: 4 } });
  await run();
  assert.equal(await sha256File(join(out, 'a.bin')), sums['a.bin']);
  assert.ok(
    server.stats().log.some((r) => !r.complete),
    'the server really dropped connections',
  );
});

test('a stalled connection loses its range to the other links', async () => {
  const { out, run } = await fetchWith(
    { stallAfterBytes: { bytes: 100_000, times: 1 } },
    { stallTimeoutMs: 30_000 },
  );
  await run();
  assert.equal(await sha256File(join(out, 'a.bin')), sums['a.bin']);
});

test('a server that lies in Content-Range is refused', async () => {
  const { run } = await fetchWith({ lieContentRange: true });
  await expectError(run(), 'LINKMUX_ERR_BAD_RESPONSE', /Content-Range/);
});

test('4xx fails at once; 5xx is retried', async () => {
  const missing = await fetchWith({}, { urls: [server.fileUrl('nope.bin')] });
  await expectError(missing.run(), 'LINKMUX_ERR_HTTP_STATUS', /404/);
  const flaky = await fetchWith({ status: { code: 503, times: 2 } });
  await flaky.run();
  assert.equal(await sha256File(join(flaky.out, 'a.bin')), sums['a.bin']);
});

test('non-http URLs and malformed URLs are refused', async () => {
  const ftp = await fetchWith({}, { urls: ['ftp://example.org/x'] });
  await expectError(ftp.run(), 'LINKMUX_ERR_URL', /http/);
  const junk = await fetchWith({}, { urls: ['::nonsense'] });
  await expectError(junk.run(), 'LINKMUX_ERR_URL');
});

test('an existing output is never overwritten silently; --overwrite replaces it', async () => {
  const { out, run } = await fetchWith({});
  await writeFile(join(out, 'a.bin'), 'precious');
  await expectError(run(), 'LINKMUX_ERR_OUTPUT_EXISTS', /--overwrite/);
  assert.equal(await readFile(join(out, 'a.bin'), 'utf8'), 'precious');
  const again = await fetchWith({}, { dir: out, overwrite: true });
  await again.run();
  assert.equal(await sha256File(join(out, 'a.bin')), sums['a.bin']);
});

test('interrupt, then -c: intact, and finished ranges are not fetched again', async () => {
  const ctl = new AbortController();
  const first = await fetchWith({}, { signal: ctl.signal, progressIntervalMs: 5, saveIntervalMs: 20 });
  // Abort once some (not all) bytes are down.
  server.setBehaviour({ rateBytesPerSec: 2_000_000 });
  setTimeout(() => ctl.abort(), 300);
  await expectError(first.run(), 'LINKMUX_ERR_ABORTED', /-c/);
  const control = JSON.parse(await readFile(join(first.out, 'a.bin.linkmux'), 'utf8')) as {
    done: [number, number][];
  };
  const doneBytes = control.done.reduce((s, [a, b]) => s + (b - a), 0);
  assert.ok(doneBytes > 0, 'something was saved before the interruption');

  // Without -c the partial download is protected.
  const noFlag = await fetchWith({}, { dir: first.out });
  await expectError(noFlag.run(), 'LINKMUX_ERR_PARTIAL_EXISTS', /-c/);

  const second = await fetchWith({}, { dir: first.out, continue: true });
  const summary = await second.run();
  assert.equal(await sha256File(join(first.out, 'a.bin')), sums['a.bin']);
  assert.equal(summary.resumedBytes, doneBytes);
  // Every ranged request of the second run asked only for bytes the control file did not have.
  const [probeRequest, ...rangeRequests] = server.stats().log;
  assert.equal(
    probeRequest?.range,
    'bytes=0-262143',
    'the probe asks for the first 256 KiB whatever is done',
  );
  for (const r of rangeRequests) {
    const m = /bytes=(\d+)-(\d*)/.exec(r.range ?? '');
    if (!m) continue;
    const start = Number(m[1]);
    const last = m[2] ? Number(m[2]) : Infinity;
    for (const [a, b] of control.done)
      assert.ok(last < a || start >= b, `refetched ${r.range} (done ${a}-${b})`);
  }
});

test('interrupted mid-batch: every byte the control file claims is in the .part, byte for byte', async () => {
  const ctl = new AbortController();
  const { out, run } = await fetchWith(
    { rateBytesPerSec: 3_000_000 },
    { signal: ctl.signal, saveIntervalMs: 15, progressIntervalMs: 5 },
  );
  setTimeout(() => ctl.abort(), 450);
  await expectError(run(), 'LINKMUX_ERR_ABORTED');
  const control = JSON.parse(await readFile(join(out, 'a.bin.linkmux'), 'utf8')) as {
    done: [number, number][];
  };
  const part = await readFile(join(out, 'a.bin.part'));
  const source = await readFile(join(root.dir, 'srv', 'a.bin'));
  const claimed = control.done.reduce((s, [a, b]) => s + (b - a), 0);
  assert.ok(claimed > 0 && claimed < source.length, `claimed ${claimed} bytes`);
  for (const [a, b] of control.done) {
    assert.ok(part.length >= b, `the .part is shorter than the claimed range ${a}-${b}`);
    assert.ok(part.subarray(a, b).equals(source.subarray(a, b)), `bytes ${a}-${b} differ from the source`);
  }
});

test('a corrupt or foreign control file is refused and the partial data left alone', async () => {
  const { out, run } = await fetchWith({}, { continue: true });
  await writeFile(join(out, 'a.bin.part'), 'partial');
  await writeFile(join(out, 'a.bin.linkmux'), '{"format":"linkmux-download"');
  await expectError(run(), 'LINKMUX_ERR_CONTROL_FILE', /corrupt/);
  assert.equal(await readFile(join(out, 'a.bin.part'), 'utf8'), 'partial');
});

test('checksums: a match is reported, a mismatch keeps the data and fails', async () => {
  const good = await fetchWith({}, { checksum: { algorithm: 'sha256', hex: sums['a.bin'] as string } });
  const summary = await good.run();
  assert.equal(summary.checksum, `sha256=${sums['a.bin']}`);
  const bad = await fetchWith({}, { checksum: { algorithm: 'sha256', hex: '0'.repeat(64) } });
  await expectError(bad.run(), 'LINKMUX_ERR_CHECKSUM');
  await stat(join(bad.out, 'a.bin.part'));
  await assert.rejects(stat(join(bad.out, 'a.bin')), /ENOENT/);
});

test('mirrors: ranges are spread over both URLs; a mirror with another size is ignored', async () => {
  const both = await fetchWith({}, { urls: [server.fileUrl('a.bin'), `${server.url}/files/a.bin?mirror=2`] });
  await both.run();
  assert.equal(await sha256File(join(both.out, 'a.bin')), sums['a.bin']);
  const paths = new Set(server.stats().log.map((r) => r.path));
  assert.ok(
    [...paths].some((p) => p.includes('mirror=2')),
    'the mirror served ranges',
  );
  const odd = await fetchWith({}, { urls: [server.fileUrl('a.bin'), server.fileUrl('small.bin')] });
  await odd.run();
  assert.match(odd.notices.join('\n'), /mirror .* ignored/);
});

test('every link failing ends the job with a resumable error', async () => {
  const { out, run } = await fetchWith({ dropAfterBytes: { bytes: 200_000, times: 1000 } }, { retries: 1 });
  await expectError(run(), 'LINKMUX_ERR_ALL_LINKS_FAILED', /-c/);
  await stat(join(out, 'a.bin.part'));
  await stat(join(out, 'a.bin.linkmux'));
});
