// ReadHold's decisions with a fake clock and a recording SO_RCVLOWAT setter: who is held, for how long, and who never is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { ReadHold, coalesceFor, coalesceFromEnv, DEFAULT_COALESCE } from '../../src/proxy/read-coalescing.js';
import { FakeClock } from '../../src/util/clock.js';

const FD = 42;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(opts = { ...DEFAULT_COALESCE, maxHoldMs: 5 }) {
  const marks: number[] = [];
  const src = { destroyed: false, _handle: { fd: FD } } as unknown as Duplex & { destroyed: boolean };
  const clock = new FakeClock(1_000);
  const hold = new ReadHold(
    src,
    opts,
    (fd, bytes) => {
      assert.equal(fd, FD);
      marks.push(bytes);
      return true;
    },
    clock,
  );
  /** Reads of `size` bytes every `everyMs` for `forMs`. */
  const feed = (size: number, everyMs: number, forMs: number) => {
    for (let t = 0; t < forMs; t += everyMs) {
      clock.advance(everyMs);
      hold.afterRead(size);
    }
  };
  return { marks, src, clock, hold, feed };
}

test('a lone small read after idle is not held', () => {
  const { marks, hold, clock } = setup();
  clock.advance(10_000);
  hold.afterRead(10);
  clock.advance(5_000);
  hold.afterRead(10);
  assert.deepEqual(marks, []);
  assert.equal(hold.holding, false);
});

test('a bulk stream of small reads is held until its mark is lowered after maxHoldMs', async () => {
  const { marks, hold, feed } = setup();
  // 1448 B per ms ≈ 1.4 MB/s: bulk after its first whole 100 ms window.
  feed(1448, 1, 150);
  assert.deepEqual(marks, [DEFAULT_COALESCE.targetBytes], 'raised once, kept while the stream stays bulk');
  assert.equal(hold.holding, true);
  await sleep(30);
  assert.deepEqual(marks, [DEFAULT_COALESCE.targetBytes, 1], 'lowered by the release timer');
  assert.equal(hold.holding, false);
});

test('a slow feed of small messages (20 Hz game updates) is never held', () => {
  const { marks, feed } = setup();
  feed(1000, 50, 5_000);
  assert.deepEqual(marks, []);
});

test('a full read keeps the mark up (it is working); after a pause the first read lowers it and is not held', () => {
  const { marks, hold, feed, clock } = setup();
  feed(1448, 1, 150);
  hold.afterRead(DEFAULT_COALESCE.targetBytes);
  assert.deepEqual(marks, [DEFAULT_COALESCE.targetBytes], 'a read that filled the mark leaves it up');
  clock.advance(2_000);
  hold.afterRead(100);
  assert.deepEqual(marks, [DEFAULT_COALESCE.targetBytes, 1], 'the first read after the pause lowers it');
  assert.equal(hold.lowWater, 1);
});

test('a stream bulk for sustainedMs (a transfer) waits for larger reads, for longer; a pause makes it fresh again', async () => {
  const opts = { ...DEFAULT_COALESCE, maxHoldMs: 5, sustainedHoldMs: 40 };
  const { marks, hold, feed, clock } = setup(opts);
  feed(1448, 1, 150);
  assert.equal(hold.lowWater, opts.targetBytes, 'a fresh bulk stream: the short target');
  feed(1448, 1, opts.sustainedMs);
  assert.equal(hold.lowWater, opts.sustainedTargetBytes, 'after sustainedMs: the transfer target');
  assert.deepEqual(marks, [opts.targetBytes, opts.sustainedTargetBytes]);
  // The short batch (5 ms) releases the hold it joined first; the next hold joins the long batch.
  await sleep(20);
  assert.equal(hold.lowWater, 1, 'released by the short timer');
  feed(1448, 1, 10);
  assert.equal(hold.holding, true);
  await sleep(15);
  assert.equal(hold.holding, true, 'a transfer is still held after the short hold');
  await sleep(60);
  assert.equal(hold.holding, false, 'released within sustainedHoldMs');
  clock.advance(2_000);
  hold.afterRead(100);
  feed(1448, 1, 150);
  assert.equal(hold.lowWater, opts.targetBytes, 'after a pause the stream starts fresh');
});

test('a read that fills the mark during a hold restarts the hold: no second, small read when it ends', async () => {
  const opts = { ...DEFAULT_COALESCE, maxHoldMs: 15 };
  const { marks, hold, feed } = setup(opts);
  feed(1448, 1, 150);
  assert.equal(hold.holding, true);
  hold.afterRead(opts.targetBytes); // the mark was met before the hold ended
  await sleep(20); // the hold's batch has fired
  assert.deepEqual(marks, [opts.targetBytes], 'the mark stays up past the first batch');
  assert.equal(hold.holding, true, 'held for one more hold, from the full read');
  await sleep(40);
  assert.deepEqual(marks, [opts.targetBytes, 1], 'lowered when the restarted hold ends');
  assert.equal(hold.holding, false);
});

test('a fast stream of small reads (TLS records at 16 MB/s) is not held: it fills the target within ms', () => {
  const { marks, feed } = setup();
  feed(16 * 1024, 1, 1_000);
  assert.deepEqual(marks, []);
});

test('a cancelled hold never touches the (possibly closed) descriptor again', async () => {
  const { marks, hold, feed } = setup();
  feed(1448, 1, 150);
  hold.cancel();
  await sleep(30);
  assert.deepEqual(marks, [DEFAULT_COALESCE.targetBytes]);
});

test('nothing is held without a descriptor or without the setter', () => {
  const clock = new FakeClock(0);
  const noFd = { destroyed: false, _handle: null } as unknown as Duplex;
  const marks: number[] = [];
  const a = new ReadHold(noFd, DEFAULT_COALESCE, (_fd, b) => marks.push(b) > 0, clock);
  const b = new ReadHold(
    { destroyed: false, _handle: { fd: 3 } } as unknown as Duplex,
    DEFAULT_COALESCE,
    undefined,
    clock,
  );
  for (let i = 0; i < 300; i++) {
    clock.advance(1);
    a.afterRead(1448);
    b.afterRead(1448);
  }
  assert.deepEqual(marks, []);
  assert.equal(a.holding || b.holding, false);
});

test('limits.relayHold: 0 turns coalescing off, the default is DEFAULT_COALESCE, others set the longest hold', () => {
  assert.equal(coalesceFor(0), false);
  assert.equal(coalesceFor(20), DEFAULT_COALESCE);
  const short = coalesceFor(7);
  assert.ok(short);
  assert.equal(short.sustainedHoldMs, 7);
  assert.equal(short.maxHoldMs, 7, "a hold shorter than the fresh streams' default shortens both");
  assert.equal(short.targetBytes, DEFAULT_COALESCE.targetBytes);
  const long = coalesceFor(300);
  assert.ok(long);
  assert.equal(long.sustainedHoldMs, 300);
  assert.equal(long.maxHoldMs, DEFAULT_COALESCE.maxHoldMs);
});

test('LINKMUX_RELAY_COALESCE overrides the config: 0 off, a number of ms, unset or junk leaves the config', () => {
  assert.equal(coalesceFromEnv('0'), false);
  assert.equal(coalesceFromEnv(undefined), undefined);
  assert.equal(coalesceFromEnv(' '), undefined);
  assert.equal(coalesceFromEnv('abc'), undefined);
  assert.equal(coalesceFromEnv('-5'), undefined);
  const c = coalesceFromEnv('50');
  assert.ok(c);
  assert.equal(c.sustainedHoldMs, 50);
});
