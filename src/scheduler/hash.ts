/**
 * Hash: what kernel ECMP does, kept as the baseline to beat in benchmarks. The
 * flow key (`ctx.flow`, else the destination) is hashed and mapped onto the
 * eligible links by hash-threshold (RFC 2992, as Linux does: the 32-bit hash
 * space cut into equal slices), blind to load. With K flows on N equal links the
 * chance that all N links are busy is only N!·S(K,N)/N^K (2/9 for K = N = 3).
 *
 * Guarantees: the same key and the same eligible set give the same link.
 * Unlike the kernel, dead links are left out (the eligibility rule every policy
 * shares), so comparisons measure only the placement, not failure handling.
 */
import type { LinkSnapshot, PickContext, Policy } from './snapshot.js';
import { eligible } from './snapshot.js';

/** FNV-1a over UTF-16 code units, then murmur3's finalizer so the high bits are well mixed. */
export function hash32(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class HashPolicy implements Policy {
  readonly name = 'hash';

  pick(links: readonly LinkSnapshot[], ctx: PickContext): string | undefined {
    const candidates = eligible(links);
    if (candidates.length === 0) return undefined;
    const slice = Math.floor((hash32(ctx.flow ?? ctx.destination) * candidates.length) / 2 ** 32);
    return candidates[slice]?.id;
  }
}
