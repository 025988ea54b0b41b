/**
 * The answer cache (src/dns/cache.ts) on a FakeClock: TTL expiry, clamping,
 * the negative cap, and LRU eviction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsCache, type CachedAnswer } from '../../src/dns/cache.js';
import { FakeClock } from '../../src/util/clock.js';

const ANSWER: CachedAnswer = { kind: 'answer', addresses: ['192.0.2.1'] };
const NX: CachedAnswer = { kind: 'negative', nxdomain: true };

type Options = ConstructorParameters<typeof DnsCache>[0];

/** True when `value` stored with `ttlS` is served for exactly `wantMs`: still there 1 ms before, gone at it. */
function livesExactly(extra: Partial<Options>, value: CachedAnswer, ttlS: number, wantMs: number): string {
  const clock = new FakeClock(1_000);
  const cache = new DnsCache({ ...extra, clock });
  cache.set('files.test', 'A', value, ttlS);
  clock.advance(wantMs - 1);
  const before = cache.get('files.test', 'A') !== undefined;
  clock.advance(1);
  const at = cache.get('files.test', 'A') !== undefined;
  return `${before ? 'kept' : 'gone'} at ${wantMs - 1} ms, ${at ? 'kept' : 'gone'} at ${wantMs} ms`;
}

test('an answer is served until its TTL, and not at the TTL', () => {
  const clock = new FakeClock(5_000);
  const cache = new DnsCache({ clock });
  cache.set('files.test', 'A', ANSWER, 60);
  clock.advance(59_999);
  assert.deepEqual(cache.get('files.test', 'A'), ANSWER);
  clock.advance(1);
  assert.equal(cache.get('files.test', 'A'), undefined);
  assert.equal(cache.size, 0, 'an expired entry is dropped when seen');
});

test('keys: case and trailing dot do not matter; the type does', () => {
  const cache = new DnsCache({ clock: new FakeClock() });
  cache.set('Files.Test.', 'A', ANSWER, 60);
  assert.deepEqual(cache.get('files.test', 'A'), ANSWER);
  assert.equal(cache.get('files.test', 'AAAA'), undefined);
});

const clamps: Array<[string, Partial<Options>, CachedAnswer, number, number]> = [
  ['TTL 0 is raised to minTtlS (default 1 s)', {}, ANSWER, 0, 1_000],
  ['a negative TTL is raised to minTtlS', {}, ANSWER, -5, 1_000],
  ['NaN is treated as 0', {}, ANSWER, Number.NaN, 1_000],
  ['a huge TTL is capped at maxTtlS (default 1 day)', {}, ANSWER, 10_000_000, 86_400_000],
  ['custom min', { minTtlS: 5 }, ANSWER, 2, 5_000],
  ['custom max', { maxTtlS: 100 }, ANSWER, 3600, 100_000],
  ['a negative answer is capped at maxNegativeTtlS (default 300 s)', {}, NX, 3600, 300_000],
  ['a short negative answer keeps its TTL', {}, NX, 45, 45_000],
  ['custom negative cap', { maxNegativeTtlS: 10 }, NX, 3600, 10_000],
  ['the negative cap never exceeds maxTtlS', { maxTtlS: 20 }, NX, 3600, 20_000],
  ['the negative cap does not apply to answers', { maxNegativeTtlS: 10 }, ANSWER, 3600, 3_600_000],
];

for (const [name, extra, value, ttl, wantMs] of clamps) {
  test(`clamping: ${name}`, () => {
    assert.equal(livesExactly(extra, value, ttl, wantMs), `kept at ${wantMs - 1} ms, gone at ${wantMs} ms`);
  });
}

test('LRU: when full, the least recently used entry goes first; a hit refreshes', () => {
  const clock = new FakeClock();
  const cache = new DnsCache({ clock, maxEntries: 3 });
  cache.set('a.test', 'A', ANSWER, 60);
  cache.set('b.test', 'A', ANSWER, 60);
  cache.set('c.test', 'A', ANSWER, 60);
  assert.ok(cache.get('a.test', 'A'), 'a is now the most recently used');
  cache.set('d.test', 'A', ANSWER, 60);
  assert.equal(cache.size, 3);
  assert.equal(cache.get('b.test', 'A'), undefined, 'b was the least recently used');
  assert.ok(cache.get('a.test', 'A'));
  assert.ok(cache.get('c.test', 'A'));
  assert.ok(cache.get('d.test', 'A'));
});

test('LRU: setting an existing key refreshes it and does not grow the cache', () => {
  const cache = new DnsCache({ clock: new FakeClock(), maxEntries: 2 });
  cache.set('a.test', 'A', ANSWER, 60);
  cache.set('b.test', 'A', ANSWER, 60);
  cache.set('a.test', 'A', NX, 60);
  assert.equal(cache.size, 2);
  cache.set('c.test', 'A', ANSWER, 60);
  assert.equal(cache.get('b.test', 'A'), undefined);
  assert.deepEqual(cache.get('a.test', 'A'), NX, 'the newer value replaced the older');
});

test('maxEntries below 1 still keeps one entry', () => {
  const cache = new DnsCache({ clock: new FakeClock(), maxEntries: 0 });
  cache.set('a.test', 'A', ANSWER, 60);
  cache.set('b.test', 'A', ANSWER, 60);
  assert.equal(cache.size, 1);
  assert.ok(cache.get('b.test', 'A'));
});
