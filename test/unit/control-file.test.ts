import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeControl, encodeControl, readControl, writeControl } from '../../src/download/control-file.js';
import { isLinkmuxError } from '../../src/util/errors.js';

const url = 'https://user:secret@example.org/big.iso';
const state = {
  url,
  size: 1000,
  validators: { etag: '"v1"', lastModified: 'Tue, 01 Jan 2030 00:00:00 GMT' },
  done: [
    { start: 500, end: 600 },
    { start: 0, end: 100 },
    { start: 100, end: 200 },
  ],
};

test('round trip keeps the state, merges ranges and stores no credentials', async () => {
  const text = encodeControl(state);
  assert.ok(!text.includes('secret'), 'the password must not be on disk');
  const back = await decodeControl(text, 'f.linkmux', url);
  assert.equal(back.size, 1000);
  assert.deepEqual(back.validators, state.validators);
  assert.deepEqual(back.done, [
    { start: 0, end: 200 },
    { start: 500, end: 600 },
  ]);
});

test('corrupt or foreign control files are refused with what to do', async () => {
  const good = JSON.parse(encodeControl(state));
  const cases: [string, RegExp][] = [
    ['{not json', /corrupt \(not JSON\).*--overwrite/],
    ['[]', /corrupt/],
    [JSON.stringify({ ...good, version: 2 }), /corrupt at "version"/],
    [JSON.stringify({ ...good, extra: 1 }), /corrupt/],
    [JSON.stringify({ ...good, done: [[10, 5]] }), /outside the file/],
    [JSON.stringify({ ...good, done: [[0, 5000]] }), /outside the file/],
    [JSON.stringify({ ...good, size: -1 }), /corrupt at "size"/],
  ];
  for (const [text, re] of cases) {
    await assert.rejects(
      decodeControl(text, 'f.linkmux', url),
      (err) => isLinkmuxError(err, 'LINKMUX_ERR_CONTROL_FILE') && re.test(err.message),
      text,
    );
  }
  await assert.rejects(
    decodeControl(encodeControl(state), 'f.linkmux', 'https://example.org/other.iso'),
    (err) =>
      isLinkmuxError(err, 'LINKMUX_ERR_CONTROL_FILE') &&
      /another URL/.test(err.message) &&
      !/secret/.test(err.message),
  );
});

test('writeControl is atomic (no temp file left) and readControl finds nothing when absent', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lmx-ctl-'));
  try {
    const path = join(dir, 'f.linkmux');
    assert.equal(await readControl(path, url), undefined);
    await writeControl(path, state);
    await writeControl(path, { ...state, done: [{ start: 0, end: 1000 }] });
    const back = await readControl(path, url);
    assert.deepEqual(back?.done, [{ start: 0, end: 1000 }]);
    await assert.rejects(readFile(`${path}.tmp`), /ENOENT/);
    await writeFile(path, 'garbage');
    await assert.rejects(readControl(path, url), (err) => isLinkmuxError(err, 'LINKMUX_ERR_CONTROL_FILE'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
