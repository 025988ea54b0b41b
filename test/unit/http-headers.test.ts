import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dispositionFilename,
  ifRangeValue,
  parseContentLength,
  parseContentRange,
  parseUnsatisfiedRange,
  sameVersion,
  urlFilename,
} from '../../src/download/http-headers.js';

test('parseContentRange: valid and malformed values', () => {
  const table: [string | undefined, ReturnType<typeof parseContentRange>][] = [
    ['bytes 0-99/1000', { start: 0, last: 99, total: 1000 }],
    ['bytes 500-999/1000', { start: 500, last: 999, total: 1000 }],
    ['BYTES 0-0/1', { start: 0, last: 0, total: 1 }],
    ['bytes 0-99/*', { start: 0, last: 99, total: undefined }],
    ['bytes 0-1000/1000', undefined], // last beyond total
    ['bytes 10-5/100', undefined], // reversed
    ['bytes */1000', undefined],
    ['items 0-1/2', undefined],
    ['bytes 0-99/1000, bytes 200-300/1000', undefined],
    ['bytes -1-99/1000', undefined],
    ['bytes 0-99999999999999999999/1', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [input, want] of table) assert.deepEqual(parseContentRange(input), want, String(input));
});

test('parseUnsatisfiedRange and parseContentLength', () => {
  assert.equal(parseUnsatisfiedRange('bytes */0'), 0);
  assert.equal(parseUnsatisfiedRange('bytes */123'), 123);
  assert.equal(parseUnsatisfiedRange('bytes 0-1/2'), undefined);
  assert.equal(parseContentLength('42'), 42);
  assert.equal(parseContentLength(' 42 '), 42);
  assert.equal(parseContentLength('-1'), undefined);
  assert.equal(parseContentLength('4e3'), undefined);
  assert.equal(parseContentLength(undefined), undefined);
});

test('sameVersion compares validators present on both sides', () => {
  assert.equal(sameVersion({ etag: '"a"' }, { etag: '"a"' }), true);
  assert.equal(sameVersion({ etag: '"a"' }, { etag: 'W/"a"' }), true);
  assert.equal(sameVersion({ etag: '"a"' }, { etag: '"b"' }), false);
  assert.equal(sameVersion({ etag: '"a"' }, {}), true);
  assert.equal(sameVersion({ lastModified: 'x' }, { lastModified: 'y' }), false);
  assert.equal(sameVersion({}, { etag: '"b"', lastModified: 'y' }), true);
});

test('ifRangeValue never sends a weak ETag', () => {
  assert.equal(ifRangeValue({ etag: '"a"', lastModified: 'd' }), '"a"');
  assert.equal(ifRangeValue({ etag: 'W/"a"', lastModified: 'd' }), 'd');
  assert.equal(ifRangeValue({}), undefined);
});

test('file names from Content-Disposition and URLs are bare and safe', () => {
  const table: [string | undefined, string | undefined][] = [
    ['attachment; filename="report.pdf"', 'report.pdf'],
    ['attachment; filename=plain.txt', 'plain.txt'],
    ['attachment; filename*=UTF-8\'\'%E2%82%AC%20rates.txt; filename="x.txt"', '€ rates.txt'],
    ['attachment; filename="../../etc/passwd"', 'passwd'],
    ['attachment; filename=".."', undefined],
    ['attachment; filename="a\\"b.txt"', 'a"b.txt'],
    ["attachment; filename*=UTF-8''%ZZ; filename=ok.bin", 'ok.bin'],
    ['inline', undefined],
    [undefined, undefined],
  ];
  for (const [input, want] of table) assert.equal(dispositionFilename(input), want, String(input));
  assert.equal(urlFilename(new URL('http://h/a/b/file%20name.iso?x=1')), 'file name.iso');
  assert.equal(urlFilename(new URL('http://h/')), undefined);
  assert.equal(urlFilename(new URL('http://h/a/%2e%2e')), undefined);
});

test("undici-core: agents have request() without the index, and are the index's classes", async () => {
  // A fresh process, so that nothing has loaded undici's index before undici-core.
  const { execFileSync } = await import('node:child_process');
  const core = new URL('../../src/links/undici-core.js', import.meta.url).href;
  const script = `const c = await import(${JSON.stringify(core)});
    const ok1 = typeof new c.Agent().request === 'function';
    const u = await import('undici');
    console.log(JSON.stringify([ok1, c.Agent === u.Agent, c.buildConnector === u.buildConnector]));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), [true, true, true]);
});
