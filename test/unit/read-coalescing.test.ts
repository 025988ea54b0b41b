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

test('a dip below the bulk rate (a flow starved for a moment on a shared uplink) does not end a transfer; a pause does', async () => {
  const opts = { ...DEFAULT_COALESCE, maxHoldMs: 5, sustainedHoldMs: 5 };
  const { hold, feed, clock } = setup(opts);
  feed(1448, 1, 150 + opts.sustainedMs);
  await sleep(15); // the first hold's batch fires
  feed(1448, 1, 10);
  assert.equal(hold.lowWater, opts.sustainedTargetBytes, 'a transfer');
  feed(200, 50, 300); // 4 KB/s for 300 ms
  assert.equal(hold.lowWater, 1, 'nothing is held during the dip');
  await sleep(15);
  feed(1448, 1, 250);
  assert.equal(hold.lowWater, opts.sustainedTargetBytes, 'still a transfer after a 300 ms dip');
  await sleep(15);
  clock.advance(600); // nothing for 600 ms: a pause
  feed(1448, 1, 250);
  assert.equal(hold.lowWater, opts.targetBytes, 'fresh after a pause');
  hold.cancel();
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

/** Both directions of one relayed pair on one fake clock: `down` carries the transfer, `up` the other way. */
function pairSetup(opts: typeof DEFAULT_COALESCE) {
  const marks: number[] = [];
  const clock = new FakeClock(1_000);
  const make = (fd: number) =>
    new ReadHold(
      { destroyed: false, _handle: { fd } } as unknown as Duplex,
      opts,
      (got, bytes) => {
        if (got === FD) marks.push(bytes);
        return true;
      },
      clock,
    );
  const down = make(FD);
  const up = make(FD + 1);
  down.pairWith(up);
  /** `down` reads 1448 B every ms for `forMs`; `up` reads a few bytes every `upEveryMs` (0: never). */
  const feed = (forMs: number, upEveryMs = 0) => {
    for (let t = 1; t <= forMs; t++) {
      clock.advance(1);
      down.afterRead(1448);
      if (upEveryMs > 0 && t % upEveryMs === 0) up.afterRead(40);
    }
  };
  /** Bulk long enough to be a transfer, then the first hold released, then a fresh hold. */
  const transfer = async (upEveryMs = 0) => {
    up.afterRead(80); // the request
    feed(150 + opts.sustainedMs, upEveryMs);
    await sleep(opts.maxHoldMs + 15);
    feed(10, upEveryMs);
  };
  return { marks, down, up, transfer };
}

const ONE_WAY = { ...DEFAULT_COALESCE, maxHoldMs: 5, sustainedHoldMs: 10, oneWayHoldMs: 60_000 };

test('a one-way transfer (nothing read the other way for sustainedMs) gets the long hold', async () => {
  const { down, transfer } = pairSetup(ONE_WAY);
  await transfer();
  assert.equal(down.pendingHoldMs, ONE_WAY.oneWayHoldMs);
  assert.equal(down.lowWater, ONE_WAY.sustainedTargetBytes);
  down.cancel();
});

test('a transfer with reads the other way (acknowledgements, input) keeps the short hold', async () => {
  const { down, transfer } = pairSetup(ONE_WAY);
  await transfer(500);
  assert.equal(down.pendingHoldMs, ONE_WAY.sustainedHoldMs);
  down.cancel();
});

test('a read the other way ends a one-way hold at once (the answer to a keystroke never waits for it)', async () => {
  for (const how of ['afterRead', 'sawRead'] as const) {
    const { marks, down, up, transfer } = pairSetup(ONE_WAY);
    await transfer();
    assert.equal(down.pendingHoldMs, ONE_WAY.oneWayHoldMs);
    if (how === 'afterRead') up.afterRead(1);
    else up.sawRead(); // a read the destination pushed back counts too
    assert.equal(down.holding, false, how);
    assert.equal(marks.at(-1), 1, `${how}: the mark is lowered, so what is queued is read now`);
  }
});

test('an unpaired stream is never taken for one-way', async () => {
  const { down, up, transfer } = pairSetup(ONE_WAY);
  up.cancel(); // cancel unties the pair (a torn-down pair's other half)
  down.cancel();
  await transfer();
  assert.equal(down.pendingHoldMs, ONE_WAY.sustainedHoldMs, 'after cancel the pair is untied');
  down.cancel();
});

test('limits.relayHold: 0 turns coalescing off, the default is DEFAULT_COALESCE, others set the longest hold', () => {
  assert.equal(coalesceFor(0), false);
  assert.equal(coalesceFor(100), DEFAULT_COALESCE);
  assert.equal(DEFAULT_COALESCE.oneWayHoldMs, 100);
  assert.equal(DEFAULT_COALESCE.sustainedHoldMs, 20);
  const twenty = coalesceFor(20);
  assert.ok(twenty);
  assert.deepEqual([twenty.maxHoldMs, twenty.sustainedHoldMs, twenty.oneWayHoldMs], [20, 20, 20]);
  const short = coalesceFor(7);
  assert.ok(short);
  assert.deepEqual(
    [short.maxHoldMs, short.sustainedHoldMs, short.oneWayHoldMs],
    [7, 7, 7],
    "a hold shorter than the others' default shortens them all",
  );
  assert.equal(short.targetBytes, DEFAULT_COALESCE.targetBytes);
  const long = coalesceFor(300);
  assert.ok(long);
  assert.equal(long.oneWayHoldMs, 300);
  assert.equal(long.sustainedHoldMs, DEFAULT_COALESCE.sustainedHoldMs);
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
  assert.equal(c.oneWayHoldMs, 50);
});
