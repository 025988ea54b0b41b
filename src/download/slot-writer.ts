/**
 * Buffered positioned writes for one connection slot.
 *
 * Received bytes are copied into a slot buffer and written with one pwrite
 * when it is full, the piece ends or the slot stops, instead of one write per
 * socket read (64 KiB): at 400 Mbit/s a write per read cost a thread-pool
 * round trip, a promise and a futex wake-up some 16,000 times per GiB, and the
 * read buffers stayed alive across the write, long enough to reach V8's old
 * space and be freed only by full collections. Two buffers alternate, so the
 * socket is read while the previous buffer is being written.
 *
 * Guarantees: a piece's `written` mark advances only after its bytes are in
 * the file, in order (one write in flight per slot), so the control file
 * still never claims a byte that is not on disk; `flush()` writes whatever is
 * buffered, so an interrupted slot keeps every byte it received.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Piece, RangePlan } from './range-plan.js';

/** Largest buffer per slot (two of them); the size follows the slot's rate below that. */
export const MAX_WRITE_BUFFER = 1024 * 1024;
const MIN_WRITE_BUFFER = 64 * 1024;
/** A buffer holds about this much of the slot's traffic, so slow links still report progress often. */
const BUFFER_SECONDS = 0.25;

export class SlotWriter {
  private readonly buffers: Buffer[] = [];
  private current = 0;
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
   * bytes just claimed). Returns a promise when the caller should wait before
   * reading on (the previous write is still in flight and this buffer is full).
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
    const limit = this.limit(rate);
    let done = 0;
    while (done < n) {
      if (this.filled >= limit) {
        if (this.inflight) {
          // Both buffers are busy: wait for the write in flight, then go on with the rest.
          const rest = chunk.subarray(done, n);
          return this.inflight.then(() => {
            if (this.failure !== undefined) throw this.failure;
            this.startWrite();
            return this.push(piece, rest, rest.length, at + done, rate);
          });
        }
        this.startWrite();
      }
      const take = Math.min(n - done, limit - this.filled);
      chunk.copy(this.buffer(), this.filled, done, done + take);
      this.filled += take;
      done += take;
    }
    if (this.filled >= limit && !this.inflight) this.startWrite();
    return undefined;
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

  private buffer(): Buffer {
    let buf = this.buffers[this.current];
    if (!buf) {
      buf = Buffer.allocUnsafeSlow(this.maxBuffer);
      this.buffers[this.current] = buf;
    }
    return buf;
  }

  /** Starts writing the current buffer (no write may be in flight) and switches to the other one. */
  private startWrite(): void {
    const buf = this.buffer();
    const length = this.filled;
    const piece = this.piece as Piece;
    const at = this.at;
    this.current ^= 1;
    this.filled = 0;
    this.at = at + length;
    const write = writeAll(this.file, buf, length, at).then(
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

/** pwrite until every byte is down (a short write is legal, if rare for files). */
async function writeAll(file: FileHandle, buf: Buffer, length: number, at: number): Promise<void> {
  let off = 0;
  while (off < length) {
    const { bytesWritten } = await file.write(buf, off, length - off, at + off);
    if (bytesWritten <= 0) throw new Error(`short write at byte ${at + off}`);
    off += bytesWritten;
  }
}
