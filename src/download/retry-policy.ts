/**
 * What to do after a failed request: pure classification of statuses and
 * errors, and the backoff schedule. Transient trouble (timeouts, resets,
 * 5xx, 429) is retried with capped exponential backoff; a reply that shows the
 * request itself is wrong (4xx, a changed file, a lying server) is not.
 */
import { LinkmuxError, systemCode } from '../util/errors.js';

export type StatusClass = 'ok' | 'retry' | 'fatal';

export function classifyStatus(status: number): StatusClass {
  if (status === 200 || status === 206) return 'ok';
  if (status === 408 || status === 425 || status === 429 || status >= 500) return 'retry';
  return 'fatal';
}

const FATAL_CODES = new Set([
  'LINKMUX_ERR_HTTP_STATUS',
  'LINKMUX_ERR_BAD_RESPONSE',
  'LINKMUX_ERR_RANGE_IGNORED',
  'LINKMUX_ERR_FILE_CHANGED',
  'LINKMUX_ERR_TOO_MANY_REDIRECTS',
  'LINKMUX_ERR_URL',
  'LINKMUX_ERR_DISK_FULL',
  'LINKMUX_ERR_IO',
  'LINKMUX_ERR_ABORTED',
]);

/** Errors that retrying on this or another link cannot fix. */
export function isFatal(err: unknown): boolean {
  if (err instanceof HttpStatusError) return !err.retryable;
  return err instanceof LinkmuxError && FATAL_CODES.has(err.code);
}

/** Errors that concern the local disk and stop the whole job at once. */
export function isLocalFatal(err: unknown): boolean {
  if (err instanceof LinkmuxError)
    return err.code === 'LINKMUX_ERR_DISK_FULL' || err.code === 'LINKMUX_ERR_IO';
  const code = systemCode(err);
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO' || code === 'EBADF';
}

/** LINKMUX_ERR_HTTP_STATUS with the status kept, so retry decisions need no message parsing. */
export class HttpStatusError extends LinkmuxError {
  readonly status: number;
  readonly retryable: boolean;
  constructor(status: number, message: string) {
    super('LINKMUX_ERR_HTTP_STATUS', message);
    this.status = status;
    this.retryable = classifyStatus(status) === 'retry';
  }
}

export interface Backoff {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 250, capMs: 8_000 };

/** Delay before retry number `attempt` (1-based): base·2^(attempt-1), capped, with ±20 % jitter. */
export function backoffDelay(
  attempt: number,
  b: Backoff = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const raw = Math.min(b.capMs, b.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (0.8 + 0.4 * random()));
}
