import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdaptivePolicy, rankBySpareCapacity } from '../../src/scheduler/adaptive.js';
import { orderForFailover } from '../../src/scheduler/failover.js';
import { LeastConnectionsPolicy } from '../../src/scheduler/least-connections.js';
import { POLICY_NAMES, createPolicy } from '../../src/scheduler/policies.js';
import { RoundRobinPolicy } from '../../src/scheduler/round-robin.js';
import type { LinkSnapshot } from '../../src/scheduler/snapshot.js';
import { eligible } from '../../src/scheduler/snapshot.js';
import { WeightedPolicy } from '../../src/scheduler/weighted.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { MB, link, picks } from '../helpers/scheduler-links.js';

test('eligible: online links, else degraded ones, never offline; order kept', () => {
  const table: { links: LinkSnapshot[]; want: string[] }[] = [
    { links: [], want: [] },
    { links: [link('a'), link('b', { state: 'degraded' }), link('c')], want: ['a', 'c'] },
    { links: [link('a', { state: 'offline' }), link('b', { state: 'degraded' })], want: ['b'] },
    { links: [link('a', { state: 'offline' }), link('b', { state: 'offline' })], want: [] },
  ];
  for (const { links, want } of table) {
    assert.deepEqual(
      eligible(links).map((l) => l.id),
      want,
    );
  }
});

test('adaptive: most expected share (capacity / (busy + 1)), unknown = mean, ties → fewest → order', () => {
  const table: { name: string; links: LinkSnapshot[]; want: string | undefined; tieTolerance?: number }[] = [
    { name: 'no links', links: [], want: undefined },
    {
      name: 'all offline',
      links: [link('a', { state: 'offline' }), link('b', { state: 'offline' })],
      want: undefined,
    },
    {
      name: 'most expected share wins, not most capacity',
      links: [
        link('a', { capacity: 2 * MB, active: 3 }),
        link('b', { active: 0 }),
        link('c', { capacity: 0.5 * MB }),
      ],
      want: 'b',
    },
    {
      name: 'offline link with all its capacity spare is never chosen',
      links: [link('a', { state: 'offline', capacity: 10 * MB }), link('b', { active: 4 })],
      want: 'b',
    },
    {
      name: 'an online link beats a degraded one with more spare',
      links: [link('a', { state: 'degraded', capacity: 10 * MB }), link('b', { active: 4 })],
      want: 'b',
    },
    {
      name: 'degraded used when no link is online',
      links: [
        link('a', { state: 'offline' }),
        link('b', { state: 'degraded', active: 1 }),
        link('c', { state: 'degraded' }),
      ],
      want: 'c',
    },
    {
      name: 'unknown capacity counts as the mean of the known ones (2 MB/s here)',
      links: [
        link('a', { capacity: 1 * MB }),
        link('b', { capacity: 3 * MB, active: 2 }),
        link('c', { capacity: undefined }),
      ],
      want: 'c',
    },
    {
      name: 'unknown capacity above its mean-based share loses',
      links: [link('a', { capacity: 1 * MB }), link('b', { capacity: undefined, active: 1 })],
      want: 'a',
    },
    {
      name: 'nothing learned: all tie, fewest connections wins',
      links: [
        link('a', { capacity: undefined, active: 2 }),
        link('b', { capacity: undefined, active: 1 }),
        link('c', { capacity: undefined, active: 1 }),
      ],
      want: 'b',
    },
    {
      name: 'exact tie and equal connections: first in order',
      links: [link('a', { active: 1 }), link('b', { active: 1 }), link('c', { active: 1 })],
      want: 'a',
    },
    {
      name: 'shares within 5 % of the mean capacity tie: fewer connections wins',
      links: [link('a', { capacity: 2 * MB, active: 1 }), link('b', { capacity: 0.98 * MB })],
      want: 'b',
    },
    {
      name: 'with tieTolerance 0 the 2 % difference decides',
      links: [link('a', { capacity: 2 * MB, active: 1 }), link('b', { capacity: 0.98 * MB })],
      want: 'a',
      tieTolerance: 0,
    },
    {
      name: 'a difference beyond the band is not a tie',
      links: [link('a', { capacity: 3 * MB, active: 1 }), link('b', { capacity: 1 * MB })],
      want: 'a',
    },
    {
      name: 'the measured rate does not decide (it lags a burst of connections)',
      links: [link('a', { rate: 0.9 * MB, active: 0 }), link('b', { rate: 0, active: 1 })],
      want: 'a',
    },
  ];
  for (const { name, links, want, tieTolerance } of table) {
    const policy = new AdaptivePolicy(tieTolerance === undefined ? {} : { tieTolerance });
    assert.equal(policy.pick(links), want, name);
  }
});

test('rankBySpareCapacity orders every link the way successive picks would', () => {
  const links = [link('a', { active: 3 }), link('b', { active: 2 }), link('c', { active: 1 }), link('d')];
  assert.deepEqual(
    rankBySpareCapacity(links).map((l) => l.id),
    ['d', 'c', 'b', 'a'],
  );
});

test('round-robin: rotates over eligible links, skipping ones that drop out', () => {
  const a = link('a');
  const b = link('b');
  const c = link('c');
  const table: { name: string; steps: { links: LinkSnapshot[]; want: (string | undefined)[] }[] }[] = [
    { name: 'plain rotation', steps: [{ links: [a, b, c], want: ['a', 'b', 'c', 'a', 'b'] }] },
    {
      name: 'offline skipped, degraded skipped while others are online',
      steps: [
        {
          links: [a, { ...b, state: 'offline' }, { ...c, state: 'degraded' }, link('d')],
          want: ['a', 'd', 'a'],
        },
      ],
    },
    {
      name: 'only degraded left: they rotate',
      steps: [
        {
          links: [
            { ...a, state: 'degraded' },
            { ...b, state: 'degraded' },
          ],
          want: ['a', 'b', 'a'],
        },
      ],
    },
    { name: 'all offline', steps: [{ links: [{ ...a, state: 'offline' }], want: [undefined, undefined] }] },
    {
      name: 'a link going offline mid-rotation is skipped, the rotation carries on',
      steps: [
        { links: [a, b, c], want: ['a', 'b'] },
        { links: [a, b, { ...c, state: 'offline' }], want: ['a', 'b', 'a'] },
        { links: [a, b, c], want: ['b', 'c', 'a'] },
      ],
    },
    {
      name: 'the last pick left the snapshot: continue from its position',
      steps: [
        { links: [a, b, c], want: ['a', 'b'] },
        { links: [a, c], want: ['c', 'a'] },
      ],
    },
  ];
  for (const { name, steps } of table) {
    const policy = new RoundRobinPolicy();
    const got = steps.map((s) => picks(policy, s.links, s.want.length));
    assert.deepEqual(
      got,
      steps.map((s) => s.want),
      name,
    );
  }
});

test('weighted: smooth WRR gives the nginx sequence', () => {
  const table: { weights: number[]; want: string }[] = [
    { weights: [5, 1, 1], want: 'aabacaa' },
    { weights: [1, 1, 1], want: 'abcabc' },
    { weights: [2, 1], want: 'abaaba' },
    { weights: [0, 3, 0], want: 'bbb' }, // weight 0 = backup, unused while a weighted link is usable
    { weights: [0, 0], want: 'abab' }, // only backups: plain rotation
  ];
  for (const { weights, want } of table) {
    const links = weights.map((w, i) => link(String.fromCharCode(97 + i), { weight: w }));
    assert.equal(
      picks(new WeightedPolicy(), links, want.length).join(''),
      want,
      `weights ${weights.join(',')}`,
    );
  }
});

test('weighted: 1000 picks match the weights exactly, in every full cycle', () => {
  const table: { weights: number[]; want: number[] }[] = [
    { weights: [5, 3, 2], want: [500, 300, 200] },
    { weights: [1, 1, 2], want: [250, 250, 500] },
    { weights: [3, 1], want: [750, 250] },
    { weights: [7, 1, 1, 1], want: [700, 100, 100, 100] },
  ];
  for (const { weights, want } of table) {
    const links = weights.map((w, i) => link(`l${i}`, { weight: w }));
    const total = weights.reduce((a, b) => a + b, 0);
    const policy = new WeightedPolicy();
    const counts = new Map<string, number>();
    for (let n = 1; n <= 1000; n++) {
      const id = policy.pick(links);
      assert.ok(id);
      counts.set(id, (counts.get(id) ?? 0) + 1);
      if (n % total === 0) {
        // after every full cycle of W picks each link has exactly its share
        links.forEach((l, i) =>
          assert.equal(counts.get(l.id) ?? 0, (n / total) * weights[i]!, `${weights} at ${n}`),
        );
      }
    }
    assert.deepEqual(
      links.map((l) => counts.get(l.id) ?? 0),
      want,
    );
  }
});

test('weighted: eligibility and a link re-entering fresh', () => {
  const table: { links: LinkSnapshot[]; want: (string | undefined)[] }[] = [
    {
      links: [link('a', { state: 'offline', weight: 9 }), link('b', { state: 'offline' })],
      want: [undefined],
    },
    {
      links: [
        link('a', { state: 'degraded', weight: 9 }),
        link('b', { weight: 1 }),
        link('c', { weight: 1 }),
      ],
      want: ['b', 'c', 'b'],
    },
    {
      links: [link('a', { state: 'degraded', weight: 2 }), link('b', { state: 'offline' })],
      want: ['a', 'a'],
    },
  ];
  for (const { links, want } of table)
    assert.deepEqual(picks(new WeightedPolicy(), links, want.length), want);

  const policy = new WeightedPolicy();
  const heavy = [link('a', { weight: 3 }), link('b', { weight: 1 })];
  assert.deepEqual(picks(policy, heavy, 2), ['a', 'a']);
  picks(policy, [link('a', { weight: 3, state: 'offline' }), link('b', { weight: 1 })], 2);
  // a re-enters at 0 while b kept the credit it had: b's turn comes one pick early
  assert.deepEqual(picks(policy, heavy, 4), ['a', 'b', 'a', 'a']);
});

test('least-connections: fewest open connections, ties by order', () => {
  const table: { links: LinkSnapshot[]; want: string | undefined }[] = [
    { links: [], want: undefined },
    { links: [link('a', { active: 3 }), link('b', { active: 1 }), link('c', { active: 2 })], want: 'b' },
    { links: [link('a', { active: 1 }), link('b', { active: 1 })], want: 'a' },
    { links: [link('a', { active: 0, state: 'offline' }), link('b', { active: 9 })], want: 'b' },
    { links: [link('a', { active: 0, state: 'degraded' }), link('b', { active: 9 })], want: 'b' },
    {
      links: [link('a', { active: 4, state: 'degraded' }), link('b', { active: 2, state: 'degraded' })],
      want: 'b',
    },
    { links: [link('a', { state: 'offline' })], want: undefined },
  ];
  for (const { links, want } of table) assert.equal(new LeastConnectionsPolicy().pick(links), want);
});

test('orderForFailover: others, healthy first, ranked, bounded', () => {
  const table: {
    name: string;
    links: LinkSnapshot[];
    first: string | undefined;
    limit?: number;
    want: string[];
  }[] = [
    { name: 'no links', links: [], first: undefined, want: [] },
    { name: 'only the first pick', links: [link('a')], first: 'a', want: [] },
    {
      name: 'first pick and offline links left out, online before degraded',
      links: [
        link('a', { state: 'degraded' }),
        link('b'),
        link('c', { state: 'offline' }),
        link('d', { active: 2 }),
        link('e'),
      ],
      first: 'b',
      want: ['e', 'd', 'a'],
    },
    {
      name: 'degraded links ranked among themselves',
      links: [
        link('a'),
        link('b', { state: 'degraded', active: 3 }),
        link('c', { state: 'degraded', active: 1 }),
      ],
      first: 'a',
      want: ['c', 'b'],
    },
    {
      name: 'bounded by the limit',
      links: [link('a'), link('b'), link('c'), link('d'), link('e')],
      first: 'c',
      want: ['a', 'b', 'd'],
    },
    { name: 'custom limit', links: [link('a'), link('b'), link('c')], first: 'a', limit: 1, want: ['b'] },
    {
      name: 'no first pick: every usable link',
      links: [link('a', { state: 'offline' }), link('b', { state: 'degraded' })],
      first: undefined,
      want: ['b'],
    },
  ];
  for (const { name, links, first, limit, want } of table) {
    assert.deepEqual(orderForFailover(links, first, limit === undefined ? {} : { limit }), want, name);
  }
});

test('createPolicy: every name builds its policy; bad names and sticky-on-sticky refused', () => {
  for (const name of POLICY_NAMES) assert.equal(createPolicy(name).name, name);
  assert.equal(createPolicy().name, 'adaptive');
  assert.throws(
    () => createPolicy('fastest'),
    (err) => isLinkmuxError(err, 'LINKMUX_ERR_USAGE') && /adaptive, round-robin/.test(err.message),
  );
  assert.throws(
    () => createPolicy('sticky', { fallback: 'sticky' as never }),
    (err) => isLinkmuxError(err, 'LINKMUX_ERR_USAGE'),
  );

  const sticky = createPolicy('sticky', { fallback: 'round-robin', ttlMs: 100 });
  const links = [link('a'), link('b')];
  assert.deepEqual(
    [0, 50, 149, 300].map((now) => sticky.pick(links, { destination: 'x', now })),
    ['a', 'a', 'a', 'b'],
  );
});
