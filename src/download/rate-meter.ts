/**
 * Throughput over a sliding window, in bytes per second. O(1) per sample:
 * bytes are added to fixed time buckets; the rate is the sum of the buckets
 * in the window divided by the window (or by the age of the meter while it is
 * younger than the window). Undefined until the meter has seen `minAgeMs`.
 */
import type { Clock } from '../util/clock.js';

export class RateMeter {
  private readonly buckets: Float64Array;
  private readonly bucketMs: number;
  private readonly startedAt: number;
  private lastBucket: number;
  total = 0;

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = 2_000,
    private readonly minAgeMs = 1_000,
    bucketCount = 8,
  ) {
    this.buckets = new Float64Array(bucketCount);
    this.bucketMs = windowMs / bucketCount;
    this.startedAt = clock.now();
    this.lastBucket = Math.floor(this.startedAt / this.bucketMs);
  }

  add(bytes: number): void {
    this.roll();
    const i = this.lastBucket % this.buckets.length;
    this.buckets[i] = (this.buckets[i] ?? 0) + bytes;
    this.total += bytes;
  }

  /** Bytes/s over the window; undefined while younger than minAgeMs. */
  rate(): number | undefined {
    this.roll();
    const age = this.clock.now() - this.startedAt;
    if (age < this.minAgeMs) return undefined;
    let sum = 0;
    for (const b of this.buckets) sum += b;
    return (sum * 1000) / Math.min(this.windowMs, Math.max(age, 1));
  }

  private roll(): void {
    const now = Math.floor(this.clock.now() / this.bucketMs);
    const steps = Math.min(now - this.lastBucket, this.buckets.length);
    for (let s = 1; s <= steps; s++) this.buckets[(this.lastBucket + s) % this.buckets.length] = 0;
    if (now > this.lastBucket) this.lastBucket = now;
  }
}
