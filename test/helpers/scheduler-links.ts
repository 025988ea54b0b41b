// Link snapshots and pick helpers shared by the scheduler tests (test/unit/scheduler*.test.ts).
import type { LinkSnapshot, PickContext, Policy } from '../../src/scheduler/snapshot.js';

export const MB = 1_000_000;
export const ctx: PickContext = { destination: 'example.org:443', now: 0 };

/** A link snapshot: online, 1 MB/s learned, idle, unless told otherwise. */
export function link(id: string, over: Partial<LinkSnapshot> = {}): LinkSnapshot {
  return { id, state: 'online', capacity: MB, rate: 0, active: 0, ...over };
}

/** Deterministic PRNG (mulberry32) so the random trials give the same numbers on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function picks(policy: Policy, links: readonly LinkSnapshot[], n: number): (string | undefined)[] {
  return Array.from({ length: n }, () => policy.pick(links, ctx));
}
