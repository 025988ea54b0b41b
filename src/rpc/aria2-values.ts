/**
 * Values typed the way aria2 types them on the wire: every number a decimal
 * string, a GID 16 lowercase hex digits, sizes in options with K/M/G suffixes,
 * and aria2's exit codes for `errorCode` (mapped from linkmux's error codes).
 * Pure functions only.
 */
import { randomBytes } from 'node:crypto';
import type { ErrorCode } from '../util/errors.js';
import { fail } from './json-rpc.js';

export type Gid = string;

export const GID_RE = /^[0-9a-f]{16}$/;

/** A fresh GID not in `taken` (random: 2^64 space, so one draw almost always does). */
export function newGid(taken: (gid: string) => boolean): Gid {
  for (let i = 0; i < 100; i++) {
    const gid = randomBytes(8).toString('hex');
    if (gid !== '0000000000000000' && !taken(gid)) return gid;
  }
  throw new Error('cannot draw a free GID');
}

/** Checks a GID parameter the way aria2 words it. */
export function gidParam(v: unknown): Gid {
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{1,16}$/.test(v)) throw fail(`Invalid GID ${String(v)}`);
  return v.toLowerCase();
}

/** aria2's integers are decimal strings; fractional rates are truncated. */
export function num(n: number): string {
  return String(Math.max(0, Math.floor(n)));
}

/** "1M", "500K", "1048576" → bytes; undefined when malformed. aria2's K and M are 1024-based. */
export function parseSizeOption(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KkMmGg]?)$/.exec(text.trim());
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Math.floor(Number(m[1]) * mult);
}

/** Non-negative integer parameter (offset/num/pos); aria2 rejects other types. */
export function intParam(v: unknown, index: number): number {
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw fail(`The parameter at ${index} has wrong type.`);
  return n;
}

/**
 * aria2's paging of tellWaiting/tellStopped: offset ≥ 0 counts from the start;
 * a negative offset counts from the end and the page comes in reverse order.
 */
export function page<T>(items: readonly T[], offset: number, count: number): T[] {
  if (count <= 0) return [];
  if (offset >= 0) return items.slice(offset, offset + count);
  const start = items.length + offset;
  if (start < 0) return [];
  const out: T[] = [];
  for (let i = start; i >= 0 && out.length < count; i--) out.push(items[i] as T);
  return out;
}

/** aria2's errorCode for a linkmux failure (see aria2c(1), EXIT STATUS). */
export function aria2ErrorCode(code: ErrorCode | undefined, httpStatus?: number): string {
  switch (code) {
    case 'LINKMUX_ERR_HTTP_STATUS':
      if (httpStatus === 404 || httpStatus === 410) return '3';
      if (httpStatus === 401 || httpStatus === 403) return '24';
      if (httpStatus === 503 || httpStatus === 429) return '29';
      return '22';
    case 'LINKMUX_ERR_TIMEOUT':
      return '2';
    case 'LINKMUX_ERR_CONNECT':
    case 'LINKMUX_ERR_ALL_LINKS_FAILED':
    case 'LINKMUX_ERR_NO_LINKS':
    case 'LINKMUX_ERR_NO_ROUTE':
      return '6';
    case 'LINKMUX_ERR_DNS':
      return '19';
    case 'LINKMUX_ERR_DISK_FULL':
      return '9';
    case 'LINKMUX_ERR_OUTPUT_EXISTS':
    case 'LINKMUX_ERR_PARTIAL_EXISTS':
      return '13';
    case 'LINKMUX_ERR_IO':
    case 'LINKMUX_ERR_CONTROL_FILE':
      return '17';
    case 'LINKMUX_ERR_CHECKSUM':
      return '32';
    case 'LINKMUX_ERR_TOO_MANY_REDIRECTS':
      return '23';
    case 'LINKMUX_ERR_BAD_RESPONSE':
    case 'LINKMUX_ERR_RANGE_IGNORED':
      return '22';
    case 'LINKMUX_ERR_FILE_CHANGED':
      return '8';
    case 'LINKMUX_ERR_URL':
    case 'LINKMUX_ERR_USAGE':
      return '28';
    default:
      return '1';
  }
}

/** aria2 reports a download removed by the user with this errorCode. */
export const REMOVED_ERROR_CODE = '31';

/** Hex bitfield of `pieces` pieces of `pieceLength`, a bit set when the piece is wholly on disk. */
export function bitfield(
  ranges: readonly { start: number; end: number }[],
  size: number,
  pieceLength: number,
): string {
  const pieces = Math.ceil(size / pieceLength);
  const bytes = Buffer.alloc(Math.ceil(pieces / 8));
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  for (let p = 0; p < pieces; p++) {
    const s = p * pieceLength;
    const e = Math.min(size, s + pieceLength);
    if (sorted.some((r) => r.start <= s && r.end >= e)) {
      bytes[p >> 3] = (bytes[p >> 3] ?? 0) | (0x80 >> (p & 7));
    }
  }
  return bytes.toString('hex');
}
