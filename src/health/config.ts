/**
 * Health-check settings: types and defaults only (the zod schema of the daemon's
 * config will wrap these). Every field states its unit and default.
 *
 * Detection bound: a link that stops answering is marked offline at most
 * `(failThreshold - 1) * intervalMs + timeoutMs` after the first missed probe was
 * sent — with the defaults (1 s interval, 1 s timeout, 3 failures) that is 2 s of
 * spacing plus the third probe's 1 s timeout = 3 s. The bound needs
 * `timeoutMs <= intervalMs` (probes then never overlap, so each interval yields
 * one verdict). Counted from the moment the link broke rather than from the first
 * missed probe, add up to one interval (the break may fall just after a probe
 * succeeded); passive signals (connect failures, stalls) mark the link degraded
 * sooner, which already moves new connections away while the probes confirm.
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
  /** A probe not answered within this many ms counts as failed. Default 1000; keep it <= intervalMs. */
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
  timeoutMs: 1_000,
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

/**
 * Longest time, in ms from sending the first missed probe, until a dead link is
 * offline (see the module comment). Infinity when the timeout exceeds the interval,
 * because overlapping probes make the bound depend on the prober's scheduling.
 */
export function worstCaseOfflineMs(
  cfg: Pick<HealthConfig, 'intervalMs' | 'timeoutMs' | 'failThreshold'>,
): number {
  if (cfg.timeoutMs > cfg.intervalMs) return Infinity;
  return (Math.max(1, cfg.failThreshold) - 1) * cfg.intervalMs + cfg.timeoutMs;
}
