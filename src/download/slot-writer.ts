/**
 * Batched positioned writes for one connection slot.
 *
 * The chunks a slot receives are kept (not copied) until about a quarter of a
 * second of its traffic (64 KiB to 1 MiB) is gathered, then written with one
 * pwritev at their offset, instead of one write per socket read: at 400 Mbit/s
 * a write per 64 KiB read cost a thread-pool round trip, a promise and a futex
 * wake-up some 16,000 times per GiB. Copying into a slot buffer instead was
 * measured too and cost more (a third copy of every byte, out of cache by the
 * time it was written). One batch is written while the next one fills, so the
 * socket is read meanwhile; a second full batch waits for the first write.
 *
 * Guarantees: a piece's `written` mark advances only after its bytes are in
 * the file, in order (one write in flight per slot), so the control file
 * still never claims a byte that is not on disk; `flush()` writes whatever is
 * buffered, so an interrupted slot keeps every byte it received.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Piece, RangePlan } from './range-plan.js';

/** Largest batch per write; the size follows the slot's rate below that. */
export const MAX_WRITE_BUFFER = 1024 * 1024;
const MIN_WRITE_BUFFER = 64 * 1024;
/** A buffer holds about this much of the slot's traffic, so slow links still report progress often. */
const BUFFER_SECONDS = 0.25;

export class SlotWriter {
  /** Received chunks not yet handed to a write (the socket's own buffers: no copy). */
  private chunks: Buffer[] = [];
  private filled = 0;
  /** File offset of the first buffered byte, and the piece it belongs to. */
  private at = 0;
  private piece: Piece | undefined;
  private inflight: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly file: FileHandle,
    private readonly plan: RangePlan,
    private readonly maxBuffer = MAX_WRITE_BUFFER,
  ) {}

  /**
   * Takes `n` bytes of `chunk` received for `piece` at file offset `at` (the
   * bytes just claimed; the chunk must not be reused by the caller). Returns a
   * promise when the caller should wait before reading on: a batch is ready
   * while the previous write is still in flight.
   */
  push(
    piece: Piece,
    chunk: Buffer,
    n: number,
    at: number,
    rate: number | undefined,
  ): Promise<void> | undefined {
    if (this.failure !== undefined) throw this.failure;
    if (this.piece !== piece || this.at + this.filled !== at) {
      if (this.filled > 0 || this.inflight)
        return this.flush().then(() => this.push(piece, chunk, n, at, rate));
      this.piece = piece;
      this.at = at;
    }
    this.chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    this.filled += n;
    if (this.filled < this.limit(rate)) return undefined;
    if (!this.inflight) {
      this.startWrite();
      return undefined;
    }
    return this.inflight.then(() => {
      if (this.failure !== undefined) throw this.failure;
      if (this.filled > 0) this.startWrite();
    });
  }

  /** Writes what is buffered and waits for every write; throws the first write error. */
  async flush(): Promise<void> {
    if (this.inflight) await this.inflight;
    if (this.failure === undefined && this.filled > 0) {
      this.startWrite();
      await this.inflight;
    }
    if (this.failure !== undefined) throw this.failure;
  }

  private limit(rate: number | undefined): number {
    const want = rate === undefined ? MIN_WRITE_BUFFER : Math.ceil(rate * BUFFER_SECONDS);
    return Math.max(MIN_WRITE_BUFFER, Math.min(this.maxBuffer, want));
  }

  /** Starts writing the buffered chunks (no write may be in flight). */
  private startWrite(): void {
    const chunks = this.chunks;
    const length = this.filled;
    const piece = this.piece as Piece;
    const at = this.at;
    this.chunks = [];
    this.filled = 0;
    this.at = at + length;
    const write = writeAll(this.file, chunks, at).then(
      () => {
        this.plan.markWritten(piece, length);
        if (this.inflight === write) this.inflight = undefined;
      },
      (err: unknown) => {
        this.failure ??= err;
        if (this.inflight === write) this.inflight = undefined;
      },
    );
    this.inflight = write;
  }
}

/** pwritev until every byte is down (a short write is legal, if rare for files). */
async function writeAll(file: FileHandle, chunks: Buffer[], at: number): Promise<void> {
  let pos = at;
  let rest = chunks;
  while (rest.length > 0) {
    const { bytesWritten } = await file.writev(rest, pos);
    if (bytesWritten <= 0) throw new Error(`short write at byte ${pos}`);
    pos += bytesWritten;
    let skip = bytesWritten;
    const next: Buffer[] = [];
    for (const c of rest) {
      if (skip >= c.length) skip -= c.length;
      else {
        next.push(skip > 0 ? c.subarray(skip) : c);
        skip = 0;
      }
    }
    rest = next;
  }
}
