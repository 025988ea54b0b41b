/**
 * Weighted: smooth weighted round-robin, as nginx does it. On each pick every
 * candidate's current weight grows by its weight, the largest current weight
 * wins (first in snapshot order on a tie) and the winner gives back the total.
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

    let total = 0;
    let best: { id: string; current: number } | undefined;
    for (const link of pool) {
      const w = weight(link);
      const current = (this.current.get(link.id) ?? 0) + w;
      this.current.set(link.id, current);
      total += w;
      if (!best || current > best.current) best = { id: link.id, current };
    }
    if (!best) return undefined;
    this.current.set(best.id, best.current - total);
    return best.id;
  }
}
