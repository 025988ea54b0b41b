import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backoffDelay, classifyStatus, isFatal, HttpStatusError } from '../../src/download/retry-policy.js';
import { parseChecksum, verifyChecksum } from '../../src/download/checksum.js';
import { LinkmuxError, isLinkmuxError, redactUrl, fileError } from '../../src/util/errors.js';

test('status classes', () => {
  const table: [number, string][] = [
    [200, 'ok'],
    [206, 'ok'],
    [404, 'fatal'],
    [403, 'fatal'],
    [416, 'fatal'],
    [408, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [503, 'retry'],
  ];
  for (const [status, want] of table) assert.equal(classifyStatus(status), want, String(status));
});

test('fatal errors are not retried; transient ones are', () => {
  assert.equal(isFatal(new HttpStatusError(404, 'x')), true);
  assert.equal(isFatal(new HttpStatusError(503, 'x')), false);
  assert.equal(isFatal(new LinkmuxError('LINKMUX_ERR_FILE_CHANGED', 'x')), true);
  assert.equal(isFatal(new LinkmuxError('LINKMUX_ERR_TIMEOUT', 'x')), false);
  assert.equal(isFatal(Object.assign(new Error('reset'), { code: 'ECONNRESET' })), false);
});

test('backoff doubles up to the cap, with bounded jitter', () => {
  const mid = () => 0.5;
  assert.deepEqual(
    [1, 2, 3, 4, 10].map((a) => backoffDelay(a, { baseMs: 100, capMs: 1000 }, mid)),
    [100, 200, 400, 800, 1000],
  );
  assert.equal(
    backoffDelay(1, { baseMs: 100, capMs: 1000 }, () => 0),
    80,
  );
  assert.equal(
    backoffDelay(1, { baseMs: 100, capMs: 1000 }, () => 1),
    120,
  );
});

test('parseChecksum accepts common spellings and rejects bad input clearly', () => {
  const hex = 'a'.repeat(64);
  assert.deepEqual(parseChecksum(`sha-256=${hex}`), { algorithm: 'sha256', hex });
  assert.deepEqual(parseChecksum(`SHA256=${hex.toUpperCase()}`), { algorithm: 'sha256', hex });
  assert.equal(parseChecksum(`md5=${'b'.repeat(32)}`).algorithm, 'md5');
  for (const bad of ['sha-256', 'sha-256=xyz', `crc99=${hex}`, 'sha-256=abcd']) {
    assert.throws(
      () => parseChecksum(bad),
      (err) => isLinkmuxError(err, 'LINKMUX_ERR_USAGE'),
      bad,
    );
  }
});

test('verifyChecksum passes a matching file and names both sums on a mismatch', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lmx-sum-'));
  try {
    const path = join(dir, 'f');
    await writeFile(path, 'hello');
    const sum = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
    assert.equal(await verifyChecksum(path, { algorithm: 'sha256', hex: sum }), `sha256=${sum}`);
    await assert.rejects(
      verifyChecksum(path, { algorithm: 'sha256', hex: '0'.repeat(64) }),
      (err) => isLinkmuxError(err, 'LINKMUX_ERR_CHECKSUM') && err.message.includes(sum),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('error helpers: credentials are redacted, disk full says how to resume', () => {
  assert.equal(redactUrl('https://u:p@h/x'), 'https://***@h/x');
  assert.equal(redactUrl('not a url'), '<malformed URL>');
  const e = fileError(Object.assign(new Error('no space'), { code: 'ENOSPC' }), '/tmp/x.part', true);
  assert.equal(e.code, 'LINKMUX_ERR_DISK_FULL');
  assert.match(e.message, /-c to continue/);
});
