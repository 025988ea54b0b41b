/**
 * The answer cache: positive and negative answers per (name, type), kept for
 * their TTL and bounded in size. Pure apart from the injected clock.
 *
 * Guarantees: an entry is never served past its expiry; TTLs are clamped to
 * [minTtlS, maxTtlS] (a TTL of 0 still dedupes a burst for minTtlS); a negative
 * answer (NXDOMAIN or NODATA) is cached for at most maxNegativeTtlS; when full,
 * the least recently used entry goes first (Map order, refreshed on hit).
 */
import type { Clock } from '../util/clock.js';
import type { QueryType } from './message.js';

export type CachedAnswer =
  { kind: 'answer'; addresses: readonly string[] } | { kind: 'negative'; nxdomain: boolean };

export interface DnsCacheOptions {
  clock: Clock;
  /** Entries kept at most (default 10 000). */
  maxEntries?: number;
  /** Seconds (default 1). */
  minTtlS?: number;
  /** Seconds (default 86 400). */
  maxTtlS?: number;
  /** Seconds (default 300). */
  maxNegativeTtlS?: number;
}

export class DnsCache {
  private readonly entries = new Map<string, { value: CachedAnswer; expires: number }>();
  private readonly maxEntries: number;
  private readonly minTtlS: number;
  private readonly maxTtlS: number;
  private readonly maxNegativeTtlS: number;

  constructor(private readonly opts: DnsCacheOptions) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? 10_000);
    this.minTtlS = opts.minTtlS ?? 1;
    this.maxTtlS = opts.maxTtlS ?? 86_400;
    this.maxNegativeTtlS = opts.maxNegativeTtlS ?? 300;
  }

  get size(): number {
    return this.entries.size;
  }

  get(name: string, type: QueryType): CachedAnswer | undefined {
    const key = cacheKey(name, type);
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.expires <= this.opts.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit.value;
  }

  set(name: string, type: QueryType, value: CachedAnswer, ttlS: number): void {
    const cap = value.kind === 'negative' ? Math.min(this.maxTtlS, this.maxNegativeTtlS) : this.maxTtlS;
    const ttl = Math.min(cap, Math.max(this.minTtlS, Number.isFinite(ttlS) ? ttlS : 0));
    const key = cacheKey(name, type);
    this.entries.delete(key);
    this.entries.set(key, { value, expires: this.opts.clock.now() + ttl * 1000 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}

function cacheKey(name: string, type: QueryType): string {
  return `${type} ${name.toLowerCase().replace(/\.$/, '')}`;
}
