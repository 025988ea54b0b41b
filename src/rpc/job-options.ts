/**
 * aria2 options → what the download engine takes. Options arrive as a map of
 * strings (aria2's "input file" options); the supported ones are validated
 * (a bad value is aria2's code-1 error), unknown ones are ignored the way aria2
 * ignores them. `raw` keeps what the client sent (for getOption).
 */
import { parseChecksum, type Checksum } from '../download/checksum.js';
import { fail } from './json-rpc.js';
import { parseSizeOption } from './aria2-values.js';

export interface JobOptions {
  dir: string;
  out?: string;
  /** Connections per link (`max-connection-per-server`, else `split`). */
  connectionsPerLink: number;
  checksum?: Checksum;
  /** Extra request headers, lower-case names. */
  headers: Record<string, string>;
  /** The supported options as strings, as getOption shows them. */
  raw: Record<string, string>;
}

export interface GlobalOptions {
  dir: string;
  maxConcurrentDownloads: number;
  /** Bytes/s over every download, 0 = no limit. */
  maxOverallDownloadLimit: number;
  /** Default connections per link for new downloads. */
  connectionsPerLink: number;
}

/** Headers a client must not set: the engine owns the framing and the ranges. */
const RESERVED_HEADERS = new Set([
  'range',
  'if-range',
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'upgrade',
  'te',
  'trailer',
  'keep-alive',
  'proxy-connection',
]);

export function optionsParam(v: unknown, index: number): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw fail(`The parameter at ${index} has wrong type.`);
  }
  return v as Record<string, unknown>;
}

/** Applies `input` over `base` (a job's options or the global defaults). */
export function jobOptions(
  input: Record<string, unknown>,
  base: { dir: string; connectionsPerLink: number; raw?: Record<string, string> },
  prev?: JobOptions,
): JobOptions {
  const raw: Record<string, string> = { ...(prev?.raw ?? base.raw ?? {}) };
  const o: JobOptions = {
    dir: prev?.dir ?? base.dir,
    connectionsPerLink: prev?.connectionsPerLink ?? base.connectionsPerLink,
    headers: { ...(prev?.headers ?? {}) },
    ...(prev?.out !== undefined ? { out: prev.out } : {}),
    ...(prev?.checksum ? { checksum: prev.checksum } : {}),
    raw,
  };
  const str = (k: string): string | undefined => {
    const v = input[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw fail(`We encountered a problem while processing the option '--${k}'.`);
    return v;
  };
  const dir = str('dir');
  if (dir !== undefined) {
    if (dir.trim() === '') throw fail("We encountered a problem while processing the option '--dir'.");
    o.dir = dir;
    raw.dir = dir;
  }
  const out = str('out');
  if (out !== undefined) {
    if (out === '' || out.includes('\0'))
      throw fail("We encountered a problem while processing the option '--out'.");
    o.out = out;
    raw.out = out;
  }
  for (const k of ['split', 'max-connection-per-server']) {
    const v = str(k);
    if (v === undefined) continue;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1)
      throw fail(`We encountered a problem while processing the option '--${k}'.`);
    raw[k] = v;
  }
  const perServer = raw['max-connection-per-server'] ?? raw.split;
  if (perServer !== undefined) o.connectionsPerLink = Math.min(16, Math.max(1, Number(perServer)));
  const checksum = str('checksum');
  if (checksum !== undefined) {
    try {
      o.checksum = parseChecksum(checksum);
    } catch {
      throw fail("We encountered a problem while processing the option '--checksum'.");
    }
    raw.checksum = checksum;
  }
  const header = input.header;
  if (header !== undefined) {
    const list = typeof header === 'string' ? [header] : header;
    if (!Array.isArray(list)) throw fail("We encountered a problem while processing the option '--header'.");
    for (const h of list) {
      const m = typeof h === 'string' ? /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):\s*(.*)$/.exec(h) : null;
      if (!m || /[\r\n]/.test(h as string)) {
        throw fail("We encountered a problem while processing the option '--header'.");
      }
      const name = (m[1] ?? '').toLowerCase();
      if (!RESERVED_HEADERS.has(name)) o.headers[name] = (m[2] ?? '').trim();
    }
  }
  for (const [k, name] of [
    ['referer', 'referer'],
    ['user-agent', 'user-agent'],
  ] as const) {
    const v = str(k);
    if (v === undefined) continue;
    if (/[\r\n]/.test(v)) throw fail(`We encountered a problem while processing the option '--${k}'.`);
    o.headers[name] = v;
    raw[k] = v;
  }
  return o;
}

/** changeGlobalOption: the supported keys change, others are accepted and ignored. */
export function applyGlobal(g: GlobalOptions, input: Record<string, unknown>): GlobalOptions {
  const next = { ...g };
  const str = (k: string): string | undefined => {
    const v = input[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw fail(`We encountered a problem while processing the option '--${k}'.`);
    return v;
  };
  const mcd = str('max-concurrent-downloads');
  if (mcd !== undefined) {
    if (!/^\d+$/.test(mcd) || Number(mcd) < 1) {
      throw fail("We encountered a problem while processing the option '--max-concurrent-downloads'.");
    }
    next.maxConcurrentDownloads = Number(mcd);
  }
  const dir = str('dir');
  if (dir !== undefined) {
    if (dir.trim() === '') throw fail("We encountered a problem while processing the option '--dir'.");
    next.dir = dir;
  }
  const limit = str('max-overall-download-limit');
  if (limit !== undefined) {
    const n = parseSizeOption(limit);
    if (n === undefined) {
      throw fail("We encountered a problem while processing the option '--max-overall-download-limit'.");
    }
    next.maxOverallDownloadLimit = n;
  }
  for (const k of ['split', 'max-connection-per-server']) {
    const v = str(k);
    if (v !== undefined && /^\d+$/.test(v) && Number(v) >= 1)
      next.connectionsPerLink = Math.min(16, Number(v));
  }
  return next;
}

/** getGlobalOption's view. */
export function globalView(g: GlobalOptions): Record<string, string> {
  return {
    dir: g.dir,
    'max-concurrent-downloads': String(g.maxConcurrentDownloads),
    'max-overall-download-limit': String(g.maxOverallDownloadLimit),
    'max-connection-per-server': String(g.connectionsPerLink),
    split: String(g.connectionsPerLink),
  };
}

/** getOption's view of one job. */
export function jobView(o: JobOptions): Record<string, string> {
  return {
    ...o.raw,
    dir: o.dir,
    ...(o.out !== undefined ? { out: o.out } : {}),
    'max-connection-per-server': String(o.connectionsPerLink),
    split: o.raw.split ?? String(o.connectionsPerLink),
  };
}
