import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CapacityOptions } from '../../src/scheduler/capacity.js';
import { CapacityEstimator } from '../../src/scheduler/capacity.js';

const MB = 1_000_000;
const MINUTE = 60_000;

/** Feeds `rate` once per second over [from, to) ms. */
function feed(est: CapacityEstimator, rate: number, from: number, to: number, everyMs = 1_000): void {
  for (let t = from; t < to; t += everyMs) est.observe(rate, t);
}

test('capacity: what the estimate is after a sequence of samples', () => {
  const table: {
    name: string;
    samples: [rate: number, at: number][];
    want: number | undefined;
    opts?: CapacityOptions;
  }[] = [
    { name: 'nothing seen', samples: [], want: undefined },
    {
      name: 'only idle samples',
      samples: [
        [0, 0],
        [0, 1_000],
        [0, 2_000],
      ],
      want: undefined,
    },
    {
      name: 'garbage ignored',
      samples: [
        [NaN, 0],
        [-5, 100],
        [Infinity, 200],
        [7, NaN],
      ],
      want: undefined,
    },
    { name: 'the first peak counts at once', samples: [[2 * MB, 0]], want: 2 * MB },
    {
      name: 'peak of the bucket',
      samples: [
        [0.3 * MB, 0],
        [0.8 * MB, 250],
        [0.5 * MB, 500],
      ],
      want: 0.8 * MB,
    },
    {
      name: 'a higher later peak replaces it',
      samples: [
        [1 * MB, 0],
        [3 * MB, 5_000],
      ],
      want: 3 * MB,
    },
    {
      name: 'idle seconds do not decay it',
      samples: [
        [1 * MB, 0],
        ...Array.from({ length: 600 }, (_, i): [number, number] => [0, (i + 1) * 1_000]),
      ],
      want: 1 * MB,
    },
    {
      name: 'a long silence does not decay it',
      samples: [
        [1 * MB, 0],
        [0.1 * MB, 3_600_000],
      ],
      want: 1 * MB,
    },
    {
      name: 'a sample from the past counts in the current bucket',
      samples: [
        [1 * MB, 5_000],
        [2 * MB, 1_000],
      ],
      want: 2 * MB,
    },
    {
      name: 'with no decay, a slower link is never re-learned',
      samples: [
        [1 * MB, 0],
        ...Array.from({ length: 600 }, (_, i): [number, number] => [0.5 * MB, (i + 1) * 1_000]),
      ],
      want: 1 * MB,
      opts: { decayPerMinute: 0 },
    },
  ];
  for (const { name, samples, want, opts } of table) {
    const est = new CapacityEstimator(opts);
    for (const [rate, at] of samples) est.observe(rate, at);
    assert.equal(est.capacity, want, name);
  }
});

test('capacity decays about 5 % per busy minute and re-learns a slower link', () => {
  const est = new CapacityEstimator();
  est.observe(10 * MB, 0);
  feed(est, 5 * MB, 1_000, MINUTE + 1_000);
  // 60 busy buckets were closed (0 .. 59; bucket 60 is in progress)
  const afterOne = 10 * MB * 0.95 ** (59 / 60);
  assert.ok(Math.abs(est.capacity! - afterOne) < 1, `${est.capacity} vs ${afterOne}`);
  assert.ok(est.capacity! > 9.4 * MB && est.capacity! < 9.6 * MB);

  feed(est, 5 * MB, MINUTE + 1_000, 13 * MINUTE);
  assert.ok(est.capacity! > 5 * MB, 'still above after 13 minutes (10 → 5 needs ~13.5)');
  feed(est, 5 * MB, 13 * MINUTE, 15 * MINUTE);
  assert.equal(est.capacity, 5 * MB, 're-learned, and never below what the link carries');

  est.observe(8 * MB, 15 * MINUTE + 500);
  assert.equal(est.capacity, 8 * MB, 'back up at once when the link shows more');
});

test('capacity: decay speed follows the options', () => {
  const table: { opts: CapacityOptions; minutes: number; want: number }[] = [
    { opts: { decayPerMinute: 0.5 }, minutes: 1, want: 0.5 },
    { opts: { decayPerMinute: 0.5 }, minutes: 2, want: 0.25 },
    { opts: { decayPerMinute: 0.5, bucketMs: 250 }, minutes: 1, want: 0.5 },
    { opts: { decayPerMinute: 0.1 }, minutes: 3, want: 0.9 ** 3 },
  ];
  for (const { opts, minutes, want } of table) {
    const est = new CapacityEstimator(opts);
    const bucket = opts.bucketMs ?? 1_000;
    // a trickle keeps every bucket busy without lifting the estimate
    feed(est, 100 * MB, 0, bucket);
    feed(est, 1, bucket, minutes * MINUTE + bucket + 1, bucket);
    const got = est.capacity! / (100 * MB);
    assert.ok(Math.abs(got - want) < 1e-9, `${JSON.stringify(opts)} after ${minutes} min: ${got} vs ${want}`);
  }
});
