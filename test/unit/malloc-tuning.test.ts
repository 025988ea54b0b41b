/**
 * The allocator tuning (net/malloc-tuning.ts): with fake C library calls, the
 * arena cap is set once and the trim runs on its timer and on demand, with its
 * time recorded; it is a no-op where the calls are missing (not glibc) or with
 * LINKMUX_MALLOC=off. And, on this machine, the real calls: glibc's answer
 * matches what the C library is (process.report), and a real trim runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { glibcMalloc, startMallocTuning, type MallocSupport } from '../../src/net/malloc-tuning.js';

function fakeSupport() {
  const calls: string[] = [];
  const support: MallocSupport = {
    ok: true,
    glibc: 'fake',
    calls: {
      mallopt: (p, v) => (calls.push(`mallopt(${p}, ${v})`), 1),
      mallocTrim: (pad) => (calls.push(`malloc_trim(${pad})`), calls.length % 2),
    },
  };
  return { support, calls };
}

test('glibc: the arena cap once, then malloc_trim(0) on the timer and on demand, timed', async () => {
  const { support, calls } = fakeSupport();
  let t = 0;
  const m = startMallocTuning({ support, env: {}, trimIntervalMs: 20, now: () => (t += 5) });
  try {
    assert.equal(m.active, true);
    assert.deepEqual(calls, ['mallopt(-8, 2)']);
    m.trim();
    assert.deepEqual(calls.slice(1), ['malloc_trim(0)']);
    await sleep(70);
    const s = m.stats();
    assert.ok(s.trims >= 2, `the timer trimmed too (${s.trims})`);
    assert.equal(s.trims, calls.length - 1);
    assert.equal(s.totalMs, 5 * s.trims, 'each call timed with the injected clock');
    assert.equal(s.maxMs, 5);
    assert.ok(s.released >= 1 && s.released <= s.trims);
  } finally {
    m.stop();
  }
  const n = calls.length;
  await sleep(50);
  assert.equal(calls.length, n, 'stop() ends the timer');
});

test('not glibc, or LINKMUX_MALLOC=off: nothing is called, trim() is a no-op', () => {
  const musl = startMallocTuning({
    support: { ok: false, reason: 'not glibc' },
    env: {},
    trimIntervalMs: 10,
  });
  assert.equal(musl.active, false);
  assert.equal(musl.reason, 'not glibc');
  musl.trim();
  assert.equal(musl.stats().trims, 0);
  musl.stop();

  const { support, calls } = fakeSupport();
  const off = startMallocTuning({ support, env: { LINKMUX_MALLOC: 'off' }, trimIntervalMs: 10 });
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
  const m = startMallocTuning({ env: {}, trimIntervalMs: 0 });
  m.trim();
  assert.equal(m.stats().trims, 1);
  assert.ok(m.stats().totalMs >= 0);
  m.stop();
});
