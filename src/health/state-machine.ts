/**
 * The health state machine of one link: probe results and passive signals in,
 * online / degraded / unverified / offline out, with typed `state-changed` events. Pure: no
 * timers, no sockets; the only outside input is the injected clock that stamps
 * events. `step` is the transition function, `LinkHealth` keeps one link's status.
 *
 * The rules (F = failThreshold, R = riseThreshold):
 * - offline: F consecutive probe failures, from any state. Only active probes
 *   count: a passive connect failure may be the destination's fault (a
 *   dead server times out on every link), and counting those would take every
 *   link offline at once.
 * - degraded ("use only if nothing better"): an online link goes degraded on
 *   - one probe failure (fewer than F in a row): an early warning, so new
 *     connections leave a link that is about to go offline 2 s before it does;
 *   - one slow probe (success with RTT > slowRttMs): the link works but badly;
 *   - a passive signal (a connect failure through the link).
 *   Degraded links still serve when no online link exists, and open connections
 *   are never touched, so a wrong "degraded" costs little.
 * - online again: R consecutive fast probe successes. A slow success, a failure or
 *   a passive signal restarts the count.
 * - leaving offline (hysteresis): R consecutive successes, fast or slow; the link
 *   comes back online if those R were all fast, degraded otherwise. A single
 *   success never re-admits an offline link when R >= 2. Passive signals are
 *   ignored while offline: they come from connections opened before the fall.
 * - unverified ("the probes, not the link, are suspect"): F consecutive probe
 *   failures while the monitor judges the *targets* suspect (every link fails
 *   at once; see suspicion.ts) — the input carries `suspect` with the reason.
 *   Unverified links stay in service like online ones. From unverified, a
 *   failure without `suspect` means some other link reaches the targets now, so
 *   the ordinary rules apply again (offline at F in a row); R fast successes
 *   make it online. An offline link whose probes keep failing moves to
 *   unverified when the targets become suspect, unless it was taken out by its
 *   connects (below): that verdict does not rest on the probes.
 * - offline by connects: `connects-failing` (the monitor's passive rule, see
 *   passive-rule.ts: real connects time out through this link while other
 *   links connect) takes a link offline from any state. It leaves offline by
 *   the ordinary R probe successes (the monitor adds learned targets to its
 *   probes so it can).
 * Thresholds below 1 are treated as 1.
 */
import type { Clock } from '../util/clock.js';

import type { LinkState } from '../links/link-state.js';
export { LINK_STATES, type LinkState } from '../links/link-state.js';

/** Why a connect failed, as far as it blames the link: only timeouts and unreachables feed the passive rule. */
export type ConnectFailureKind = 'timeout' | 'unreachable' | 'other';

export type HealthInput =
  /** An active probe through the link answered, after rttMs. */
  | { type: 'probe-ok'; rttMs: number }
  /**
   * An active probe failed (timeout, refused, unreachable …). `suspect`, set by
   * the monitor when every link fails its probes at once, says why the targets
   * rather than this link are to blame: the link goes unverified, not offline.
   */
  | { type: 'probe-failed'; reason: string; suspect?: string }
  /** Passive: a connection through the link failed for a reason that blames the link. */
  | { type: 'connect-failed'; reason: string; kind?: ConnectFailureKind }
  /** Passive: a connection through the link succeeded; `dst` is the IP address and port it reached. */
  | { type: 'connect-ok'; dst?: { host: string; port: number } }
  /** Passive verdict of the monitor: real connects time out through this link while others connect. */
  | { type: 'connects-failing'; reason: string };

export interface HealthThresholds {
  /** Consecutive probe failures that make a link offline. Default 3. */
  failThreshold: number;
  /** Consecutive probe successes that bring a link back (online or out of offline). Default 2. */
  riseThreshold: number;
  /** A successful probe slower than this many ms makes an online link degraded. Default 500. */
  slowRttMs: number;
}

export const DEFAULT_THRESHOLDS: Readonly<HealthThresholds> = Object.freeze({
  failThreshold: 3,
  riseThreshold: 2,
  slowRttMs: 500,
});

export interface HealthStatus {
  state: LinkState;
  /** Consecutive probe failures. */
  failStreak: number;
  /** Consecutive probe successes, fast or slow (what leaving offline needs). */
  successStreak: number;
  /** Consecutive fast probe successes with no passive signal between them (what going online needs). */
  okStreak: number;
  lastRttMs?: number;
  lastFailure?: string;
  /** Set while offline because of `connects-failing`: suspect probes cannot bring it back. */
  offlineByConnects?: boolean;
}

export interface StateChangedEvent {
  type: 'state-changed';
  link: string;
  from: LinkState;
  to: LinkState;
  /** One line for humans and logs: "3 consecutive probe failures (last: timeout)". */
  reason: string;
  /** Clock time of the change, in ms (the injected clock's, monotonic — not wall time). */
  at: number;
}

/** Every event the health machinery emits (one kind today; a union so more can join). */
export type HealthEvent = StateChangedEvent;

export function initialStatus(state: LinkState = 'online'): HealthStatus {
  return { state, failStreak: 0, successStreak: 0, okStreak: 0 };
}

/** One transition: the next status, and the change of state with its reason if there is one. */
export function step(
  status: Readonly<HealthStatus>,
  input: HealthInput,
  thresholds: Readonly<HealthThresholds> = DEFAULT_THRESHOLDS,
): { status: HealthStatus; change?: { to: LinkState; reason: string } } {
  const fail = Math.max(1, thresholds.failThreshold);
  const rise = Math.max(1, thresholds.riseThreshold);
  const s: HealthStatus = { ...status };
  const move = (to: LinkState, reason: string) => ({ status: { ...s, state: to }, change: { to, reason } });

  switch (input.type) {
    case 'probe-ok': {
      const slow = input.rttMs > thresholds.slowRttMs;
      s.failStreak = 0;
      s.successStreak += 1;
      s.okStreak = slow ? 0 : s.okStreak + 1;
      s.lastRttMs = input.rttMs;
      const rtt = `RTT ${Math.round(input.rttMs)} ms`;
      if (s.state === 'offline') {
        if (s.successStreak < rise) return { status: s };
        delete s.offlineByConnects;
        return s.okStreak >= rise
          ? move('online', `${s.successStreak} consecutive probe successes`)
          : move(
              'degraded',
              `${s.successStreak} consecutive probe successes, last ${rtt} > ${thresholds.slowRttMs} ms`,
            );
      }
      if (s.state === 'online' && slow)
        return move('degraded', `slow probe: ${rtt} > ${thresholds.slowRttMs} ms`);
      if ((s.state === 'degraded' || s.state === 'unverified') && s.okStreak >= rise) {
        return move('online', `${s.okStreak} consecutive probes answered within ${thresholds.slowRttMs} ms`);
      }
      return { status: s };
    }
    case 'probe-failed': {
      s.failStreak += 1;
      s.successStreak = 0;
      s.okStreak = 0;
      s.lastFailure = input.reason;
      if (s.failStreak >= fail) {
        if (input.suspect === undefined) {
          if (s.state === 'offline') return { status: s };
          return move('offline', `${s.failStreak} consecutive probe failures (last: ${input.reason})`);
        }
        if (s.state === 'unverified' || (s.state === 'offline' && s.offlineByConnects)) return { status: s };
        return move('unverified', input.suspect);
      }
      if (s.state === 'online' || (s.state === 'unverified' && input.suspect === undefined)) {
        return move('degraded', `probe failed (${s.failStreak} of ${fail} before offline): ${input.reason}`);
      }
      return { status: s };
    }
    case 'connect-ok':
      return { status: s };
    case 'connects-failing': {
      s.lastFailure = input.reason;
      s.offlineByConnects = true;
      if (s.state === 'offline') return { status: s };
      return move('offline', input.reason);
    }
    case 'connect-failed': {
      if (s.state === 'offline') return { status: s };
      s.okStreak = 0;
      s.lastFailure = input.reason;
      if (s.state === 'online') return move('degraded', `connect failed: ${input.reason}`);
      return { status: s };
    }
  }
}

export interface LinkHealthOptions {
  clock: Clock;
  thresholds?: Partial<HealthThresholds>;
  /**
   * State before any evidence. Default 'online': a link is trusted until proven
   * otherwise, so the daemon serves at once; connect failover covers a link that
   * is dead from the start until its probes take it offline.
   */
  initial?: LinkState;
  /** Called with every event, after the status has changed. */
  onEvent?: (event: HealthEvent) => void;
}

/** One link's health: feed it inputs, read its state, receive events. */
export class LinkHealth {
  private current: HealthStatus;
  private enteredAt: number;
  private readonly thresholds: HealthThresholds;

  constructor(
    readonly link: string,
    private readonly opts: LinkHealthOptions,
  ) {
    this.thresholds = { ...DEFAULT_THRESHOLDS, ...opts.thresholds };
    this.current = initialStatus(opts.initial);
    this.enteredAt = opts.clock.now();
  }

  get state(): LinkState {
    return this.current.state;
  }

  /** The counters and last observations, plus when the current state began (clock ms). */
  status(): Readonly<HealthStatus> & { since: number } {
    return { ...this.current, since: this.enteredAt };
  }

  /** Applies one input; returns the event when the state changed. */
  apply(input: HealthInput): StateChangedEvent | undefined {
    const from = this.current.state;
    const { status, change } = step(this.current, input, this.thresholds);
    this.current = status;
    if (!change) return undefined;
    const at = this.opts.clock.now();
    this.enteredAt = at;
    const event: StateChangedEvent = {
      type: 'state-changed',
      link: this.link,
      from,
      to: change.to,
      reason: change.reason,
      at,
    };
    this.opts.onEvent?.(event);
    return event;
  }
}
