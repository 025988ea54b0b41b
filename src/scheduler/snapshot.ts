/**
 * What a scheduling policy sees and promises. A policy is a function of a
 * snapshot of link stats (plus, for the stateful ones, its own memory of past
 * picks): no sockets, no clock reads — time comes in `ctx.now` — so every policy
 * is tested with tables.
 *
 * Shared guarantees of every policy:
 * - it never returns an offline link, nor an id absent from the snapshot;
 * - unverified links (every link fails its probes: the targets, not the links,
 *   are suspect) are used like online ones: nothing says they are worse;
 * - degraded links are used only when no online or unverified link exists (`eligible`);
 * - it returns undefined only when every link is offline (or there is none);
 * - ties are broken by the snapshot's order, so callers pass links in a stable
 *   order (the configuration's) and the same inputs give the same pick.
 */
import type { LinkState } from '../links/link-state.js';

export interface LinkSnapshot {
  id: string;
  state: LinkState;
  /** Bytes/s the link has proven it can carry, learned from observed throughput; undefined until learned. */
  capacity: number | undefined;
  /** Bytes/s currently moving through the link, in + out. */
  rate: number;
  /** Open connections through the link. */
  active: number;
  /** Share for the weighted policy (default 1; 0 = only when no weighted link is usable). */
  weight?: number;
}

export interface PickContext {
  /** The destination key: "host:port", or whatever a sticky rule groups by (a site). */
  destination: string;
  /** Clock time in ms (the injected clock's), for policies that remember. */
  now: number;
  /**
   * Per-connection key (a 5-tuple, or the client's address and port) for the hash
   * policy, which then spreads connections to one destination like L4 ECMP does.
   * Without it, hash keys on the destination alone (L3 ECMP).
   */
  flow?: string;
}

export interface Policy {
  readonly name: string;
  /** The id of the link for a new connection, or undefined when no link is usable. */
  pick(links: readonly LinkSnapshot[], ctx: PickContext): string | undefined;
}

/** The links a policy may choose from: the online and unverified ones, or else the degraded ones; order kept. */
export function eligible(links: readonly LinkSnapshot[]): LinkSnapshot[] {
  const online = links.filter((l) => inService(l.state));
  return online.length > 0 ? online : links.filter((l) => l.state === 'degraded');
}

/** Online, or unverified (in service until the probes can tell): what policies prefer. */
export function inService(state: LinkState): boolean {
  return state === 'online' || state === 'unverified';
}
