/**
 * Timers, injected like the clock, so the health monitor's schedule can be
 * driven by tests without waiting: `systemTimers` wraps Node's timers,
 * `FakeTimers` fires callbacks in due order as a FakeClock is advanced.
 *
 * FakeTimers guarantees: callbacks run in order of due time (ties: order of
 * creation), the clock reads each callback's due time while it runs, and the
 * promise jobs a callback starts are settled before the next callback fires,
 * so async code driven by timers behaves as it would in real time.
 */
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import type { FakeClock } from '../util/clock.js';

/** An opaque handle for clearTimeout. */
export type TimerHandle = object;

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface FakeTimer {
  due: number;
  seq: number;
  fn: () => void;
}

export class FakeTimers implements Timers {
  private readonly timers = new Set<FakeTimer>();
  private seq = 0;

  constructor(readonly clock: FakeClock) {}

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: FakeTimer = { due: this.clock.now() + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.add(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as FakeTimer);
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves the clock forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const until = this.clock.now() + ms;
    await settle();
    for (;;) {
      const next = this.earliest();
      if (!next || next.due > until) break;
      this.timers.delete(next);
      if (next.due > this.clock.now()) this.clock.advance(next.due - this.clock.now());
      next.fn();
      await settle();
    }
    if (until > this.clock.now()) this.clock.advance(until - this.clock.now());
    await settle();
  }

  /**
   * Fires timers one due time at a time until `done()` holds; returns the clock
   * time then (exact, since fake-timed code changes only when a timer fires).
   * Throws when nothing is due within `maxMs`, so a test waiting for something
   * that never happens fails instead of looping.
   */
  async advanceUntil(done: () => boolean, maxMs: number): Promise<number> {
    const limit = this.clock.now() + maxMs;
    await settle();
    while (!done()) {
      const next = this.earliest();
      if (!next || next.due > limit) throw new Error(`condition not met within ${maxMs} ms of fake time`);
      await this.advance(next.due - this.clock.now());
    }
    return this.clock.now();
  }

  private earliest(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.timers) {
      if (!best || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    }
    return best;
  }
}

/** Lets every pending promise job run: a macrotask boundary drains the microtask queue. */
async function settle(): Promise<void> {
  await nextMacrotask();
}
