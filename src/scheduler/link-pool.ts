/**
 * The daemon's set of links and what is known about each: measured rates
 * (sampled from the links' byte counters once a second, no per-chunk work),
 * learned capacity, and the health state supplied by the health monitor.
 * `snapshot()` is what the scheduler's pure policies look at.
 */
import type { Link } from '../links/link.js';
import type { LinkSnapshot } from './snapshot.js';
import { CapacityEstimator } from './capacity.js';
import type { LinkState } from '../links/link-state.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';

interface Sample {
  at: number;
  bytesIn: number;
  bytesOut: number;
}

interface Entry {
  link: Link;
  capacity: CapacityEstimator;
  last: Sample;
  rateIn: number;
  rateOut: number;
  weight: number;
}

export interface LinkPoolOptions {
  clock?: Clock;
  /** Health state of a link; every link is online without a monitor. */
  stateOf?: (id: string) => LinkState;
  weights?: Record<string, number>;
  sampleIntervalMs?: number;
}

export class LinkPool {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly stateOf: (id: string) => LinkState;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    links: readonly Link[],
    private readonly opts: LinkPoolOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.stateOf = opts.stateOf ?? (() => 'online');
    for (const link of links) {
      const s = link.stats();
      this.entries.set(link.id, {
        link,
        capacity: new CapacityEstimator(),
        last: { at: this.clock.now(), bytesIn: s.bytesIn, bytesOut: s.bytesOut },
        rateIn: 0,
        rateOut: 0,
        weight: opts.weights?.[link.id] ?? 1,
      });
    }
  }

  get links(): Link[] {
    return [...this.entries.values()].map((e) => e.link);
  }

  get(id: string): Link | undefined {
    return this.entries.get(id)?.link;
  }

  start(): void {
    this.timer ??= setInterval(() => this.sample(), this.opts.sampleIntervalMs ?? 1_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads every link's counters once; rates are bytes/s since the previous sample. */
  sample(): void {
    const now = this.clock.now();
    for (const e of this.entries.values()) {
      const s = e.link.stats();
      const dt = (now - e.last.at) / 1000;
      if (dt <= 0) continue;
      e.rateIn = Math.max(0, (s.bytesIn - e.last.bytesIn) / dt);
      e.rateOut = Math.max(0, (s.bytesOut - e.last.bytesOut) / dt);
      e.last = { at: now, bytesIn: s.bytesIn, bytesOut: s.bytesOut };
      e.capacity.observe(e.rateIn + e.rateOut, now);
    }
  }

  rates(id: string): { rateIn: number; rateOut: number; capacity: number | undefined } {
    const e = this.entries.get(id);
    return { rateIn: e?.rateIn ?? 0, rateOut: e?.rateOut ?? 0, capacity: e?.capacity.capacity };
  }

  /**
   * What the policies see. `activeOf` counts a link's connections; the default
   * (open sockets) walks the link's stats, so the dialer passes its own O(1)-ish count.
   */
  snapshot(
    activeOf: (id: string) => number = (id) => this.get(id)?.stats().activeConnections ?? 0,
  ): LinkSnapshot[] {
    return [...this.entries.values()].map((e) => ({
      id: e.link.id,
      state: this.stateOf(e.link.id),
      capacity: e.capacity.capacity,
      rate: e.rateIn + e.rateOut,
      active: activeOf(e.link.id),
      weight: e.weight,
    }));
  }
}
