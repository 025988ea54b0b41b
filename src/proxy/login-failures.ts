/**
 * Failed logins, aggregated per client address so that a client guessing
 * passwords cannot flood the log: the first failure from an address is
 * reported at once, later ones are counted and reported as one line per
 * address per interval ("3 failed logins from 198.18.100.5 in the last 60 s").
 *
 * Pure: `record` and `flush` take the time and return the lines to log; the
 * caller owns the timer and the logger. Credentials never come in, so they
 * can never go out. Totals per front end are counters for /metrics.
 *
 * Guarantees: at most one line per address per interval after its first;
 * memory bounded by `maxAddresses` (beyond it, failures from new addresses are
 * counted under "other addresses"); totals never decrease.
 */
export type FrontEnd = 'socks5' | 'http' | 'node';

export const DEFAULT_LOGIN_LOG_INTERVAL_MS = 60_000;
const DEFAULT_MAX_ADDRESSES = 10_000;
const OTHERS = 'other addresses';

interface Pending {
  count: number;
  since: number;
  frontEnds: Set<FrontEnd>;
}

export class LoginFailures {
  private readonly pending = new Map<string, Pending>();
  /** Addresses reported during the current interval (their next failures are only counted). */
  private readonly quiet = new Map<string, number>();
  readonly totals: Record<FrontEnd, number> = { socks5: 0, http: 0, node: 0 };

  constructor(
    readonly intervalMs = DEFAULT_LOGIN_LOG_INTERVAL_MS,
    private readonly maxAddresses = DEFAULT_MAX_ADDRESSES,
  ) {}

  /** One failed login; returns a line to log now, or undefined when it is only counted. */
  record(address: string | undefined, frontEnd: FrontEnd, now: number): string | undefined {
    this.totals[frontEnd]++;
    let key = address ?? '?';
    const quietUntil = this.quiet.get(key);
    if (quietUntil === undefined || now >= quietUntil) {
      if (this.quiet.size < this.maxAddresses || this.quiet.has(key)) {
        this.quiet.set(key, now + this.intervalMs);
        return `failed login from ${key} (${frontEnd}); further failures from it are summed up every ${Math.round(this.intervalMs / 1000)} s`;
      }
      key = OTHERS;
    }
    const p = this.pending.get(key) ?? { count: 0, since: now, frontEnds: new Set<FrontEnd>() };
    p.count++;
    p.frontEnds.add(frontEnd);
    this.pending.set(key, p);
    return undefined;
  }

  /** Lines for the failures counted but not yet reported; forgets addresses that went quiet. */
  flush(now: number): string[] {
    const lines: string[] = [];
    const secs = Math.round(this.intervalMs / 1000);
    for (const [key, p] of this.pending) {
      const what = p.count === 1 ? 'failed login' : 'failed logins';
      lines.push(`${p.count} ${what} from ${key} in the last ${secs} s (${[...p.frontEnds].join(', ')})`);
      // Reported now: the address stays counted-only for one more interval.
      if (key !== OTHERS) this.quiet.set(key, now + this.intervalMs);
    }
    this.pending.clear();
    for (const [key, until] of this.quiet) if (now >= until) this.quiet.delete(key);
    return lines;
  }
}
