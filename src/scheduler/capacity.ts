/**
 * Learning a link's capacity from the throughput it has shown. Nobody tells
 * linkmux that a link is "8 Mbit/s"; the best evidence is the highest rate it
 * has carried. Pure: samples come in with their time, nothing reads a clock.
 *
 * How: samples (bytes/s, e.g. a RateMeter read every 250 ms) are grouped into
 * buckets of `bucketMs` (1 s); each bucket's peak is one observation.
 * - Up at once: a peak above the estimate becomes the estimate (the link just
 *   proved it can do that much). The samples are already window averages, so one
 *   burst out of a buffer does not count as capacity.
 * - Down slowly: every bucket in which the link carried traffic multiplies the
 *   estimate by (1 − decayPerMinute) per minute, never below that bucket's
 *   peak. A link that got slower is re-learned (10 → 5 MB/s: about 14 busy
 *   minutes at the default 5 %/min), while noise and demand-limited flows barely
 *   move the estimate. Idle buckets (peak 0, or no samples) do not decay it: an
 *   idle link gives no evidence that it became slower, and forgetting it would
 *   make the scheduler shun a link only because it was not needed for a while.
 * Guarantees: undefined until some traffic was seen; otherwise at least the peak
 * of the bucket in progress; never NaN (non-finite and negative samples are
 * ignored); a sample older than the current bucket counts in the current one.
 */

export interface CapacityOptions {
  /** Width of the window whose peak is one observation, in ms. Default 1000. */
  bucketMs?: number;
  /** Fraction of the estimate lost per minute in which the link carried less. Default 0.05. */
  decayPerMinute?: number;
}

export const DEFAULT_CAPACITY_OPTIONS: Readonly<Required<CapacityOptions>> = Object.freeze({
  bucketMs: 1_000,
  decayPerMinute: 0.05,
});

export class CapacityEstimator {
  private readonly bucketMs: number;
  /** Multiplier applied to the estimate per busy bucket. */
  private readonly decayPerBucket: number;
  private estimate: number | undefined;
  private bucket: number | undefined;
  private peak = 0;

  constructor(opts: CapacityOptions = {}) {
    const o = { ...DEFAULT_CAPACITY_OPTIONS, ...opts };
    this.bucketMs = o.bucketMs > 0 ? o.bucketMs : DEFAULT_CAPACITY_OPTIONS.bucketMs;
    const keep = Math.min(1, Math.max(0, 1 - o.decayPerMinute));
    this.decayPerBucket = keep ** (this.bucketMs / 60_000);
  }

  /** Records one throughput sample (bytes/s) taken at `now` (ms, injected clock). */
  observe(rate: number, now: number): void {
    if (!Number.isFinite(rate) || rate < 0 || !Number.isFinite(now)) return;
    const bucket = Math.floor(now / this.bucketMs);
    if (this.bucket !== undefined && bucket > this.bucket) {
      this.closeBucket();
      this.peak = 0;
    }
    if (this.bucket === undefined || bucket > this.bucket) this.bucket = bucket;
    this.peak = Math.max(this.peak, rate);
  }

  /** Bytes/s the link has proven it can carry, or undefined before any traffic. */
  get capacity(): number | undefined {
    if (this.estimate === undefined) return this.peak > 0 ? this.peak : undefined;
    return Math.max(this.estimate, this.peak);
  }

  private closeBucket(): void {
    if (this.peak <= 0) return; // idle: no evidence either way
    this.estimate =
      this.estimate === undefined ? this.peak : Math.max(this.estimate * this.decayPerBucket, this.peak);
  }
}
