/**
 * The pause after the process ran out of file descriptors (EMFILE/ENFILE):
 * 100 ms after the first failure, doubling with each failure that comes while
 * the condition lasts, up to 1 s; a quiet spell (no failure for 5 s) starts
 * over at 100 ms. While paused, new connections are shed at once, so the
 * descriptors freed by closing connections go to the control API, the health
 * probes and the connections already served rather than to the next flood.
 *
 * Pure: time comes in as an argument (monotonic ms).
 */
export const BACKOFF_MIN_MS = 100;
export const BACKOFF_MAX_MS = 1_000;
/** Without a failure for this long, the next pause starts at the minimum again. */
export const BACKOFF_RESET_MS = 5_000;

export class AcceptBackoff {
  private until = -Infinity;
  private lastFailure = -Infinity;
  private current = 0;
  /** Failures seen since start (a counter). */
  failures = 0;

  /** Records a failure at `now`; returns the pause it starts (ms). */
  fail(now: number): number {
    this.failures++;
    const quiet = now - this.lastFailure >= BACKOFF_RESET_MS;
    this.current = quiet || this.current === 0 ? BACKOFF_MIN_MS : Math.min(BACKOFF_MAX_MS, this.current * 2);
    this.lastFailure = now;
    this.until = Math.max(this.until, now + this.current);
    return this.current;
  }

  paused(now: number): boolean {
    return now < this.until;
  }

  /** Ms left in the current pause (0 when not paused). */
  remaining(now: number): number {
    return Math.max(0, this.until - now);
  }
}
