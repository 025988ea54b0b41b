/**
 * A download as aria2's tellStatus shows it: the keys aria2 sends for an HTTP
 * download (bitfield only once the size is known, errorCode/errorMessage only
 * once stopped), every number a decimal string. Pure: a record and the live
 * numbers of a running job in, a plain object out.
 */
import { resolve } from 'node:path';
import type { LinkProgress } from '../download/progress.js';
import { bitfield, num, REMOVED_ERROR_CODE } from './aria2-values.js';
import type { JobRecord } from './queue.js';

/** aria2's default piece length: the unit of `bitfield` and `numPieces`. */
export const PIECE_LENGTH = 1024 * 1024;

export interface LiveJob {
  done: number;
  speed: number;
  connections: number;
  links: LinkProgress[];
  ranges?: { start: number; end: number }[];
}

export function filePath(rec: JobRecord): string {
  if (rec.output) return rec.output;
  return rec.options.out !== undefined ? resolve(rec.options.dir, rec.options.out) : '';
}

export function uris(rec: JobRecord): { uri: string; status: 'used' | 'waiting' }[] {
  return rec.uris.map((uri) => ({
    uri,
    status: rec.status === 'waiting' || rec.status === 'paused' ? 'waiting' : 'used',
  }));
}

export function files(rec: JobRecord, live: LiveJob | undefined): Record<string, unknown>[] {
  const completed = live?.done ?? rec.completedLength;
  return [
    {
      completedLength: num(completed),
      index: '1',
      length: num(rec.totalLength),
      path: filePath(rec),
      selected: 'true',
      uris: uris(rec),
    },
  ];
}

export function statusOf(rec: JobRecord, live: LiveJob | undefined): Record<string, unknown> {
  const total = rec.totalLength;
  const completed = live?.done ?? rec.completedLength;
  const s: Record<string, unknown> = {
    completedLength: num(completed),
    connections: num(rec.status === 'active' ? (live?.connections ?? 0) : 0),
    dir: rec.options.dir,
    downloadSpeed: num(rec.status === 'active' ? (live?.speed ?? 0) : 0),
    files: files(rec, live),
    gid: rec.gid,
    numPieces: num(total > 0 ? Math.ceil(total / PIECE_LENGTH) : 0),
    pieceLength: num(PIECE_LENGTH),
    status: rec.status,
    totalLength: num(total),
    uploadLength: '0',
    uploadSpeed: '0',
  };
  if (total > 0) {
    const ranges = rec.status === 'complete' ? [{ start: 0, end: total }] : (live?.ranges ?? rec.done ?? []);
    s.bitfield = bitfield(ranges, total, PIECE_LENGTH);
  }
  if (rec.status === 'complete' || rec.status === 'error' || rec.status === 'removed') {
    s.errorCode =
      rec.status === 'complete'
        ? '0'
        : rec.status === 'removed'
          ? REMOVED_ERROR_CODE
          : (rec.errorCode ?? '1');
    s.errorMessage = rec.status === 'error' ? (rec.errorMessage ?? '') : '';
  }
  return s;
}

/** `keys` as tellStatus takes them: absent or empty = every key. */
export function pick(
  s: Record<string, unknown>,
  keys: readonly string[] | undefined,
): Record<string, unknown> {
  if (!keys || keys.length === 0) return s;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (Object.hasOwn(s, k)) out[k] = s[k];
  return out;
}
