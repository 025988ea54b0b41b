/**
 * Which bytes each connection fetches next: pure bookkeeping, no I/O, no clock.
 *
 * The file is cut into one piece per connection at the start. A connection that
 * finishes takes an unowned piece if there is one; otherwise it steals the tail
 * of the piece that would finish last, split in proportion to the two
 * connections' measured rates so both end together. That keeps fast links busy,
 * hides a slow link's tail and moves the ranges of a stalled link (rate 0) to
 * the others. Pieces only ever shrink from the end, so an owner that is
 * mid-request simply stops early when it reaches its new end.
 *
 * Invariants (tested): pieces never overlap, and the union of every piece's
 * [start, end) plus the ranges done before the plan started is the whole file.
 */

/** A byte range [start, end). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface Piece {
  readonly id: number;
  readonly start: number;
  /** Exclusive end; only ever decreases (when a thief takes the tail). */
  end: number;
  /** Next byte the owner will receive; bytes in [start, pos) are claimed. */
  pos: number;
  /** Bytes in [start, written) are on disk. */
  written: number;
  owner: number | undefined;
}

export interface PlanOptions {
  /** Smallest piece worth a new request, in bytes (default 128 KiB). */
  minPiece?: number;
}

/** Measured rate of a worker in bytes/s; 0 = stalled, undefined = not known yet. */
export type RateOf = (worker: number) => number | undefined;

const DEFAULT_MIN_PIECE = 128 * 1024;

export class RangePlan {
  readonly size: number;
  private readonly pieces: Piece[] = [];
  private readonly minPiece: number;
  private readonly doneBefore: ByteRange[];
  private nextId = 0;

  /**
   * @param size   file size in bytes
   * @param done   ranges already on disk (from a control file)
   * @param slots  how many connections will work; the missing bytes are cut into that many pieces
   */
  constructor(size: number, done: readonly ByteRange[], slots: number, opts: PlanOptions = {}) {
    this.size = size;
    this.minPiece = opts.minPiece ?? DEFAULT_MIN_PIECE;
    this.doneBefore = normalizeRanges(done, size);
    const missing = complementRanges(this.doneBefore, size);
    const totalMissing = missing.reduce((s, r) => s + (r.end - r.start), 0);
    for (const r of missing) {
      const len = r.end - r.start;
      const share = Math.max(1, Math.round((slots * len) / Math.max(1, totalMissing)));
      const count = Math.max(1, Math.min(share, Math.floor(len / this.minPiece) || 1));
      for (let i = 0; i < count; i++) {
        const start = r.start + Math.floor((len * i) / count);
        const end = r.start + Math.floor((len * (i + 1)) / count);
        this.pieces.push(this.makePiece(start, end));
      }
    }
  }

  private makePiece(start: number, end: number, owner?: number): Piece {
    return { id: this.nextId++, start, end, pos: start, written: start, owner };
  }

  /** Bytes still to be received (claimed bytes count as received). */
  remaining(): number {
    return this.pieces.reduce((s, p) => s + (p.end - p.pos), 0);
  }

  /** True when every byte is on disk. */
  complete(): boolean {
    return this.pieces.every((p) => p.written >= p.end);
  }

  /** Bytes on disk, including those done before this plan. */
  writtenBytes(): number {
    const before = this.doneBefore.reduce((s, r) => s + (r.end - r.start), 0);
    return before + this.pieces.reduce((s, p) => s + (p.written - p.start), 0);
  }

  /** Ranges on disk, merged and sorted: what the control file records. */
  doneRanges(): ByteRange[] {
    const parts = [...this.doneBefore];
    for (const p of this.pieces) if (p.written > p.start) parts.push({ start: p.start, end: p.written });
    return normalizeRanges(parts, this.size);
  }

  /** Pieces currently owned by someone (for display and tests). */
  owned(): readonly Piece[] {
    return this.pieces.filter((p) => p.owner !== undefined && p.pos < p.end);
  }

  /**
   * The next piece for `worker`: an unowned piece, else the stolen tail of the
   * piece expected to finish last. Undefined when nothing is worth taking now.
   */
  assign(worker: number, rateOf: RateOf): Piece | undefined {
    const free = this.pieces.find((p) => p.owner === undefined && p.pos < p.end);
    if (free) {
      free.owner = worker;
      return free;
    }
    return this.steal(worker, rateOf);
  }

  private steal(worker: number, rateOf: RateOf): Piece | undefined {
    const mine = rateOf(worker);
    let best: { piece: Piece; finish: number } | undefined;
    for (const p of this.pieces) {
      if (p.owner === undefined || p.owner === worker) continue;
      const left = p.end - p.pos;
      // A stalled owner (rate 0) gives up even a crumb; a live one keeps it.
      if (left <= 0 || (left < 2 * this.minPiece && rateOf(p.owner) !== 0)) continue;
      const rate = rateOf(p.owner);
      const finish = rate === 0 ? Infinity : left / (rate ?? 1);
      if (
        !best ||
        finish > best.finish ||
        (finish === best.finish && left > best.piece.end - best.piece.pos)
      ) {
        best = { piece: p, finish };
      }
    }
    if (!best) return undefined;
    const victim = best.piece;
    const left = victim.end - victim.pos;
    const at = victim.pos + Math.round(left * ownerShare(rateOf(victim.owner as number), mine));
    const take = victim.end - at;
    if (take <= 0 || (take < this.minPiece && rateOf(victim.owner as number) !== 0)) return undefined;
    const piece = this.makePiece(at, victim.end, worker);
    victim.end = at;
    this.pieces.push(piece);
    this.pieces.sort((a, b) => a.start - b.start);
    return piece;
  }

  /** The owner received `bytes` more (before writing them). Returns how many fit in the piece. */
  claim(piece: Piece, bytes: number): number {
    const n = Math.max(0, Math.min(bytes, piece.end - piece.pos));
    piece.pos += n;
    return n;
  }

  /** `bytes` more of the piece reached the disk, in order. */
  markWritten(piece: Piece, bytes: number): void {
    piece.written = Math.min(piece.written + bytes, piece.pos);
  }

  /** The owner gave up (error, abort): unwritten claimed bytes go back, the piece becomes free. */
  release(piece: Piece): void {
    piece.pos = piece.written;
    piece.owner = undefined;
    this.mergeFree();
  }

  /** The owner finished (pos reached end); it no longer owns anything. */
  finish(piece: Piece): void {
    piece.owner = undefined;
  }

  /** Adjacent unowned unfinished pieces merge, so a freed tail is not cut into crumbs. */
  private mergeFree(): void {
    for (let i = 0; i + 1 < this.pieces.length;) {
      const a = this.pieces[i] as Piece;
      const b = this.pieces[i + 1] as Piece;
      const aFreeTail = a.owner === undefined && a.pos < a.end && a.end === b.start;
      const bFree = b.owner === undefined && b.pos === b.start && b.written === b.start;
      if (aFreeTail && bFree) {
        a.end = b.end;
        this.pieces.splice(i + 1, 1);
      } else {
        i++;
      }
    }
  }
}

/** Share of the remaining bytes the owner keeps, from the two measured rates. */
function ownerShare(owner: number | undefined, thief: number | undefined): number {
  if (owner === 0) return 0;
  if (owner === undefined || thief === undefined || thief <= 0) return 0.5;
  return owner / (owner + thief);
}

/** Sorts, clips to [0, size) and merges overlapping or touching ranges. */
export function normalizeRanges(ranges: readonly ByteRange[], size: number): ByteRange[] {
  const clipped = ranges
    .map((r) => ({ start: Math.max(0, r.start), end: Math.min(size, r.end) }))
    .filter((r) => r.end > r.start)
    .sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [];
  for (const r of clipped) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/** The parts of [0, size) not covered by `done` (which must be normalized). */
export function complementRanges(done: readonly ByteRange[], size: number): ByteRange[] {
  const out: ByteRange[] = [];
  let at = 0;
  for (const r of done) {
    if (r.start > at) out.push({ start: at, end: r.start });
    at = Math.max(at, r.end);
  }
  if (at < size) out.push({ start: at, end: size });
  return out;
}
