/**
 * glibc's allocator, tuned for a long-lived relay: fewer malloc arenas
 * (`mallopt(M_ARENA_MAX)`) and a periodic `malloc_trim(0)`, both through koffi
 * (loaded lazily, like fd-limit.ts).
 *
 * Why: Node allocates every socket read's buffer (up to 64 KiB) with malloc.
 * glibc keeps what is freed inside its arenas, one per thread that allocated
 * (up to 8 per core), and gives a page back to the system only when it lies at
 * the top of an arena's heap; after a burst of traffic, or once thousands of
 * tunnels have closed, RSS stays at its high-water mark for good, and a churn
 * of tunnels creeps it up. Two arenas are enough for one event loop and its
 * helper threads, and `malloc_trim(0)` hands back (madvise) every free page
 * of every arena, not only the top. Pages handed back cost a page fault when
 * they are used again, so the trim is not run after each burst but checked
 * every 5 s: it runs when RSS grew by 16 MiB since the last trim (a bulk
 * download's read buffers, freed, left behind), and at least every 60 s; its
 * duration is recorded (`stats()`; ≈ 1–5 ms a call with 2,000 tunnels open).
 *
 * Guarantees: never throws; a no-op off Linux, on a C library other than glibc
 * (musl has neither call), without koffi, or with LINKMUX_MALLOC=off in the
 * environment; the timer is unref'd (it never keeps a process alive).
 */
import { createRequire } from 'node:module';
import { describe } from '../util/errors.js';

/** mallopt parameter numbers (glibc malloc.h). */
const M_ARENA_MAX = -8;

export const DEFAULT_ARENA_MAX = 2;
/** How often RSS is checked. */
export const DEFAULT_CHECK_INTERVAL_MS = 5_000;
/** Growth of RSS since the last trim that triggers one. */
export const DEFAULT_TRIM_GROWTH_BYTES = 16 * 1024 * 1024;
/** Longest time between two trims. */
export const DEFAULT_TRIM_EVERY_MS = 60_000;

export interface MallocCalls {
  mallopt(param: number, value: number): number;
  /** Returns 1 when memory was handed back. */
  mallocTrim(pad: number): number;
}

export type MallocSupport = { ok: true; calls: MallocCalls; glibc: string } | { ok: false; reason: string };

export interface MallocTuningOptions {
  arenaMax?: number;
  /** How often RSS is checked; 0 = no trim but on demand. */
  checkIntervalMs?: number;
  trimGrowthBytes?: number;
  trimEveryMs?: number;
  /** RSS in bytes (default process.memoryUsage.rss). */
  rss?: () => number;
  /** The C library calls (default: glibc's, through koffi). */
  support?: MallocSupport;
  /** Default: process.env. LINKMUX_MALLOC=off turns every call off. */
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

export interface MallocStats {
  trims: number;
  /** Trims that handed memory back. */
  released: number;
  /** Time spent in malloc_trim, milliseconds: all calls, and the longest. */
  totalMs: number;
  maxMs: number;
}

export interface MallocTuning {
  /** True when the calls are made (glibc, not turned off). */
  readonly active: boolean;
  /** Why not, when inactive. */
  readonly reason: string | undefined;
  /** One malloc_trim(0) now (a no-op when inactive). */
  trim(): void;
  stats(): MallocStats;
  stop(): void;
}

let loaded: MallocSupport | undefined;

/** glibc's mallopt and malloc_trim through koffi, or why they are not there. */
export function glibcMalloc(): MallocSupport {
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { ok: false, reason: 'not Linux' });
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    const lib = koffi.load(null);
    // Only glibc has gnu_get_libc_version: on musl the lookup throws.
    const version = lib.func('const char *gnu_get_libc_version()') as () => string;
    const mallopt = lib.func('int mallopt(int, int)') as (p: number, v: number) => number;
    const trim = lib.func('int malloc_trim(size_t)') as (pad: number) => number;
    loaded = { ok: true, glibc: version(), calls: { mallopt, mallocTrim: trim } };
  } catch (err) {
    loaded = { ok: false, reason: `not glibc, or koffi could not load it (${describe(err)})` };
  }
  return loaded;
}

/** Applies the arena cap and starts the periodic trim. */
export function startMallocTuning(opts: MallocTuningOptions = {}): MallocTuning {
  const env = opts.env ?? process.env;
  const now = opts.now ?? (() => performance.now());
  const rss = opts.rss ?? (() => process.memoryUsage.rss());
  const stats: MallocStats = { trims: 0, released: 0, totalMs: 0, maxMs: 0 };
  const off = (reason: string): MallocTuning => ({
    active: false,
    reason,
    trim: () => {},
    stats: () => ({ ...stats }),
    stop: () => {},
  });
  if (env.LINKMUX_MALLOC === 'off') return off('LINKMUX_MALLOC=off');
  const support = opts.support ?? glibcMalloc();
  if (!support.ok) return off(support.reason);
  const { calls } = support;
  const arenaMax = opts.arenaMax ?? DEFAULT_ARENA_MAX;
  if (arenaMax > 0) calls.mallopt(M_ARENA_MAX, arenaMax);
  let lastAt = now();
  let lastRss = rss();
  const trim = () => {
    const t0 = now();
    const r = calls.mallocTrim(0);
    const t1 = now();
    stats.trims++;
    if (r === 1) stats.released++;
    stats.totalMs += t1 - t0;
    stats.maxMs = Math.max(stats.maxMs, t1 - t0);
    lastAt = t1;
    lastRss = rss();
  };
  const growth = opts.trimGrowthBytes ?? DEFAULT_TRIM_GROWTH_BYTES;
  const longest = opts.trimEveryMs ?? DEFAULT_TRIM_EVERY_MS;
  const check = () => {
    const current = rss();
    // RSS that went down (V8 gave pages back) is the new base: growth counts from the lowest point.
    if (current < lastRss) lastRss = current;
    if (current - lastRss >= growth || now() - lastAt >= longest) trim();
  };
  const every = opts.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
  const timer = every > 0 ? setInterval(check, every) : undefined;
  timer?.unref();
  return {
    active: true,
    reason: undefined,
    trim,
    stats: () => ({ ...stats }),
    stop: () => clearInterval(timer),
  };
}
