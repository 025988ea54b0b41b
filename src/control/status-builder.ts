/**
 * The parts of GET /status that `linkmux up` (daemon/daemon.ts) and `linkmux
 * gateway` (gateway/gateway-daemon.ts) share: the header (version, start,
 * uptime, policy, listeners, connections) and one row per link from its health
 * and its figures. Each daemon supplies what only it knows (a link's figures,
 * its description, the extra sections). Pure: the times are passed in.
 */
import type { LinkHealthStatus } from '../health/link-health-status.js';
import type { LinkState } from '../links/link-state.js';
import { VERSION } from '../version.js';
import type { DaemonStatus, LinkStatus } from './status-types.js';

/** Turns the health monitor's clock times (monotonic ms) into wall-clock ISO strings. */
export type ToIso = (clockMs: number) => string;

/** `now` on the monotonic clock and `wall` (Date.now()) taken at the same moment. */
export function clockToIso(now: number, wall: number): ToIso {
  return (t) => new Date(wall - (now - t)).toISOString();
}

/** What a daemon measured on one link; the rest of its row comes from its health. */
export interface LinkFigures {
  rateIn: number;
  rateOut: number;
  capacity?: number;
  activeConnections: number;
  bytesIn: number;
  bytesOut: number;
  connectFailures: number;
}

/** One link's row: `state` overrides the health state when the daemon knows better. */
export function linkStatusRow(
  link: { id: string; description: string; state?: LinkState },
  h: LinkHealthStatus,
  f: LinkFigures,
  toIso: ToIso,
): LinkStatus {
  return {
    id: link.id,
    description: link.description,
    state: link.state ?? h.state,
    ...(h.reason !== undefined ? { stateReason: h.reason } : {}),
    since: toIso(h.since),
    ...(h.lastRttMs !== undefined ? { rttMs: h.lastRttMs } : {}),
    rateIn: f.rateIn,
    rateOut: f.rateOut,
    ...(f.capacity !== undefined ? { capacity: f.capacity } : {}),
    activeConnections: f.activeConnections,
    bytesIn: f.bytesIn,
    bytesOut: f.bytesOut,
    connectFailures: f.connectFailures,
    ...(h.lastFailure ? { lastFailure: { at: toIso(h.lastFailure.at), reason: h.lastFailure.reason } } : {}),
  };
}

/** The header of a status: who answers, since when, with which policy, where, and its connections. */
export function statusHeader(
  startedAt: Date,
  wall: number,
  head: Pick<DaemonStatus, 'policy' | 'listen' | 'connections'>,
): Pick<DaemonStatus, 'version' | 'startedAt' | 'uptimeSeconds' | 'policy' | 'listen' | 'connections'> {
  return {
    version: VERSION,
    startedAt: startedAt.toISOString(),
    uptimeSeconds: Math.round((wall - startedAt.getTime()) / 1000),
    policy: head.policy,
    listen: head.listen,
    connections: head.connections,
  };
}
