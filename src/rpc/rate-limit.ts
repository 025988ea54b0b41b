/**
 * max-overall-download-limit: one budget of bytes per second shared by every
 * download. Virtual scheduling: each chunk pushes a "next free" time forward by
 * its size / rate, and the writer that got ahead waits until then, so the TCP
 * window closes and the server slows down. Up to `burstMs` of credit is kept.
 * A limit of 0 costs nothing.
 */
export class RateLimit {
  private next = 0;

  constructor(
    private readonly rate: () => number,
    private readonly burstMs = 200,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Resolves when `bytes` fit in the budget. */
  take(bytes: number): Promise<void> {
    const rate = this.rate();
    if (rate <= 0) return Promise.resolve();
    const now = this.now();
    this.next = Math.max(this.next, now - this.burstMs) + (bytes * 1000) / rate;
    const wait = this.next - now;
    return wait > 0 ? new Promise((r) => setTimeout(r, wait)) : Promise.resolve();
  }
}
