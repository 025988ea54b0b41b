/**
 * The demo's summary: one mean per download, taken from `linkmux get`'s own
 * summary, and a ratio that follows from those two means. (It used to print
 * get's mean and, next to it, a second one timed from outside the process.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoResultLines, doneSummary } from '../../src/cli/demo-report.js';
import type { DownloadSummary } from '../../src/download/progress.js';

const MiB = 1024 * 1024;

function summary(seconds: number, links: Array<[string, number]>): DownloadSummary {
  const size = links.reduce((a, [, b]) => a + b, 0);
  return {
    output: '/tmp/x',
    size,
    fetched: size,
    resumedBytes: 0,
    seconds,
    meanRate: size / seconds,
    links: links.map(([id, bytes]) => ({ id, bytes, meanRate: bytes / seconds, failed: false })),
  };
}

test('the demo prints one mean per download and the ratio of those means', () => {
  const one = summary(16, [['up0', 16 * MiB]]);
  const all = summary(5.5, [
    ['up0', 6 * MiB],
    ['up1', 5 * MiB],
    ['up2', 5 * MiB],
  ]);
  const text = demoResultLines(one, all, 3).join('\n');
  assert.equal(text.match(/mean/g)?.length, 2, text);
  assert.match(text, /one link: 8\.4 Mbit\/s mean \(16\.0 s\)/);
  assert.match(text, /all 3 links: .* mean \(5\.5 s\)/);
  assert.match(text, /up1 +5\.0 MiB +31%/);
  assert.match(text, new RegExp(`${(16 / 5.5).toFixed(2)}× faster than one link \\(ideal: 3×\\)`));
});

test('the summary is read from the done event of `linkmux get --json`', () => {
  const done = summary(2, [['up0', MiB]]);
  const lines = [
    JSON.stringify({ event: 'start', size: MiB }),
    JSON.stringify({ event: 'progress', done: 10 }),
    JSON.stringify({ event: 'done', ...done }),
    '',
  ].join('\n');
  assert.equal(doneSummary(lines).meanRate, done.meanRate);
  assert.throws(() => doneSummary('{"event":"start"}\n'), /no summary/);
});
