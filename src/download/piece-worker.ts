/**
 * One connection slot of a download: a loop that asks the plan for a piece,
 * fetches it with a Range request through its link and writes it in place.
 * A slot that fails releases its piece at once (so other links take it over),
 * backs off and retries; after `retries` failures in a row it gives up and the
 * rest of the job goes on without it. Every reply is checked against the file
 * the job started with: same size, same validators, the range that was asked.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Link } from '../links/link.js';
import type { Clock } from '../util/clock.js';
import { LinkmuxError, describe, fileError, redactUrl } from '../util/errors.js';
import {
  header,
  ifRangeValue,
  parseContentLength,
  parseContentRange,
  sameVersion,
  validatorsOf,
} from './http-headers.js';
import type { Validators } from './http-headers.js';
import { discard, statusError, type RangeResponse } from './http-request.js';
import type { Fetch } from './link-fetch.js';
import type { LinkHttpClient } from './node-http.js';
import type { Piece, RangePlan } from './range-plan.js';
import { RateMeter } from './rate-meter.js';
import { backoffDelay, isFatal, isLocalFatal, type Backoff } from './retry-policy.js';
import { SlotWriter } from './slot-writer.js';

export interface Mirror {
  url: URL;
  validators: Validators;
  /** False once it answered something retrying cannot fix. */
  alive: boolean;
}

/** State shared by all slots of one download. */
export interface Job {
  readonly plan: RangePlan;
  readonly file: FileHandle;
  readonly partPath: string;
  readonly size: number;
  readonly mirrors: Mirror[];
  readonly stallTimeoutMs: number;
  readonly retries: number;
  readonly backoff: Backoff;
  readonly clock: Clock;
  /** Aborted when the job ends (done, failed or interrupted). */
  readonly signal: AbortSignal;
  rateOf(worker: number): number | undefined;
  /** Something changed (piece released or finished): idle slots look again. */
  notify(): void;
  waitChange(maxMs: number): Promise<void>;
  /** Ends the job with this error (first one wins). */
  fail(err: unknown): void;
  notice(message: string): void;
  /** Extra request headers of the job (never Range or If-Range). */
  readonly headers?: Record<string, string>;
  /** Awaited after every chunk written: a rate limit shared by downloads. */
  readonly throttle?: (bytes: number) => Promise<void>;
}

export class PieceWorker {
  readonly meter: RateMeter;
  mirror: number;
  active = false;
  dead = false;
  private failures = 0;
  /** The probe's 206 response (from byte 0 to pendingLast), handed to the slot that owns byte 0. */
  private pending: RangeResponse | undefined;
  private pendingLast = -1;
  private readonly writer: SlotWriter;

  constructor(
    readonly id: number,
    readonly link: Link,
    /** GETs over this slot's link (http:// over `plain`, the slot's own keep-alive connection). */
    private readonly fetch: Fetch,
    private readonly job: Job,
    mirror: number,
    private readonly plain: LinkHttpClient,
  ) {
    this.mirror = mirror;
    this.meter = new RateMeter(job.clock);
    this.writer = new SlotWriter(job.file, job.plan);
  }

  adoptFirstResponse(res: RangeResponse, last: number): void {
    this.pending = res;
    this.pendingLast = last;
  }

  async run(): Promise<void> {
    const { job } = this;
    try {
      while (!job.signal.aborted && !job.plan.complete()) {
        const piece = job.plan.assign(this.id, (w) => job.rateOf(w));
        if (!piece) {
          this.dropPending();
          await job.waitChange(250);
          continue;
        }
        this.active = true;
        try {
          await this.fetchPiece(piece);
          this.failures = 0;
          if (piece.pos >= piece.end) job.plan.finish(piece);
          else job.plan.release(piece);
        } catch (err) {
          job.plan.release(piece);
          if (job.signal.aborted) return;
          if (!this.handleFailure(err)) return;
          await sleep(backoffDelay(this.failures, job.backoff), job.signal);
        } finally {
          this.active = false;
          job.notify();
        }
      }
    } finally {
      this.dropPending();
      this.plain.close();
    }
  }

  /** Returns false when this slot should stop. */
  private handleFailure(err: unknown): boolean {
    const { job } = this;
    if (isLocalFatal(err)) {
      job.fail(fileError(err, job.partPath, true));
      return false;
    }
    const mirror = job.mirrors[this.mirror];
    if (isFatal(err) && mirror) {
      mirror.alive = false;
      const next = job.mirrors.findIndex((m) => m.alive);
      if (next < 0) {
        job.fail(err);
        return false;
      }
      job.notice(`${redactUrl(mirror.url)} dropped: ${describe(err)}`);
      this.mirror = next;
      return true;
    }
    this.failures++;
    if (this.failures > job.retries) {
      this.dead = true;
      job.notice(
        `link ${this.link.id} gave up after ${this.failures} failures in a row (${describe(err)}); ` +
          `its ranges moved to the other links`,
      );
      return false;
    }
    return true;
  }

  private dropPending(): void {
    if (this.pending) discard(this.pending.body);
    this.pending = undefined;
  }

  private async fetchPiece(piece: Piece): Promise<void> {
    const { job } = this;
    const mirror = job.mirrors[this.mirror];
    if (!mirror) throw new LinkmuxError('LINKMUX_ERR_ALL_LINKS_FAILED', 'no usable URL is left');
    let res: RangeResponse;
    let expected: { start: number; last: number };
    if (this.pending && piece.pos === 0) {
      res = this.pending;
      this.pending = undefined;
      expected = { start: 0, last: this.pendingLast };
    } else {
      this.dropPending();
      const ifRange = ifRangeValue(mirror.validators);
      // The piece may shrink while the request is in flight: check the reply against what was asked.
      const asked = { start: piece.pos, last: piece.end - 1 };
      res = await this.fetch(mirror.url, {
        headers: {
          ...job.headers,
          range: `bytes=${asked.start}-${asked.last}`,
          ...(ifRange ? { 'if-range': ifRange } : {}),
        },
        signal: job.signal,
        stallTimeoutMs: job.stallTimeoutMs,
      });
      expected = this.checkReply(res, mirror, asked);
    }
    try {
      await this.consume(res, piece, expected.last + 1);
    } finally {
      // Whatever was received is kept, also when the reply broke off or the job stops.
      await this.writer.flush().catch((err: unknown) => {
        throw fileError(err, job.partPath, true);
      });
    }
  }

  /** Validates a reply to a range request; returns the range it carries. */
  private checkReply(
    res: RangeResponse,
    mirror: Mirror,
    asked: { start: number; last: number },
  ): { start: number; last: number } {
    const where = redactUrl(mirror.url);
    if (res.status === 206) {
      const raw = header(res.headers, 'content-range');
      const cr = parseContentRange(raw);
      if (!sameVersion(mirror.validators, validatorsOf(res.headers))) {
        discard(res.body);
        throw changed(where);
      }
      if (
        !cr ||
        cr.start !== asked.start ||
        cr.last > asked.last ||
        (cr.total !== undefined && cr.total !== this.job.size)
      ) {
        discard(res.body);
        if (cr?.total !== undefined && cr.total !== this.job.size) throw changed(where);
        throw new LinkmuxError(
          'LINKMUX_ERR_BAD_RESPONSE',
          `the server sent Content-Range "${raw ?? ''}" for bytes=${asked.start}-${asked.last} at ${where}: ` +
            `it does not honour ranges correctly; try another mirror or download without linkmux`,
        );
      }
      return cr;
    }
    if (res.status === 200) {
      const length = parseContentLength(header(res.headers, 'content-length'));
      discard(res.body);
      if (
        !sameVersion(mirror.validators, validatorsOf(res.headers)) ||
        (length !== undefined && length !== this.job.size)
      ) {
        throw changed(where);
      }
      throw new LinkmuxError(
        'LINKMUX_ERR_RANGE_IGNORED',
        `the server stopped honouring Range requests at ${where} (it sent the whole file): ` +
          `the partial download is kept; retry later with -c`,
      );
    }
    if (res.status === 416) {
      discard(res.body);
      throw changed(where);
    }
    throw statusError(res, mirror.url);
  }

  /** Streams the body into the file until the piece (which may shrink meanwhile) is complete. */
  private async consume(res: RangeResponse, piece: Piece, replyEnd: number): Promise<void> {
    const { job } = this;
    for await (const chunk of res.body) {
      const at = piece.pos;
      const n = job.plan.claim(piece, chunk.length);
      if (n > 0) {
        this.meter.add(n);
        try {
          // Copied into the slot's buffer; the plan marks the bytes written when they reach the file.
          const wait = this.writer.push(piece, chunk, n, at, this.meter.rate());
          if (wait) await wait;
        } catch (err) {
          throw fileError(err, job.partPath, true);
        }
        if (job.throttle) await job.throttle(n);
      }
      // The piece was cut short by a thief: stop here (this closes the connection).
      // When the reply ends where the piece ends, read on to its end so the connection is reused.
      if (piece.pos >= piece.end && piece.end < replyEnd) return;
    }
    if (piece.pos < Math.min(replyEnd, piece.end)) {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONNECT',
        `the connection on link ${this.link.id} ended early at byte ${piece.pos}`,
      );
    }
    // A reply that carried less than the piece (a server that caps ranges) leaves the rest for the next request.
  }
}

function changed(where: string): LinkmuxError {
  return new LinkmuxError(
    'LINKMUX_ERR_FILE_CHANGED',
    `the file at ${where} changed during the download (its size or ETag/Last-Modified differ): ` +
      `rerun with --overwrite to fetch the new version`,
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
