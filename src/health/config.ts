/**
 * Health-check settings: types and defaults only (the daemon's zod schema in
 * src/config/schema.ts takes its defaults from here, so there is one truth).
 * Every field states its unit and default.
 *
 * Detection bound: the monitor (src/health/monitor.ts) re-probes at once after
 * a failed round ("fast re-probe"), so a link that silently drops its traffic is
 * offline at most max(interval, timeout) + failThreshold × timeout after the
 * break: 1 s + 3 × 0.5 s = 2.5 s with the defaults, inside the 3 s the proxy
 * promises (`detectionBoundMs` in monitor.ts). That is why the default timeout is
 * 500 ms: with 1 s it would be 4 s.
 * Passive signals (connect failures, stalls) mark the link degraded sooner,
 * which already moves new connections away while the probes confirm.
 *
 * Slow probes: slowRttMs (500) is not below the timeout (500), so by default a
 * probe is never "slow" and only failures move a link. On purpose: a link busy
 * with our own downloads answers probes slowly (its queue), and marking it
 * degraded would push traffic off exactly the links doing the work. Set
 * slowRttMs below timeoutMs to turn the check on.
 */
import type { HealthThresholds } from './state-machine.js';
import { DEFAULT_THRESHOLDS } from './state-machine.js';

/** Where a probe goes, forced out of the link under test. */
export type ProbeTarget =
  /** A TCP connect to host:port; success = the handshake completed. Use IP literals to keep DNS out of it. */
  | { kind: 'tcp'; host: string; port: number }
  /** An HTTP GET of url; success = a response arrived before the timeout. */
  | { kind: 'http'; url: string };

/** failThreshold (default 3), riseThreshold (default 2) and slowRttMs (default 500) come from HealthThresholds. */
export interface HealthConfig extends HealthThresholds {
  /** Time between two probes of one link, in ms. Default 1000. */
  intervalMs: number;
  /**
   * A probe not answered within this many ms counts as failed. Default 500: a TCP
   * handshake takes one RTT, and the detection bound grows by failThreshold × this.
   * Raise it for links slower than that at rest (satellite).
   */
  timeoutMs: number;
  /**
   * Probe targets. A probe round of a link succeeds when any target answers, so one
   * target being down does not take every link offline. Default: TCP 1.1.1.1:443
   * and 8.8.8.8:443 (two operators; IP addresses, so no DNS is needed).
   */
  targets: readonly ProbeTarget[];
}

export const DEFAULT_HEALTH_CONFIG: Readonly<HealthConfig> = Object.freeze({
  intervalMs: 1_000,
  timeoutMs: 500,
  ...DEFAULT_THRESHOLDS,
  targets: Object.freeze([
    { kind: 'tcp', host: '1.1.1.1', port: 443 },
    { kind: 'tcp', host: '8.8.8.8', port: 443 },
  ] as const),
});

/** The defaults overlaid with whatever the caller set. */
export function withHealthDefaults(partial: Partial<HealthConfig> = {}): HealthConfig {
  return { ...DEFAULT_HEALTH_CONFIG, ...partial };
}
