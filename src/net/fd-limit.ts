/**
 * The process's file descriptor budget: raising the soft RLIMIT_NOFILE to the
 * hard limit at start (getrlimit/setrlimit through koffi, loaded lazily like
 * bind-device.ts), counting the descriptors open now (/proc/self/fd), and
 * deriving the connection caps from the limit minus a reserve.
 *
 * Why: a proxied connection costs two descriptors (client and target), and
 * the control API, health probes, DNS sockets and log files need some too.
 * Capping clients below the limit keeps `linkmux status` and the probes
 * working when a flood arrives, instead of every accept() and every probe
 * failing with EMFILE.
 *
 * Guarantees: never throws; without koffi, off Linux, or when the kernel
 * refuses, the limit is left as it is and the reason is returned.
 */
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { describe } from '../util/errors.js';

const RLIMIT_NOFILE = 7; // Linux, every architecture koffi ships for

export interface FdLimit {
  soft: number;
  hard: number;
}

export type RaiseResult =
  { ok: true; before: FdLimit; after: FdLimit } | { ok: false; reason: string; limit?: FdLimit };

interface Rlimit {
  get(): FdLimit | undefined;
  set(l: FdLimit): boolean;
  errno(): string;
}

let loaded: Rlimit | { reason: string } | undefined;

function load(): Rlimit | { reason: string } {
  if (process.platform !== 'linux') return { reason: `RLIMIT_NOFILE is raised on Linux only` };
  if (loaded) return loaded;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    const lib = koffi.load(null);
    // rlim_t is unsigned long on every Linux ABI koffi supports.
    const rlimit = koffi.struct('linkmux_rlimit', { rlim_cur: 'unsigned long', rlim_max: 'unsigned long' });
    const getrlimit = lib.func('int getrlimit(int, _Out_ linkmux_rlimit *)');
    const setrlimit = lib.func('int setrlimit(int, const linkmux_rlimit *)');
    void rlimit;
    const names = new Map(Object.entries(koffi.os.errno).map(([name, n]) => [n, name]));
    loaded = {
      get: () => {
        const out: { rlim_cur?: number | bigint; rlim_max?: number | bigint } = {};
        if (getrlimit(RLIMIT_NOFILE, out) !== 0) return undefined;
        return { soft: toNumber(out.rlim_cur), hard: toNumber(out.rlim_max) };
      },
      set: (l) => setrlimit(RLIMIT_NOFILE, { rlim_cur: l.soft, rlim_max: l.hard }) === 0,
      errno: () => names.get(koffi.errno()) ?? `errno ${koffi.errno()}`,
    };
  } catch (err) {
    loaded = { reason: `the koffi FFI module could not be loaded (${describe(err)})` };
  }
  return loaded;
}

/** RLIM_INFINITY and anything beyond what a JS number holds read as Infinity. */
function toNumber(v: number | bigint | undefined): number {
  if (v === undefined) return NaN;
  const n = typeof v === 'bigint' ? (v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v)) : v;
  return n >= 2 ** 53 ? Infinity : n;
}

/** The limit in force, or undefined when it cannot be read. */
export function readFdLimit(): FdLimit | undefined {
  const l = load();
  return 'get' in l ? l.get() : undefined;
}

/**
 * Raises the soft limit to the hard one. An infinite hard limit is replaced by
 * the kernel's per-process ceiling (/proc/sys/fs/nr_open), which is what
 * setrlimit accepts.
 */
export function raiseFdLimit(): RaiseResult {
  const l = load();
  if (!('get' in l)) return { ok: false, reason: l.reason };
  const before = l.get();
  if (!before) return { ok: false, reason: `getrlimit failed (${l.errno()})` };
  let target = before.hard;
  if (!Number.isFinite(target)) target = nrOpen() ?? before.soft;
  if (target <= before.soft) return { ok: true, before, after: before };
  if (!l.set({ soft: target, hard: before.hard === Infinity ? target : before.hard })) {
    return { ok: false, reason: `setrlimit failed (${l.errno()})`, limit: before };
  }
  return { ok: true, before, after: l.get() ?? { soft: target, hard: before.hard } };
}

function nrOpen(): number | undefined {
  try {
    const n = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Descriptors open in this process now (Linux: /proc/self/fd), or undefined elsewhere. */
export function openFdCount(): number | undefined {
  try {
    // One of the entries is the directory handle readdir itself holds.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

export interface CapSettings {
  /** 0 = derive from the limit. */
  maxConnections: number;
  /** 0 = derive from the global cap. */
  maxPerClient: number;
  /** Descriptors kept for the control API, probes, DNS; 0 = derive from the limit. */
  reserve: number;
}

/** Used when the limit cannot be read (not Linux): Node's usual soft limit is 1024 or more. */
const ASSUMED_LIMIT = 1024;
/** The global cap when the limit is practically unlimited: enough for any home LAN. */
const CEILING = 1_000_000;

/**
 * The caps in force. Pure. Each client connection is counted as two
 * descriptors (client and target); the reserve defaults to 1/8 of the limit,
 * at least 64 and at most 4096; one client gets half the global cap unless set.
 */
export function deriveCaps(
  settings: CapSettings,
  limit: number | undefined,
): { maxConnections: number; maxPerClient: number; reserve: number; limit: number } {
  const fds = limit !== undefined && Number.isFinite(limit) && limit > 0 ? limit : ASSUMED_LIMIT;
  const reserve = settings.reserve > 0 ? settings.reserve : Math.min(4096, Math.max(64, Math.floor(fds / 8)));
  const derived = Math.max(1, Math.min(CEILING, Math.floor((fds - reserve) / 2)));
  const maxConnections = settings.maxConnections > 0 ? settings.maxConnections : derived;
  const maxPerClient =
    settings.maxPerClient > 0
      ? Math.min(settings.maxPerClient, maxConnections)
      : Math.max(1, Math.ceil(maxConnections / 2));
  return { maxConnections, maxPerClient, reserve, limit: fds };
}
