/**
 * The slot writer: bytes reach the file at their offsets, a piece's `written`
 * mark moves only after its bytes are in the file, flush() keeps what was
 * buffered, and a failed write surfaces instead of being marked written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { RangePlan } from '../../src/download/range-plan.js';
import { SlotWriter } from '../../src/download/slot-writer.js';
import { tempDir } from '../helpers/loopback.js';

const KiB = 1024;

/** Feeds `data` for the plan's first piece in chunks of `chunk` bytes, as a piece worker does. */
async function feed(w: SlotWriter, plan: RangePlan, data: Buffer, chunk: number, rate?: number) {
  const piece = plan.assign(0, () => undefined);
  assert.ok(piece);
  for (let off = 0; off < data.length; off += chunk) {
    const c = data.subarray(off, off + chunk);
    const at = piece.pos;
    const n = plan.claim(piece, c.length);
    const wait = w.push(piece, c, n, at, rate);
    if (wait) await wait;
  }
  return piece;
}

test('bytes land at their offsets; written moves only when they are in the file', async () => {
  const tmp = await tempDir();
  const path = join(tmp.dir, 'f');
  const fh = await open(path, 'w+');
  try {
    const data = randomBytes(3 * 1024 * KiB + 777);
    const plan = new RangePlan(data.length, [], 1);
    // 4 MiB/s → 1 MiB buffers: several writes, and a partial buffer left for flush().
    const w = new SlotWriter(fh, plan);
    const piece = await feed(w, plan, data, 60 * KiB + 3, 4 * 1024 * KiB);
    assert.equal(piece.pos, data.length, 'every byte claimed');
    assert.ok(piece.written < piece.pos, 'the tail is still buffered before flush()');
    // Whatever is marked written is really in the file (a write still in flight may move the mark
    // while the file is read: take the mark first).
    const marked = piece.written;
    const early = await readFile(path);
    assert.ok(early.length >= marked);
    assert.ok(early.subarray(0, marked).equals(data.subarray(0, marked)));
    await w.flush();
    assert.equal(piece.written, data.length);
    assert.ok((await readFile(path)).equals(data));
  } finally {
    await fh.close();
    await tmp.cleanup();
  }
});

test('a slow slot writes small buffers (progress and resume stay fine-grained)', async () => {
  const tmp = await tempDir();
  const fh = await open(join(tmp.dir, 'f'), 'w+');
  const sizes: number[] = [];
  // Counts the bytes of each write (one pwritev of the received chunks per batch).
  const spy = new Proxy(fh, {
    get(target, prop, recv) {
      if (prop === 'writev')
        return (bufs: Buffer[], pos: number) => {
          sizes.push(bufs.reduce((s, b) => s + b.length, 0));
          return target.writev(bufs, pos);
        };
      const v = Reflect.get(target, prop, recv) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as FileHandle;
  try {
    const data = randomBytes(512 * KiB);
    const plan = new RangePlan(data.length, [], 1);
    const w = new SlotWriter(spy, plan);
    await feed(w, plan, data, 16 * KiB, 256 * KiB); // 256 KiB/s: 64 KiB buffers
    await w.flush();
    assert.equal(sizes.length, 8, `writes: ${sizes.join(',')}`);
    assert.ok(sizes.every((s) => s === 64 * KiB));
  } finally {
    await fh.close();
    await tmp.cleanup();
  }
});

test('a failed write is reported and its bytes are not marked written', async () => {
  const tmp = await tempDir();
  const path = join(tmp.dir, 'f');
  const fh = await open(path, 'w+');
  const ro = await open(path, 'r'); // writes to a read-only handle fail with EBADF
  try {
    const plan = new RangePlan(256 * KiB, [], 1);
    const w = new SlotWriter(ro, plan);
    const piece = await feed(w, plan, randomBytes(100 * KiB), 50 * KiB).catch(() => undefined);
    await assert.rejects(w.flush(), (err: NodeJS.ErrnoException) => err.code === 'EBADF');
    const p = piece ?? plan.owned()[0];
    assert.equal(p?.written, 0);
  } finally {
    await ro.close();
    await fh.close();
    await tmp.cleanup();
  }
});
