/**
 * Traffic as evidence that a link works, for the health monitor. A link whose
 * sockets (or, for the gateway, whose interface) keep receiving bytes is
 * carrying traffic now; a probe round would prove less, at the cost of a
 * connect through the link.
 *
 * Between rounds the monitor looks at the counter every half interval
 * (`lookAt`): bytes that arrived since the previous look prove the link was
 * alive at the start of that half interval at the latest, so the next round is
 * due one interval after that point. While traffic flows no round is due; once
 * it stops, the round comes at most one interval after the last byte, the same
 * as a round that just succeeded: the detection bound does not change.
 *
 * Pure decisions (`lookAt`, `enoughBytes`) apart from the counter reads, which
 * never throw.
 */
import type { Link } from '../links/link.js';

/** Where received bytes are counted, and how many make traffic in a window (default 1). */
export interface TrafficSource {
  bytesIn: (link: Link) => number | undefined;
  min?: (windowMs: number) => number;
}

/** The link's own sockets' received bytes. */
export const socketTraffic: TrafficSource = {
  bytesIn: (link) => link.receivedBytes?.() ?? link.stats().bytesIn,
};

/** The counter, or undefined when reading it fails (a link being torn down, a device gone). */
export function readBytesIn(source: TrafficSource, link: Link): number | undefined {
  try {
    return source.bytesIn(link);
  } catch {
    return undefined;
  }
}

/** Bytes that must arrive within `windowMs` to count as traffic (at least 1). */
export function enoughBytes(source: TrafficSource, windowMs: number): number {
  return Math.max(1, source.min?.(windowMs) ?? 1);
}

/** True when the counter moved by at least `enough` (both reads known). */
export function grew(before: number | undefined, after: number | undefined, enough: number): boolean {
  return before !== undefined && after !== undefined && after - before >= enough;
}

export interface Look {
  now: number;
  intervalMs: number;
  /** The latest time the link is known to have worked (a round's start, or traffic). */
  provenAt: number;
  /** Traffic arrived since the previous look (at most half an interval ago). */
  traffic: boolean;
}

/** One look between rounds: the new proof time, whether a round is due now, and else when to look next. */
export function lookAt(look: Look): { provenAt: number; roundNow: boolean; nextAt: number } {
  const half = look.intervalMs / 2;
  const provenAt = look.traffic ? Math.max(look.provenAt, look.now - half) : look.provenAt;
  const due = provenAt + look.intervalMs;
  return { provenAt, roundNow: look.now >= due, nextAt: Math.min(due, look.now + half) };
}
