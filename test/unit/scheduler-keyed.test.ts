// Keyed policies: sticky (per destination, TTL, bounded memory) and hash (ECMP-like), against adaptive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HashPolicy } from '../../src/scheduler/hash.js';
import { createPolicy } from '../../src/scheduler/policies.js';
import { RoundRobinPolicy } from '../../src/scheduler/round-robin.js';
import type { LinkSnapshot } from '../../src/scheduler/snapshot.js';
import { StickyPolicy } from '../../src/scheduler/sticky.js';
import { FakeClock } from '../../src/util/clock.js';
import { MB, ctx, link, prng } from '../helpers/scheduler-links.js';

test('sticky: same destination, same link, until the TTL lapses or the link goes offline', () => {
  const clock = new FakeClock();
  const sticky = new StickyPolicy({ fallback: new RoundRobinPolicy(), ttlMs: 1_000 });
  const up = [link('a'), link('b'), link('c')];
  const at = (destination: string, links: LinkSnapshot[] = up) =>
    sticky.pick(links, { destination, now: clock.now() });

  // Each row: advance the clock, then pick for a destination over a snapshot.
  const table: {
    advance: number;
    dst: string;
    links?: LinkSnapshot[];
    want: string | undefined;
    why: string;
  }[] = [
    { advance: 0, dst: 'bank', want: 'a', why: 'first time: the fallback places it' },
    { advance: 0, dst: 'shop', want: 'b', why: 'another destination: fallback again' },
    { advance: 500, dst: 'bank', want: 'a', why: 'fresher than the TTL: same link' },
    { advance: 900, dst: 'bank', want: 'a', why: 'the TTL slides: 900 ms after the last use' },
    { advance: 1_000, dst: 'bank', want: 'c', why: 'exactly the TTL after the last use: lapsed' },
    { advance: 0, dst: 'bank', want: 'c', why: 'the new placement is remembered' },
    {
      advance: 10,
      dst: 'bank',
      links: [link('a'), link('b'), link('c', { state: 'degraded' })],
      want: 'c',
      why: 'degraded is kept: moving would change the IP',
    },
    {
      advance: 10,
      dst: 'bank',
      links: [link('a'), link('b'), link('c', { state: 'offline' })],
      want: 'a',
      why: 'offline: moved by the fallback',
    },
    { advance: 10, dst: 'bank', want: 'a', why: 'stays moved after c is back' },
    {
      advance: 10,
      dst: 'bank',
      links: [link('b'), link('c')],
      want: 'b',
      why: 'link gone from the snapshot',
    },
    {
      advance: 10,
      dst: 'shop',
      links: [
        link('a', { state: 'offline' }),
        link('b', { state: 'offline' }),
        link('c', { state: 'offline' }),
      ],
      want: undefined,
      why: 'all offline',
    },
  ];
  for (const { advance, dst, links, want, why } of table) {
    clock.advance(advance);
    assert.equal(at(dst, links), want, `t=${clock.now()} ${dst}: ${why}`);
  }
});

test('sticky: memory is bounded, least recently used dropped first', () => {
  const sticky = new StickyPolicy({ fallback: new RoundRobinPolicy(), maxEntries: 2 });
  const links = [link('a'), link('b'), link('c')];
  const pick = (destination: string) => sticky.pick(links, { destination, now: 0 });
  assert.deepEqual(['x', 'y', 'x', 'z'].map(pick), ['a', 'b', 'a', 'c']); // z evicts y, not x
  assert.equal(sticky.size, 2);
  assert.equal(pick('x'), 'a');
  assert.equal(pick('y'), 'a', 'y was forgotten: placed anew');
});

test('hash: a pure function of the key and the eligible set, like ECMP', () => {
  const policy = new HashPolicy();
  const links = [link('a'), link('b'), link('c')];
  const first = policy.pick(links, { destination: 'd', now: 0, flow: 'f1' });
  for (let i = 0; i < 5; i++)
    assert.equal(policy.pick(links, { destination: 'd', now: i, flow: 'f1' }), first);
  assert.equal(
    policy.pick(links, { destination: 'same-server', now: 0 }),
    policy.pick(links, { destination: 'same-server', now: 9 }),
    'no flow key: L3 hashing by destination',
  );
  assert.equal(policy.pick([link('a', { state: 'offline' })], ctx), undefined);
  assert.equal(policy.pick([link('a', { state: 'offline' }), link('b', { state: 'degraded' })], ctx), 'b');

  // blind to load, but uniform over many flows
  const busy = [link('a', { active: 100, rate: MB }), link('b'), link('c')];
  const counts = new Map<string, number>();
  for (let i = 0; i < 30_000; i++) {
    const id = policy.pick(busy, { destination: 'srv:443', now: 0, flow: `10.0.0.2:${i}` })!;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  for (const id of ['a', 'b', 'c']) {
    const share = (counts.get(id) ?? 0) / 30_000;
    assert.ok(Math.abs(share - 1 / 3) < 0.02, `${id} got ${share}`);
  }
});

test('motivation: K = 3 flows on 3 equal links — hash leaves links idle, adaptive never does', () => {
  const random = prng(3);
  const trials = 10_000;
  const K = 3;
  let hashAllBusy = 0;
  let adaptiveAllBusy = 0;
  for (let t = 0; t < trials; t++) {
    const ids = ['a', 'b', 'c'].sort(() => random() - 0.5); // a different link order per trial

    const hash = new HashPolicy();
    const hashLinks = ids.map((id) => link(id));
    const hashUsed = new Set<string>();
    for (let k = 0; k < K; k++) {
      const flow = `198.18.0.2:${1024 + Math.floor(random() * 64_512)}->198.18.9.1:443`;
      hashUsed.add(hash.pick(hashLinks, { destination: '198.18.9.1:443', now: 0, flow })!);
    }
    if (hashUsed.size === 3) hashAllBusy++;

    const adaptive = createPolicy('adaptive');
    const links = ids.map((id) => link(id));
    const used = new Set<string>();
    for (let k = 0; k < K; k++) {
      const id = adaptive.pick(links, { destination: '198.18.9.1:443', now: 0 })!;
      used.add(id);
      const l = links.find((x) => x.id === id)!;
      l.active += 1;
      l.rate = l.capacity!; // a bulk download fills its link
    }
    if (used.size === 3) adaptiveAllBusy++;
  }
  const hashShare = hashAllBusy / trials;
  assert.ok(
    Math.abs(hashShare - 2 / 9) < 0.02,
    `hash: all links busy in ${hashShare} of trials, expected ~0.222`,
  );
  assert.equal(adaptiveAllBusy, trials, 'adaptive: all links busy in every trial');
});

test('adaptive with K = 6 flows on 3 equal links puts exactly two on each', () => {
  const policy = createPolicy('adaptive');
  const links = [link('a'), link('b'), link('c')];
  for (let k = 0; k < 6; k++) {
    const l = links.find((x) => x.id === policy.pick(links, ctx))!;
    l.active += 1;
    l.rate = l.capacity!;
  }
  assert.deepEqual(
    links.map((l) => l.active),
    [2, 2, 2],
  );
});
