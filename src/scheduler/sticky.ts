/**
 * Sticky: every connection to one destination key goes out of the same link, so
 * a site that ties a login to the client's IP keeps seeing one address. The first
 * connection (and any after the entry lapsed) is placed by a fallback policy and
 * remembered.
 *
 * Guarantees:
 * - a remembered link is reused while it is in the snapshot, not offline, and the
 *   entry is fresher than `ttlMs` (now − last use < ttlMs). The TTL slides: each
 *   reuse refreshes it, so a session in use never moves. A degraded link is kept
 *   on purpose: moving would change the client's IP, which is what stickiness
 *   exists to avoid;
 * - otherwise the fallback picks, and that pick is remembered (an offline link's
 *   destinations move for good: they do not jump back when it returns);
 * - memory is bounded: at most `maxEntries` destinations, least recently used
 *   dropped first.
 */
import type { LinkSnapshot, PickContext, Policy } from './snapshot.js';

export const DEFAULT_STICKY_TTL_MS = 10 * 60_000;
export const DEFAULT_STICKY_MAX_ENTRIES = 10_000;

export interface StickyOptions {
  /** Places destinations not (or no longer) remembered. */
  fallback: Policy;
  /** How long an unused entry lives, in ms. Default 600 000 (10 min). */
  ttlMs?: number;
  /** Most destinations remembered. Default 10 000. */
  maxEntries?: number;
}

export class StickyPolicy implements Policy {
  readonly name = 'sticky';
  private readonly fallback: Policy;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  /** Map order is recency order: a reused entry is moved to the end. */
  private readonly entries = new Map<string, { link: string; at: number }>();

  constructor(opts: StickyOptions) {
    this.fallback = opts.fallback;
    this.ttlMs = opts.ttlMs ?? DEFAULT_STICKY_TTL_MS;
    this.maxEntries = Math.max(1, opts.maxEntries ?? DEFAULT_STICKY_MAX_ENTRIES);
  }

  /** Destinations currently remembered (including lapsed ones not yet asked for again). */
  get size(): number {
    return this.entries.size;
  }

  pick(links: readonly LinkSnapshot[], ctx: PickContext): string | undefined {
    const entry = this.entries.get(ctx.destination);
    this.entries.delete(ctx.destination);
    if (entry && ctx.now - entry.at < this.ttlMs) {
      const link = links.find((l) => l.id === entry.link);
      if (link && link.state !== 'offline') return this.remember(ctx.destination, link.id, ctx.now);
    }
    const id = this.fallback.pick(links, ctx);
    return id === undefined ? undefined : this.remember(ctx.destination, id, ctx.now);
  }

  private remember(destination: string, link: string, now: number): string {
    this.entries.set(destination, { link, at: now });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
    }
    return link;
  }
}
