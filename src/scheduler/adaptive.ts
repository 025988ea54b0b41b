/**
 * The default policy: a new connection goes to the eligible link where it can
 * expect the most throughput: the link's learned capacity shared fairly with the
 * connections already busy on it, capacity / (busy + 1). An idle link offers
 * all of its capacity, so it is chosen before any busy one: that is what fixes
 * ECMP's idle links.
 *
 * Why busy connections and not "capacity − measured rate": the rate is sampled
 * once a second, so a burst of connections (a browser opening six, a download
 * manager opening four) all saw the same stale spare and landed on one link
 * (seen on the testbed: six downloads, one link). `active` in the snapshot is
 * the number of connections that moved bytes in the last second or opened in
 * the last two (the dialer counts them), so each pick sees the ones before it.
 *
 * Guarantees, beyond the shared ones (snapshot.ts):
 * - a link whose capacity is not learned yet counts as having the mean of the
 *   learned capacities of the candidates (if none is learned, all spares tie), so
 *   a new link is neither starved nor flooded;
 * - spares within `tieTolerance` × that mean of the best count as a tie, because
 *   rates are noisy and a connection opened a moment ago has not ramped up yet:
 *   without it, two equal links learned as 1.00 and 0.98 MB/s would both get the
 *   next connections on the first one. 0 makes ties exact;
 * - ties go to the link with the fewest open connections, then to snapshot order.
 */
import type { LinkSnapshot, Policy } from './snapshot.js';
import { eligible } from './snapshot.js';

/** Default tie band, as a fraction of the mean capacity. */
export const DEFAULT_TIE_TOLERANCE = 0.05;

export interface AdaptiveOptions {
  /** Fraction of the mean capacity within which spare capacities count as equal. Default 0.05. */
  tieTolerance?: number;
}

/**
 * The given links, best first, by the adaptive rule (no eligibility filter: the
 * caller decides which links compete). Each place is chosen like one pick among
 * the links not yet placed, so the first element is exactly what adaptive picks.
 */
export function rankBySpareCapacity(
  links: readonly LinkSnapshot[],
  tieTolerance = DEFAULT_TIE_TOLERANCE,
): LinkSnapshot[] {
  const known = links.map((l) => l.capacity).filter((c): c is number => c !== undefined && c >= 0);
  const mean = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : undefined;
  const band = mean === undefined ? 0 : Math.max(0, tieTolerance) * mean;
  const spare = (l: LinkSnapshot): number => {
    if (mean === undefined) return 0; // nothing learned: every link ties
    const capacity = l.capacity !== undefined && l.capacity >= 0 ? l.capacity : mean;
    return capacity / (Math.max(0, l.active) + 1);
  };

  const rest = links.map((link) => ({ link, spare: spare(link) }));
  const ranked: LinkSnapshot[] = [];
  while (rest.length > 0) {
    const best = Math.max(...rest.map((r) => r.spare));
    let chosen = -1;
    for (let i = 0; i < rest.length; i++) {
      const r = rest[i]!;
      if (r.spare < best - band) continue;
      if (chosen < 0 || r.link.active < rest[chosen]!.link.active) chosen = i;
    }
    ranked.push(rest.splice(chosen, 1)[0]!.link);
  }
  return ranked;
}

export class AdaptivePolicy implements Policy {
  readonly name = 'adaptive';
  private readonly tieTolerance: number;

  constructor(opts: AdaptiveOptions = {}) {
    this.tieTolerance = opts.tieTolerance ?? DEFAULT_TIE_TOLERANCE;
  }

  pick(links: readonly LinkSnapshot[]): string | undefined {
    return rankBySpareCapacity(eligible(links), this.tieTolerance)[0]?.id;
  }
}
