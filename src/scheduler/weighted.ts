/**
 * Weighted: smooth weighted round-robin (smooth-wrr.ts, shared with the
 * gateway), one pick per connection; ties go to the first in snapshot order.
 *
 * Guarantees: over any run of W picks (W = sum of weights) with fixed weights and
 * candidates, each link is picked exactly `weight` times, spread out rather than
 * in bursts (weights 5,1,1 give a a b a c a a). Weights are `LinkSnapshot.weight`
 * (default 1). A weight of 0 (or negative, or NaN) makes a link a backup, used
 * round-robin only when no eligible link has a positive weight. A link that
 * leaves the candidates forgets its current weight, so it re-enters fresh.
 */
import type { LinkSnapshot, Policy } from './snapshot.js';
import { eligible } from './snapshot.js';
import { smoothPick } from './smooth-wrr.js';

function weightOf(link: LinkSnapshot): number {
  const w = link.weight ?? 1;
  return Number.isFinite(w) && w > 0 ? w : 0;
}

export class WeightedPolicy implements Policy {
  readonly name = 'weighted';
  private readonly current = new Map<string, number>();

  pick(links: readonly LinkSnapshot[]): string | undefined {
    const candidates = eligible(links);
    const weighted = candidates.filter((l) => weightOf(l) > 0);
    const pool = weighted.length > 0 ? weighted : candidates;
    const weight = weighted.length > 0 ? weightOf : () => 1;
    const inPool = new Set(pool.map((l) => l.id));
    for (const id of this.current.keys()) if (!inPool.has(id)) this.current.delete(id);

    const current = pool.map((l) => this.current.get(l.id) ?? 0);
    const best = smoothPick(pool.map(weight), current);
    pool.forEach((l, i) => this.current.set(l.id, current[i] ?? 0));
    return pool[best]?.id;
  }
}
