/**
 * The health monitor: active probe rounds through every link on a timer, plus
 * passive signals reported by the front ends, fed into one `LinkHealth` state
 * machine per link. It owns the timing; the state machine owns the rules.
 *
 * Schedule of one link (I = intervalMs, T = timeoutMs, F = failThreshold):
 * - a round starts every I (measured from the previous round's start; a round
 *   that takes longer than I is followed at once, so rounds never overlap);
 * - fast re-probe: after a failed round, while the link is not yet offline,
 *   the next round starts T after the failed one started (at once if it timed
 *   out), like HAProxy's `fastinter`. Spacing by T rather than 0 keeps a burst
 *   of instant refusals from taking a link offline in a few milliseconds;
 * - a passive failure (connect failed, stall) pulls the next round forward to
 *   the same fast spacing, so the probes confirm or clear the hint sooner.
 * Detection bound: a link whose traffic is silently dropped is offline at most
 * max(I, T) + F × T after the break (the round in flight may just have
 * succeeded; then F rounds time out back to back). With I = 1 s, T = 500 ms,
 * F = 3: 1 s + 3 × 0.5 s = 2.5 s. `detectionBoundMs` computes it.
 *
 * Busy links: when a round fails but bytes arrived through the link while it
 * ran (`trafficCountsAsAlive`, on by default), the round proves nothing — the
 * probe most likely queued behind the link's own downloads (bufferbloat), and
 * a blackholed link receives nothing. Such a round is not counted and the next
 * comes after the normal interval. It can only delay detection by the time
 * packets already queued when the link broke take to arrive.
 *
 * Re-admission is not hurried: rounds on an offline link stay I apart, so the
 * R successes that bring it back span (R − 1) × I of good behaviour.
 *
 * Guarantees: one round per link at a time; `stop()` clears every timer and
 * aborts every probe in flight (idempotent), after which no event fires; a
 * throwing event listener is logged, never breaks the schedule.
 */
import type { Link } from '../links/link.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { LinkmuxError, describe } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { silentLogger } from '../util/logger.js';
import type { HealthConfig } from './config.js';
import type { Prober, RoundResult } from './prober.js';
import { defaultProber, probeRound } from './prober.js';
import type { HealthInput, LinkState, StateChangedEvent } from './state-machine.js';
import { LinkHealth } from './state-machine.js';
import type { TimerHandle, Timers } from './timers.js';
import { systemTimers } from './timers.js';

export interface HealthMonitorOptions {
  links: readonly Link[];
  config: HealthConfig;
  clock?: Clock;
  /** Must run on the same time base as `clock` (FakeTimers over a FakeClock in tests). */
  timers?: Timers;
  logger?: Logger;
  onEvent?: (event: StateChangedEvent) => void;
  /** Probes one target through one link (default: real TCP/HTTP probes). */
  probe?: Prober;
  /** A failed round during which the link received bytes is not counted. Default true. */
  trafficCountsAsAlive?: boolean;
  /** State of a link before any evidence. Default 'online' (see LinkHealthOptions.initial). */
  initial?: LinkState;
}

/** What the control API and `linkmux status` show for one link. */
export interface LinkHealthStatus {
  link: string;
  state: LinkState;
  /** When the link entered its state, in clock ms (monotonic, not wall time). */
  since: number;
  /** RTT of the last successful probe round, ms. */
  lastRttMs?: number;
  /** The most recent failure, active or passive. */
  lastFailure?: { reason: string; at: number };
  /** Consecutive failed probe rounds. */
  failStreak: number;
  /** Consecutive successful probe rounds. */
  successStreak: number;
}

interface Entry {
  link: Link;
  health: LinkHealth;
  timer?: TimerHandle;
  /** Clock time the timer fires. */
  dueAt?: number;
  round?: AbortController;
  lastRoundStart?: number;
  lastFailure?: { reason: string; at: number };
}

/** Worst-case ms from the moment a link starts dropping traffic until it is offline. */
export function detectionBoundMs(
  cfg: Pick<HealthConfig, 'intervalMs' | 'timeoutMs' | 'failThreshold'>,
): number {
  return Math.max(cfg.intervalMs, cfg.timeoutMs) + Math.max(1, cfg.failThreshold) * cfg.timeoutMs;
}

export class HealthMonitor {
  private readonly entries = new Map<string, Entry>();
  private readonly config: HealthConfig;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly prober: Prober;
  private readonly trafficCountsAsAlive: boolean;
  private running = false;

  constructor(private readonly opts: HealthMonitorOptions) {
    this.config = opts.config;
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? systemTimers;
    this.logger = opts.logger ?? silentLogger;
    this.prober = opts.probe ?? defaultProber;
    this.trafficCountsAsAlive = opts.trafficCountsAsAlive ?? true;
    for (const link of opts.links) this.add(link);
  }

  /** Starts probing every link (the first round at once). Calling it again does nothing. */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.config.targets.length === 0) {
      this.logger.warn('no health probe targets: links are judged by passive signals only');
    }
    if (!this.probing()) return;
    for (const entry of this.entries.values()) this.schedule(entry, 0);
  }

  /** Clears every timer and aborts every probe in flight. Safe to call twice; start() resumes. */
  stop(): void {
    this.running = false;
    for (const entry of this.entries.values()) this.halt(entry);
  }

  /** Adds a link (e.g. an interface that came up); it is probed at once if the monitor runs. */
  add(link: Link): void {
    if (this.entries.has(link.id)) {
      throw new LinkmuxError('LINKMUX_ERR_USAGE', `link ${link.id} is already monitored`);
    }
    const health = new LinkHealth(link.id, {
      clock: this.clock,
      thresholds: {
        failThreshold: this.config.failThreshold,
        riseThreshold: this.config.riseThreshold,
        slowRttMs: this.config.slowRttMs,
      },
      ...(this.opts.initial ? { initial: this.opts.initial } : {}),
      onEvent: (e) => this.emit(e),
    });
    const entry: Entry = { link, health };
    this.entries.set(link.id, entry);
    if (this.probing()) this.schedule(entry, 0);
  }

  /** Stops probing a link and forgets it (e.g. its interface went away). Unknown ids are ignored. */
  remove(linkId: string): void {
    const entry = this.entries.get(linkId);
    if (!entry) return;
    this.halt(entry);
    this.entries.delete(linkId);
  }

  state(linkId: string): LinkState {
    return this.entry(linkId).health.state;
  }

  status(linkId: string): LinkHealthStatus {
    const entry = this.entry(linkId);
    const s = entry.health.status();
    return {
      link: linkId,
      state: s.state,
      since: s.since,
      ...(s.lastRttMs !== undefined ? { lastRttMs: s.lastRttMs } : {}),
      ...(entry.lastFailure ? { lastFailure: { ...entry.lastFailure } } : {}),
      failStreak: s.failStreak,
      successStreak: s.successStreak,
    };
  }

  /** Every monitored link's status, in the order links were added. */
  statuses(): LinkHealthStatus[] {
    return [...this.entries.keys()].map((id) => this.status(id));
  }

  /**
   * A passive signal from a front end. Ids of links not monitored (e.g. a
   * "direct" route) are ignored, so callers need not filter.
   */
  report(linkId: string, input: HealthInput): void {
    const entry = this.entries.get(linkId);
    if (!entry) return;
    this.apply(entry, input);
    if ((input.type === 'connect-failed' || input.type === 'stall') && entry.health.state !== 'offline') {
      this.pullForward(entry);
    }
  }

  private entry(linkId: string): Entry {
    const entry = this.entries.get(linkId);
    if (!entry) {
      throw new LinkmuxError(
        'LINKMUX_ERR_LINK_UNKNOWN',
        `link ${linkId} is not monitored by the health checker`,
      );
    }
    return entry;
  }

  private apply(entry: Entry, input: HealthInput): void {
    if (input.type !== 'probe-ok') entry.lastFailure = { reason: input.reason, at: this.clock.now() };
    entry.health.apply(input);
  }

  private emit(event: StateChangedEvent): void {
    const line = `link ${event.link} ${event.to}: ${event.reason}`;
    if (event.to === 'online') this.logger.info(line);
    else this.logger.warn(line);
    try {
      this.opts.onEvent?.(event);
    } catch (err) {
      this.logger.error(`health event listener failed: ${describe(err)}`);
    }
  }

  private schedule(entry: Entry, delayMs: number): void {
    if (entry.timer) this.timers.clearTimeout(entry.timer);
    const delay = Math.max(0, delayMs);
    entry.dueAt = this.clock.now() + delay;
    entry.timer = this.timers.setTimeout(() => {
      entry.timer = undefined;
      entry.dueAt = undefined;
      void this.runRound(entry);
    }, delay);
  }

  /** Moves the next round to the fast re-probe spacing, unless a round is running or due sooner. */
  private pullForward(entry: Entry): void {
    if (!this.probing() || entry.round || this.entries.get(entry.link.id) !== entry) return;
    const earliest = (entry.lastRoundStart ?? -Infinity) + this.config.timeoutMs;
    const at = Math.max(this.clock.now(), earliest);
    if (entry.dueAt !== undefined && entry.dueAt <= at) return;
    this.schedule(entry, at - this.clock.now());
  }

  private async runRound(entry: Entry): Promise<void> {
    if (!this.running) return;
    const round = new AbortController();
    entry.round = round;
    const start = this.clock.now();
    entry.lastRoundStart = start;
    const bytesBefore = this.trafficCountsAsAlive ? bytesIn(entry.link) : undefined;
    let result: RoundResult;
    try {
      result = await probeRound(entry.link, this.config.targets, {
        prober: this.prober,
        clock: this.clock,
        timers: this.timers,
        timeoutMs: this.config.timeoutMs,
        signal: round.signal,
      });
    } finally {
      if (entry.round === round) entry.round = undefined;
    }
    // Stopped or removed meanwhile: the verdict belongs to nobody.
    if (round.signal.aborted || !this.running || this.entries.get(entry.link.id) !== entry) return;

    const { intervalMs, timeoutMs } = this.config;
    if (result.ok) {
      this.apply(entry, { type: 'probe-ok', rttMs: result.rttMs });
      this.logger.debug(
        `link ${entry.link.id}: probe ok via ${result.target} in ${Math.round(result.rttMs)} ms`,
      );
      this.schedule(entry, start + intervalMs - this.clock.now());
      return;
    }
    if (result.local) {
      // The process ran out of descriptors: a process condition, not a verdict on the link.
      this.logger.debug(`link ${entry.link.id}: probe not run (${result.reason}): not counted`);
      this.schedule(entry, start + intervalMs - this.clock.now());
      return;
    }
    const bytesAfter = bytesBefore === undefined ? undefined : bytesIn(entry.link);
    if (bytesBefore !== undefined && bytesAfter !== undefined && bytesAfter > bytesBefore) {
      this.logger.debug(
        `link ${entry.link.id}: probe failed (${result.reason}) but ${bytesAfter - bytesBefore} bytes ` +
          'arrived meanwhile: not counted',
      );
      this.schedule(entry, start + intervalMs - this.clock.now());
      return;
    }
    this.apply(entry, { type: 'probe-failed', reason: result.reason });
    this.logger.debug(`link ${entry.link.id}: probe failed: ${result.reason}`);
    const settled = entry.health.state === 'offline';
    this.schedule(entry, start + (settled ? intervalMs : timeoutMs) - this.clock.now());
  }

  /** Active probes run only while started and with at least one target. */
  private probing(): boolean {
    return this.running && this.config.targets.length > 0;
  }

  private halt(entry: Entry): void {
    if (entry.timer) this.timers.clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.dueAt = undefined;
    entry.round?.abort();
    entry.round = undefined;
  }
}

/** The link's received-byte counter, or undefined when reading it fails (a link being torn down). */
function bytesIn(link: Link): number | undefined {
  try {
    return link.stats().bytesIn;
  } catch {
    return undefined;
  }
}
