/**
 * The allocator tuning (net/malloc-tuning.ts): with fake C library calls, a
 * fake clock and a fake RSS, the arena cap is set once, the trim runs on
 * demand, when RSS grew by the threshold and after the longest interval, with
 * its time recorded; it is a no-op where the calls are missing (not glibc) or with
 * LINKMUX_MALLOC=off. And, on this machine, the real calls: glibc's answer
 * matches what the C library is (process.report), and a real trim runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { glibcMalloc, startMallocTuning, type MallocSupport } from '../../src/net/malloc-tuning.js';

const MiB = 1024 * 1024;

/** Fake C library calls over a fake clock: a trim takes 5 ms. */
function fakeSupport() {
  const calls: string[] = [];
  const state = { clock: 0, rss: 100 * MiB };
  const support: MallocSupport = {
    ok: true,
    glibc: 'fake',
    calls: {
      mallopt: (p, v) => (calls.push(`mallopt(${p}, ${v})`), 1),
      mallocTrim: (pad) => {
        calls.push(`malloc_trim(${pad})`);
        state.clock += 5;
        return calls.length % 2;
      },
    },
  };
  return { support, calls, state };
}

const trims = (calls: string[]) => calls.filter((c) => c.startsWith('malloc_trim')).length;

test('glibc: the arena cap once; trim() runs malloc_trim(0) and records its time', () => {
  const { support, calls, state } = fakeSupport();
  const m = startMallocTuning({ support, env: {}, checkIntervalMs: 0, now: () => state.clock });
  assert.equal(m.active, true);
  assert.deepEqual(calls, ['mallopt(-8, 2)']);
  m.trim();
  m.trim();
  assert.deepEqual(calls.slice(1), ['malloc_trim(0)', 'malloc_trim(0)']);
  const s = m.stats();
  assert.equal(s.trims, 2);
  assert.equal(s.totalMs, 10);
  assert.equal(s.maxMs, 5);
  assert.ok(s.released >= 1 && s.released <= 2);
  m.stop();
});

test('the check trims when RSS grew by the threshold since the lowest point, or when the longest interval passed', async () => {
  const { support, calls, state } = fakeSupport();
  const m = startMallocTuning({
    support,
    env: {},
    checkIntervalMs: 5,
    trimGrowthBytes: 16 * MiB,
    trimEveryMs: 60_000,
    now: () => state.clock,
    rss: () => state.rss,
  });
  try {
    await sleep(40);
    assert.equal(trims(calls), 0, 'steady RSS: no trim');
    state.rss += 15 * MiB;
    await sleep(40);
    assert.equal(trims(calls), 0, 'below the threshold');
    state.rss += 2 * MiB;
    await sleep(40);
    assert.equal(trims(calls), 1, 'grown by 17 MiB: one trim');
    state.rss -= 30 * MiB; // V8 gave pages back: the new base
    await sleep(40);
    state.rss += 17 * MiB; // below the old base + 16 MiB, above the new one + 16 MiB
    await sleep(40);
    assert.equal(trims(calls), 2, 'growth counts from the lowest point');
    state.clock += 60_000;
    await sleep(40);
    assert.equal(trims(calls), 3, 'the longest interval passed: one trim');
  } finally {
    m.stop();
  }
  const n = calls.length;
  state.rss += 100 * MiB;
  await sleep(40);
  assert.equal(calls.length, n, 'stop() ends the checks');
});

test('not glibc, or LINKMUX_MALLOC=off: nothing is called, trim() is a no-op', () => {
  const musl = startMallocTuning({
    support: { ok: false, reason: 'not glibc' },
    env: {},
    checkIntervalMs: 10,
  });
  assert.equal(musl.active, false);
  assert.equal(musl.reason, 'not glibc');
  musl.trim();
  assert.equal(musl.stats().trims, 0);
  musl.stop();

  const { support, calls } = fakeSupport();
  const off = startMallocTuning({ support, env: { LINKMUX_MALLOC: 'off' }, checkIntervalMs: 10 });
  assert.equal(off.active, false);
  off.trim();
  off.stop();
  assert.deepEqual(calls, []);
});

test('this machine: glibcMalloc() answers as the C library is, and the real calls run', () => {
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  const isGlibc = process.platform === 'linux' && header?.glibcVersionRuntime !== undefined;
  const s = glibcMalloc();
  assert.equal(s.ok, isGlibc, s.ok ? `glibc ${s.glibc}` : s.reason);
  if (!s.ok) return;
  assert.equal(s.glibc, header?.glibcVersionRuntime);
  const m = startMallocTuning({ env: {}, checkIntervalMs: 0 });
  m.trim();
  assert.equal(m.stats().trims, 1);
  assert.ok(m.stats().totalMs >= 0);
  m.stop();
});
