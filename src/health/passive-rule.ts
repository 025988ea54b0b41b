/**
 * The passive rule: real connects, not probes, take a link out when they time
 * out (or find the network unreachable) through it while other links connect.
 * Pure: the monitor keeps the counters and the clock; this file decides.
 *
 * A link is taken offline when its last `failThreshold` (default 3) connect
 * failures in a row were timeouts or unreachables, with no successful connect
 * through it in between, and another link connected successfully within the
 * last `windowMs` (default 30 s). The second condition is what keeps a dead
 * destination from taking links out: it times out through every link, and the
 * rule wants proof that connections work elsewhere right now. Refusals never
 * count (the destination answered), nor do other errors.
 *
 * Coming back: see monitor.ts ("learned targets"): a link taken out this way
 * is probed, besides the configured targets, with TCP connects to destinations
 * that other links reached lately, and R successes bring it back.
 */
import type { ConnectFailureKind } from './state-machine.js';
import { systemCode, LinkmuxError } from '../util/errors.js';

export interface PassiveRuleOptions {
  /** Consecutive timed-out/unreachable connects through one link. Default 3. */
  failThreshold: number;
  /** How recent another link's successful connect must be, ms. Default 30 000. */
  windowMs: number;
}

export const DEFAULT_PASSIVE_RULE: Readonly<PassiveRuleOptions> = Object.freeze({
  failThreshold: 3,
  windowMs: 30_000,
});

export interface ConnectView {
  id: string;
  /** Consecutive timeout/unreachable connect failures, reset by a successful connect. */
  connectFailStreak: number;
  /** Clock time of the last successful connect through the link. */
  lastConnectOkAt?: number;
}

/** The offline reason when the rule takes `linkId` out, else undefined. */
export function passiveVerdict(
  links: readonly ConnectView[],
  linkId: string,
  now: number,
  opts: Readonly<PassiveRuleOptions> = DEFAULT_PASSIVE_RULE,
): string | undefined {
  const me = links.find((l) => l.id === linkId);
  const need = Math.max(1, opts.failThreshold);
  if (!me || me.connectFailStreak < need) return undefined;
  const witness = links
    .filter(
      (l) => l.id !== linkId && l.lastConnectOkAt !== undefined && now - l.lastConnectOkAt <= opts.windowMs,
    )
    .sort((a, b) => (b.lastConnectOkAt ?? 0) - (a.lastConnectOkAt ?? 0))[0];
  if (!witness) return undefined;
  const ago = Math.round((now - (witness.lastConnectOkAt ?? now)) / 1000);
  return (
    `${me.connectFailStreak} connects in a row timed out or found no route through this link ` +
    `while ${witness.id} connected ${ago} s ago`
  );
}

/** Which failures count: timeouts and unreachables blame the path; the rest says little. */
export function connectFailureKind(err: unknown): ConnectFailureKind {
  if (err instanceof LinkmuxError && err.code === 'LINKMUX_ERR_TIMEOUT') return 'timeout';
  if (err instanceof LinkmuxError && err.code === 'LINKMUX_ERR_UNREACHABLE') return 'unreachable';
  const code = systemCode(err instanceof LinkmuxError ? err.cause : err) ?? systemCode(err);
  if (code === 'ETIMEDOUT') return 'timeout';
  if (code === 'ENETUNREACH' || code === 'EHOSTUNREACH') return 'unreachable';
  return 'other';
}
