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
 * Busy links (`trafficCountsAsAlive`, on by default): an online link that
 * received bytes since the last look (every I/2) is working, and no round is
 * due while that goes on (traffic-evidence.ts; the detection bound stays).
 * When a round fails but bytes arrived through the link while it ran, the
 * round proves nothing — the probe most likely queued behind the link's own
 * downloads (bufferbloat), and a blackholed link receives nothing. Such a
 * round is not counted, and the looks go on from its start. It can only delay
 * detection by the time packets already queued when the link broke take to
 * arrive. The bytes are the link's own sockets' by default; the gateway,
 * which forwards rather than relays, counts the interface's (`traffic`), above
 * a floor that ARP and broadcast chatter on a dead uplink's segment stay under.
 *
 * Re-admission is not hurried: rounds on an offline link stay I apart, so the
 * R successes that bring it back span (R − 1) × I of good behaviour.
 *
 * Suspect targets (suspicion.ts): when a link's round fails and every monitored
 * link's latest round failed too, with one at the offline threshold, the
 * failure is fed as "suspect" and the link goes unverified (in service)
 * instead of offline. One warning is logged per episode, not per round; the
 * first successful round of any link ends the episode (logged once), and
 * from then on failing links go offline by the ordinary rules, each at its own
 * next failed round.
 *
 * Passive rule (passive-rule.ts): connect successes and failures reported by
 * the dialer are counted per link; a link whose connects keep timing out while
 * another link connected lately goes offline. Learned targets bring it back:
 * the destinations (IP, port) of the last few successful connects through
 * other links are added, as TCP targets, to the probe rounds of a link taken
 * out that way, so it returns after R successful rounds even when the
 * configured targets are blocked (or none are configured). Its rounds run
 * every interval while it is out.
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
import type { HealthConfig, ProbeTarget } from './config.js';
import { formatProbeTarget } from './probe-target.js';
import { DEFAULT_PASSIVE_RULE, passiveVerdict, type PassiveRuleOptions } from './passive-rule.js';
import { suspectReason, targetsSuspect } from './suspicion.js';
import type { Prober, RoundResult } from './prober.js';
import { defaultProber, probeRound } from './prober.js';
import type { HealthInput, LinkState, StateChangedEvent } from './state-machine.js';
import { LinkHealth } from './state-machine.js';
import type { TimerHandle, Timers } from './timers.js';
import { systemTimers } from './timers.js';
import type { LinkHealthStatus } from './link-health-status.js';
import { enoughBytes, grew, lookAt, readBytesIn, socketTraffic } from './traffic-evidence.js';
import type { TrafficSource } from './traffic-evidence.js';

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
  /**
   * The received bytes that count as traffic for `trafficCountsAsAlive`, and
   * how many make traffic in a window (`min`, default 1). Default: the link's
   * own sockets (`socketTraffic`).
   */
  traffic?: TrafficSource;
  /** State of a link before any evidence. Default 'online' (see LinkHealthOptions.initial). */
  initial?: LinkState;
  /** The passive rule's thresholds (default: 3 connects, 30 s window). */
  passive?: Partial<PassiveRuleOptions>;
}

/** How many learned destinations are kept and probed. */
const LEARNED_TARGETS = 4;

interface Entry {
  link: Link;
  health: LinkHealth;
  timer?: TimerHandle;
  /** Clock time the timer fires. */
  dueAt?: number;
  round?: AbortController;
  lastRoundStart?: number;
  lastFailure?: { reason: string; at: number };
  /** The reason of the last state change. */
  reason?: string;
  /** A round has been counted (its verdict fed to the state machine). */
  probed: boolean;
  /** Consecutive connects that timed out or found no route (passive rule). */
  connectFailStreak: number;
  /** Between rounds of an online link: when it last proved to work, and its counter at the last look. */
  provenAt?: number;
  lookBytes?: number | undefined;
  lastConnectOkAt?: number;
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
  private readonly traffic: TrafficSource;
  private readonly passive: PassiveRuleOptions;
  private running = false;
  /** An episode of suspect targets is going on (its warning was logged). */
  private suspecting = false;
  /** The hint for a lone link failing its probes was logged. */
  private loneHinted = false;
  /** Destinations of recent successful connects, newest first (learned targets). */
  private learned: Array<{ target: ProbeTarget & { kind: 'tcp' }; link: string }> = [];

  constructor(private readonly opts: HealthMonitorOptions) {
    this.config = opts.config;
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? systemTimers;
    this.logger = opts.logger ?? silentLogger;
    this.prober = opts.probe ?? defaultProber;
    this.trafficCountsAsAlive = opts.trafficCountsAsAlive ?? true;
    this.traffic = opts.traffic ?? socketTraffic;
    this.passive = { ...DEFAULT_PASSIVE_RULE, ...opts.passive };
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
      onEvent: (e) => {
        const current = this.entries.get(e.link);
        if (current) current.reason = e.reason;
        this.emit(e);
      },
    });
    const entry: Entry = { link, health, probed: false, connectFailStreak: 0 };
    this.entries.set(link.id, entry);
    if (this.probing()) this.schedule(entry, 0);
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
      ...(entry.reason !== undefined ? { reason: entry.reason } : {}),
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
    if (input.type === 'connect-ok') return this.connectOk(entry, input.dst);
    this.apply(entry, input);
    if (input.type === 'connect-failed' && (input.kind === 'timeout' || input.kind === 'unreachable')) {
      entry.connectFailStreak += 1;
      this.judgeConnects(entry);
    }
    if (input.type === 'connect-failed' && entry.health.state !== 'offline') {
      this.pullForward(entry);
    }
  }

  private connectOk(entry: Entry, dst: { host: string; port: number } | undefined): void {
    entry.connectFailStreak = 0;
    entry.lastConnectOkAt = this.clock.now();
    if (!dst) return;
    // Most connects go where the last one went, through the same link: nothing to reorder (and
    // no strings to build on every connect).
    const newest = this.learned[0];
    if (newest?.link === entry.link.id && newest.target.host === dst.host && newest.target.port === dst.port)
      return;
    const target = { kind: 'tcp' as const, host: dst.host, port: dst.port };
    const key = formatProbeTarget(target);
    this.learned = [
      { target, link: entry.link.id },
      ...this.learned.filter((l) => formatProbeTarget(l.target) !== key),
    ].slice(0, LEARNED_TARGETS * 2);
  }

  /** The passive rule; a link it takes out is probed with learned targets from now on. */
  private judgeConnects(entry: Entry): void {
    if (entry.health.state === 'offline') return;
    const views = [...this.entries.values()].map((e) => ({
      id: e.link.id,
      connectFailStreak: e.connectFailStreak,
      ...(e.lastConnectOkAt !== undefined ? { lastConnectOkAt: e.lastConnectOkAt } : {}),
    }));
    const reason = passiveVerdict(views, entry.link.id, this.clock.now(), this.passive);
    if (reason === undefined) return;
    entry.connectFailStreak = 0;
    this.apply(entry, { type: 'connects-failing', reason });
    // Without configured targets nothing probes this link yet: start its rounds.
    if (this.running && !entry.round && entry.dueAt === undefined && this.targetsFor(entry).length > 0) {
      this.schedule(entry, this.config.intervalMs);
    }
  }

  /** The configured targets, plus learned ones for a link its connects took out. */
  private targetsFor(entry: Entry): readonly ProbeTarget[] {
    if (!entry.health.status().offlineByConnects) return this.config.targets;
    const learned = this.learned
      .filter((l) => l.link !== entry.link.id)
      .slice(0, LEARNED_TARGETS)
      .map((l) => l.target);
    return [...this.config.targets, ...learned];
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
    if ('reason' in input) entry.lastFailure = { reason: input.reason, at: this.clock.now() };
    entry.health.apply(input);
  }

  private emit(event: StateChangedEvent): void {
    const line = `link ${event.link} ${event.to}: ${event.reason}`;
    // The episode's one warning already says what to do; each link's move into it is news, not a warning.
    if (event.to === 'unverified')
      this.logger.info(`link ${event.link} unverified: kept in service, its probes prove nothing now`);
    else if (event.to === 'online') this.logger.info(line);
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
    const bytesBefore = this.trafficCountsAsAlive ? readBytesIn(this.traffic, entry.link) : undefined;
    let result: RoundResult;
    const targets = this.targetsFor(entry);
    if (targets.length === 0) {
      // Only a link taken out by its connects is probed without configured targets, and nothing is learned yet.
      if (entry.round === round) entry.round = undefined;
      if (entry.health.status().offlineByConnects) this.schedule(entry, this.config.intervalMs);
      return;
    }
    try {
      result = await probeRound(entry.link, targets, {
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
      entry.probed = true;
      this.apply(entry, { type: 'probe-ok', rttMs: result.rttMs });
      if (this.suspecting) {
        this.suspecting = false;
        this.logger.info(
          `health: the probe targets answer again (${result.target} through ${entry.link.id}); ` +
            'links whose probes still fail go offline',
        );
      }
      this.logger.debug(
        `link ${entry.link.id}: probe ok via ${result.target} in ${Math.round(result.rttMs)} ms`,
      );
      this.scheduleLook(entry, start);
      return;
    }
    if (result.local) {
      // The process ran out of descriptors: a process condition, not a verdict on the link.
      this.logger.debug(`link ${entry.link.id}: probe not run (${result.reason}): not counted`);
      this.schedule(entry, start + intervalMs - this.clock.now());
      return;
    }
    const bytesAfter = bytesBefore === undefined ? undefined : readBytesIn(this.traffic, entry.link);
    if (grew(bytesBefore, bytesAfter, enoughBytes(this.traffic, this.clock.now() - start))) {
      this.logger.debug(
        `link ${entry.link.id}: probe failed (${result.reason}) but ${(bytesAfter ?? 0) - (bytesBefore ?? 0)} bytes ` +
          'arrived meanwhile: not counted',
      );
      this.scheduleLook(entry, start);
      return;
    }
    entry.probed = true;
    const suspect = this.suspectAfterFailure(entry);
    this.apply(entry, { type: 'probe-failed', reason: result.reason, ...(suspect ? { suspect } : {}) });
    this.logger.debug(`link ${entry.link.id}: probe failed: ${result.reason}`);
    this.hintLoneLink(entry);
    const settled = entry.health.state === 'offline' || entry.health.state === 'unverified';
    this.schedule(entry, start + (settled ? intervalMs : timeoutMs) - this.clock.now());
  }

  /**
   * Whether the targets are suspect once this entry's failed round is counted
   * (suspicion.ts): the reason to feed with the failure, else undefined. Logs
   * the episode's one warning.
   */
  private suspectAfterFailure(entry: Entry): string | undefined {
    const views = [...this.entries.values()].map((e) => ({
      failStreak: e.health.status().failStreak + (e === entry ? 1 : 0),
      probed: e.probed,
    }));
    if (!targetsSuspect(views, this.config.failThreshold)) return undefined;
    const reason = suspectReason(this.config.targets.map(formatProbeTarget));
    if (!this.suspecting) {
      this.suspecting = true;
      this.logger.warn(`health: ${reason}. Links stay in service as "unverified" until a probe answers.`);
    }
    return reason;
  }

  /** Once: a lone link cannot tell blocked targets from a dead link (suspicion.ts), so say what to check. */
  private hintLoneLink(entry: Entry): void {
    if (this.loneHinted || this.entries.size !== 1 || entry.health.state !== 'offline') return;
    this.loneHinted = true;
    this.logger.warn(
      `health: ${entry.link.id} is the only link and fails its probes to ` +
        `${this.config.targets.map(formatProbeTarget).join(', ')}; if this network blocks them, ` +
        'set health.targets to hosts reachable from here',
    );
  }

  /**
   * After a round that proved the link (at `provenAt`): looks every half
   * interval, and the next round only once no traffic came for an interval
   * (traffic-evidence.ts). Without `trafficCountsAsAlive`, the round one interval on.
   */
  private scheduleLook(entry: Entry, provenAt: number): void {
    const now = this.clock.now();
    if (!this.trafficCountsAsAlive) return this.schedule(entry, provenAt + this.config.intervalMs - now);
    entry.provenAt = provenAt;
    entry.lookBytes = readBytesIn(this.traffic, entry.link);
    this.armLook(entry, provenAt + this.config.intervalMs / 2 - now);
  }

  private armLook(entry: Entry, delayMs: number): void {
    if (entry.timer) this.timers.clearTimeout(entry.timer);
    // No dueAt: a passive failure (pullForward) replaces a look with a round at once.
    entry.dueAt = undefined;
    entry.timer = this.timers.setTimeout(
      () => {
        entry.timer = undefined;
        this.look(entry);
      },
      Math.max(0, delayMs),
    );
  }

  private look(entry: Entry): void {
    if (!this.running || this.entries.get(entry.link.id) !== entry) return;
    const now = this.clock.now();
    const { intervalMs } = this.config;
    const bytes = readBytesIn(this.traffic, entry.link);
    const traffic =
      entry.health.state === 'online' &&
      grew(entry.lookBytes, bytes, enoughBytes(this.traffic, intervalMs / 2));
    entry.lookBytes = bytes;
    const next = lookAt({ now, intervalMs, provenAt: entry.provenAt ?? now, traffic });
    entry.provenAt = next.provenAt;
    if (next.roundNow) void this.runRound(entry);
    else this.armLook(entry, next.nextAt - now);
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
