/**
 * Connect failover: when the connect through the picked link fails or times
 * out, which links to try next, in order.
 *
 * Guarantees: the first pick and offline links are never in the list; online
 * and unverified links come before degraded ones; within each group the adaptive rule ranks them
 * (most spare capacity, then fewest connections, then snapshot order); at most
 * `limit` links, so a client waits for at most limit + 1 connect timeouts even
 * with many dead links. The default limit (3) covers every link of the usual
 * 2–4 uplink setups, so the client sees an error only when all of them failed.
 */
import { inService, type LinkSnapshot } from './snapshot.js';
import { DEFAULT_TIE_TOLERANCE, rankBySpareCapacity } from './adaptive.js';

export const DEFAULT_FAILOVER_LIMIT = 3;

export interface FailoverOptions {
  /** Most alternatives returned. Default 3. */
  limit?: number;
  /** As in the adaptive policy. Default 0.05. */
  tieTolerance?: number;
}

export function orderForFailover(
  links: readonly LinkSnapshot[],
  firstPick: string | undefined,
  opts: FailoverOptions = {},
): string[] {
  const limit = Math.max(0, opts.limit ?? DEFAULT_FAILOVER_LIMIT);
  const tolerance = opts.tieTolerance ?? DEFAULT_TIE_TOLERANCE;
  const others = links.filter((l) => l.id !== firstPick);
  if (others.length === 0 || limit === 0) return []; // one link: nothing to rank, on every connect
  const group = (keep: (state: LinkSnapshot['state']) => boolean) =>
    rankBySpareCapacity(
      others.filter((l) => keep(l.state)),
      tolerance,
    );
  return [...group(inService), ...group((s) => s === 'degraded')].slice(0, limit).map((l) => l.id);
}
