/**
 * Coalescing of small reads on bulk streams, for the relay (pipe-sockets.ts).
 *
 * On a slow uplink a relayed download arrives a few TCP segments at a time,
 * and every arrival woke the event loop for one read, one 'data' event and
 * one write (and, on a node, one TLS record). Each wakeup costs about as much
 * as the bytes it moves. After a small read on a stream that is moving bulk
 * data, the source's SO_RCVLOWAT is raised to `targetBytes`: the kernel keeps
 * receiving and acknowledging (the sender is not slowed) and wakes us only
 * once that much is queued, or when the hold ends after at most `maxHoldMs`
 * (the mark is lowered again, which wakes us if anything is queued). One timer
 * ends every hold pending in the process, so held streams are read in the
 * same loop turn.
 *
 * A stream that has been bulk for `sustainedMs` without a pause is a transfer
 * (a download, a stream of video segments; a dip below the bulk rate of up to
 * 500 ms, as when two flows share a shaped uplink, is not a pause, though
 * nothing is held during it): its hold waits for
 * `sustainedTargetBytes` (48 KiB: one read of Node's 64 KiB buffer, and a mark
 * the kernel meets without clamping the window of a fresh socket), up to
 * `sustainedHoldMs` (20 ms). A transfer during which nothing was read the
 * other way for `sustainedMs` too is one-way (a download or an upload: the
 * request went before it, and only TCP's ACKs, which are not reads, come
 * back): its hold is `oneWayHoldMs` (config `limits.relayHold`, 100 ms by
 * default), so a flow at 0.5 MB/s is read every ~100 ms instead of every
 * 20 ms. A stream with traffic both ways (a remote desktop's input and
 * acknowledgements, SSH's window adjustments, HTTP/2's WINDOW_UPDATEs) keeps
 * the short hold, and a read the other way ends a one-way hold at once: the
 * answer to a keystroke or a new request never waits for it. A full read
 * leaves the mark up (it is working), so reads stay large, and a full read
 * during a hold restarts the hold when it ends: ending it would lower the mark
 * and wake the loop for the few bytes that came since the full read (at a
 * 100 ms hold that was a second, small read per hold, 272 → 76 reads/s).
 *
 * Guarantees: a stream is held only while it moves bulk data (at least
 * `bulkBytesPerSecond` over the last whole window of 100 ms, and too slowly
 * to fill `targetBytes` within 5 ms, beyond which reads are large anyway), so the first
 * bytes after idle, a request, an answer, a keystroke or a slow feed of small
 * messages (a game's 20 Hz updates) are never held; no byte waits longer than `maxHoldMs`
 * for being held (`sustainedHoldMs` on a transfer, `oneWayHoldMs` on a one-way one), or
 * twice that after a full read restarted the hold; FIN and errors are reported at once whatever the mark; bytes
 * are never reordered or copied (the socket is simply read later). Where the
 * mark cannot be set (not Linux, no koffi, a stream without a descriptor)
 * nothing is held.
 */
import type { Duplex } from 'node:stream';
import { receiveLowWater } from '../net/receive-low-water.js';
import type { LowWaterSetter } from '../net/receive-low-water.js';
import { systemClock } from '../util/clock.js';
import type { Clock } from '../util/clock.js';

export interface CoalesceOptions {
  /** The read size a hold waits for, in bytes (reads this large are not held). */
  targetBytes: number;
  /** The longest hold, in milliseconds. */
  maxHoldMs: number;
  /** A stream is bulk while its last 100 ms window averaged at least this rate. */
  bulkBytesPerSecond: number;
  /** A stream bulk for this long without a pause is a transfer: it gets the longer hold below. */
  sustainedMs: number;
  /** The read size a transfer's hold waits for, in bytes. */
  sustainedTargetBytes: number;
  /** A transfer's longest hold, in milliseconds. */
  sustainedHoldMs: number;
  /** A one-way transfer's longest hold (nothing read the other way for sustainedMs), in milliseconds. */
  oneWayHoldMs: number;
}

/**
 * Measured on the testbed and on loopback (bench/relay-cost.ts,
 * bench/relay-loopback.ts): see docs/architecture.md, "Relay cost per byte"
 * (a 100 ms hold costs ~30 % less CPU than 20 ms at 3 × 8 Mbit/s; it falls
 * only on one-way transfers, which no one is waiting on byte by byte).
 */
export const DEFAULT_COALESCE: Readonly<CoalesceOptions> = Object.freeze({
  targetBytes: 32 * 1024,
  maxHoldMs: 20,
  bulkBytesPerSecond: 160_000,
  sustainedMs: 1_000,
  sustainedTargetBytes: 48 * 1024,
  sustainedHoldMs: 20,
  oneWayHoldMs: 100,
});

/**
 * The options for a longest hold of `ms` (config `limits.relayHold`): a
 * one-way transfer's hold; every other stream's is the smaller of it and the
 * default's (20 ms). 0 turns coalescing off.
 */
export function coalesceFor(ms: number): Readonly<CoalesceOptions> | false {
  if (!(ms > 0)) return false;
  if (ms === DEFAULT_COALESCE.oneWayHoldMs) return DEFAULT_COALESCE;
  return Object.freeze({
    ...DEFAULT_COALESCE,
    maxHoldMs: Math.min(ms, DEFAULT_COALESCE.maxHoldMs),
    sustainedHoldMs: Math.min(ms, DEFAULT_COALESCE.sustainedHoldMs),
    oneWayHoldMs: ms,
  });
}

/**
 * LINKMUX_RELAY_COALESCE, for benchmarks: "0" turns coalescing off, a number
 * of ms sets the longest hold, over the config; undefined when unset or junk.
 */
export function coalesceFromEnv(
  value = process.env.LINKMUX_RELAY_COALESCE,
): Readonly<CoalesceOptions> | false | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const ms = Number(value);
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return coalesceFor(ms);
}

/** The descriptor under a net.Socket, or a tls.TLSSocket's TCP socket; undefined for other streams. */
function descriptorOf(src: Duplex): number | undefined {
  const fd = (src as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * One timer for every hold of the same length in the process: a wakeup costs
 * about as much as a read, so holds pending at the same time end together and
 * their streams are read in one loop turn.
 */
class ReleaseBatch {
  private holds: ReadHold[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ms: number) {}

  /** Ends `hold` with the pending batch (due within ms), or in ms. */
  join(hold: ReadHold): void {
    this.holds.push(hold);
    if (!this.timer) this.timer = setTimeout(this.fire, this.ms).unref();
  }

  private readonly fire = (): void => {
    const holds = this.holds;
    this.holds = [];
    this.timer = undefined;
    for (const h of holds) h.release();
  };
}

const batches = new Map<number, ReleaseBatch>();
function batchOf(ms: number): ReleaseBatch {
  let b = batches.get(ms);
  if (!b) batches.set(ms, (b = new ReleaseBatch(ms)));
  return b;
}

/** The window over which a stream's rate decides whether it is bulk, in ms. */
const WINDOW_MS = 100;
/** A stream that fills targetBytes faster than this (ms) is not held: ~52 Mbit/s at 32 KiB. */
const FAST_FILL_MS = 5;
/** Longer than this without a bulk window, a stream starts over as fresh (shorter: a dip). */
const PAUSE_MS = 500;

/** Decides, read by read, whether the next read of one source should wait for more bytes. */
export class ReadHold {
  private windowAt = Number.NEGATIVE_INFINITY;
  private windowBytes = 0;
  private bulk = false;
  /** When the stream last turned bulk (bulk since then without a pause). */
  private bulkSince = 0;
  /** When the last window that was bulk ended. */
  private lastBulkAt = Number.NEGATIVE_INFINITY;
  /** In a pending batch. */
  private held = false;
  /** A read filled the mark during the pending hold: the hold starts over when its batch ends. */
  private refilled = false;
  /** The length of the pending hold, ms. */
  private holdMs = 0;
  /** The pending hold is a one-way transfer's (longer than a two-way stream's): a read the other way ends it. */
  private oneWayHold = false;
  /** When this direction last read anything (passed on or pushed back). */
  private lastReadAt = Number.NEGATIVE_INFINITY;
  /** The hold of the same pair's other direction (pairWith); without one, no stream counts as one-way. */
  private other: ReadHold | undefined;
  /** The source's low-water mark (1, the default, when not raised). */
  private mark = 1;
  private fd: number | undefined | null = null;

  constructor(
    private readonly src: Duplex,
    private readonly opts: Readonly<CoalesceOptions> = DEFAULT_COALESCE,
    private readonly setLowWater: LowWaterSetter | undefined = receiveLowWater(),
    private readonly clock: Clock = systemClock,
  ) {}

  /** A hold is pending right now (for tests). */
  get holding(): boolean {
    return this.held;
  }

  /** The length of the pending hold in ms, undefined when none is (for tests). */
  get pendingHoldMs(): number | undefined {
    return this.held ? this.holdMs : undefined;
  }

  /** The source's current low-water mark (for tests). */
  get lowWater(): number {
    return this.mark;
  }

  /** Ties the two directions of one relayed pair: a read either way makes the other's stream two-way. */
  pairWith(other: ReadHold): void {
    this.other = other;
    other.other = this;
  }

  /** A read that was not passed on at once (the destination pushed back): still traffic this way. */
  sawRead(): void {
    if (!this.setLowWater) return;
    this.lastReadAt = this.clock.now();
    this.other?.otherWayRead();
  }

  /** After a read of n bytes was passed on (and the destination took it without back-pressure). */
  afterRead(n: number): void {
    if (!this.setLowWater) return;
    const now = this.clock.now();
    this.lastReadAt = now;
    this.other?.otherWayRead();
    const span = now - this.windowAt;
    if (span >= WINDOW_MS) {
      // A window that contains a pause averages low: the first read after idle is never held.
      // A stream that fills targetBytes within FAST_FILL_MS reads in large pieces anyway (the
      // loop is slower than it); marks would only add system calls and cut those reads short.
      const perMs = this.windowBytes / span;
      const bulk =
        perMs * 1000 >= this.opts.bulkBytesPerSecond && perMs * FAST_FILL_MS < this.opts.targetBytes;
      if (bulk) {
        // A dip (a window or a few below the bulk rate, as when two flows share a shaped
        // uplink and one is starved for a moment) does not end a transfer; a pause does.
        if (!this.bulk && this.windowAt - this.lastBulkAt > PAUSE_MS) this.bulkSince = now;
        this.lastBulkAt = now;
      }
      this.bulk = bulk;
      this.windowAt = now;
      this.windowBytes = 0;
    }
    this.windowBytes += n;
    if (!this.bulk) {
      if (this.mark > 1) this.lower();
      return;
    }
    // A transfer (bulk for sustainedMs without a pause) waits longer for larger reads.
    const sustained = now - this.bulkSince >= this.opts.sustainedMs;
    const target = sustained ? this.opts.sustainedTargetBytes : this.opts.targetBytes;
    // A full read under a raised mark is the mark working: it stays up (lowering it here
    // made the next segment wake us for a small read). A bulk stream that reads large
    // pieces unaided needs no mark.
    if (n >= target && this.mark === 1) return;
    if (this.mark !== target) {
      // Looked up once: a source without a descriptor (undefined) is not asked again per read.
      if (this.fd === null) this.fd = descriptorOf(this.src);
      if (this.fd === undefined || this.src.destroyed) return;
      if (!this.setLowWater(this.fd, target)) return;
      this.mark = target;
    }
    if (!this.held) {
      // One-way: nothing came the other way for as long as a transfer takes to be one.
      const oneWay =
        sustained &&
        this.opts.oneWayHoldMs > this.opts.sustainedHoldMs &&
        this.other !== undefined &&
        now - this.other.lastReadAt >= this.opts.sustainedMs;
      this.held = true;
      this.refilled = false;
      this.oneWayHold = oneWay;
      this.holdMs = oneWay
        ? this.opts.oneWayHoldMs
        : sustained
          ? this.opts.sustainedHoldMs
          : this.opts.maxHoldMs;
      batchOf(this.holdMs).join(this);
    } else if (n >= target) {
      // The mark did its work before the hold ended. Lowering it when the hold ends would
      // wake us for the few bytes that came since: a second, small read per hold.
      this.refilled = true;
    }
  }

  /** Forgets a pending hold (the pair is being torn down; its descriptor may already be closed). */
  cancel(): void {
    this.held = false;
    this.refilled = false;
    this.oneWayHold = false;
    this.mark = 1;
    this.other = undefined;
  }

  /**
   * The other direction read something: a one-way hold ends now (what the
   * other side sent may be a keystroke or a request waiting for these bytes).
   * Its batch's later release finds it not held; the stream is two-way from
   * here until the other side is quiet for sustainedMs again.
   */
  private otherWayRead(): void {
    if (!this.held || !this.oneWayHold) return;
    this.held = false;
    this.refilled = false;
    this.oneWayHold = false;
    if (this.mark > 1) this.lower();
  }

  /** Ends the hold: the mark goes back to 1, which wakes the loop if anything is queued. */
  release(): void {
    if (!this.held) return;
    if (this.refilled && !this.src.destroyed) {
      this.refilled = false;
      batchOf(this.holdMs).join(this);
      return;
    }
    this.held = false;
    this.oneWayHold = false;
    if (this.mark > 1) this.lower();
  }

  private lower(): void {
    this.mark = 1;
    if (this.fd !== undefined && this.fd !== null && !this.src.destroyed) this.setLowWater?.(this.fd, 1);
  }
}
