import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RangePlan, complementRanges, normalizeRanges, type Piece } from '../../src/download/range-plan.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Every byte of [0,size) is covered exactly once by done-before ranges plus pieces. */
function assertPartition(plan: RangePlan, doneBefore: { start: number; end: number }[] = []) {
  const internal = (plan as unknown as { pieces: Piece[] }).pieces;
  const spans = [...doneBefore, ...internal.map((p) => ({ start: p.start, end: p.end }))]
    .filter((s) => s.end > s.start)
    .sort((a, b) => a.start - b.start);
  let at = 0;
  for (const s of spans) {
    assert.equal(s.start, at, `gap or overlap at ${at}: ${JSON.stringify(spans)}`);
    at = s.end;
  }
  assert.equal(at, plan.size);
}

test('initial cut: one piece per slot, equal sizes', () => {
  const table = [
    { size: 12 * MiB, slots: 3, want: [4 * MiB, 4 * MiB, 4 * MiB] },
    { size: 1 * MiB, slots: 2, want: [512 * KiB, 512 * KiB] },
    { size: 100 * KiB, slots: 4, want: [100 * KiB] }, // smaller than two minimum pieces: one piece
    { size: 0, slots: 3, want: [] },
  ];
  for (const { size, slots, want } of table) {
    const plan = new RangePlan(size, [], slots);
    const sizes: number[] = [];
    for (let w = 0; w < slots; w++) {
      const p = plan.assign(w, () => undefined);
      if (p) sizes.push(p.end - p.start);
    }
    assert.deepEqual(sizes, want, `size ${size} slots ${slots}`);
    assertPartition(plan);
  }
});

test('resume: only the missing ranges are planned, and done bytes count as written', () => {
  const done = [
    { start: 0, end: 3 * MiB },
    { start: 5 * MiB, end: 6 * MiB },
  ];
  const plan = new RangePlan(8 * MiB, done, 2);
  assert.equal(plan.writtenBytes(), 4 * MiB);
  const a = plan.assign(0, () => undefined) as Piece;
  const b = plan.assign(1, () => undefined) as Piece;
  assert.deepEqual([a.start, a.end, b.start, b.end], [3 * MiB, 5 * MiB, 6 * MiB, 8 * MiB]);
  assertPartition(plan, done);
  assert.deepEqual(plan.doneRanges(), done);
});

test('work stealing: an idle slot takes a rate-proportional tail of the piece finishing last', () => {
  // owner rate, thief rate → share of the remaining bytes the thief takes
  const table = [
    { owner: 1000, thief: 1000, thiefShare: 0.5 },
    { owner: 1000, thief: 3000, thiefShare: 0.75 },
    { owner: 4000, thief: 1000, thiefShare: 0.2 },
    { owner: undefined, thief: 1000, thiefShare: 0.5 }, // owner not measured yet
    { owner: 0, thief: 1000, thiefShare: 1 }, // stalled owner: everything moves
  ];
  for (const { owner, thief, thiefShare } of table) {
    const plan = new RangePlan(8 * MiB, [], 1);
    const victim = plan.assign(0, () => undefined) as Piece;
    plan.claim(victim, 2 * MiB);
    plan.markWritten(victim, 2 * MiB);
    const rates = [owner, thief];
    const stolen = plan.assign(1, (w) => rates[w]) as Piece;
    assert.ok(stolen, `owner ${owner} thief ${thief}`);
    assert.equal(stolen.end, 8 * MiB);
    assert.equal(stolen.end - stolen.start, Math.round(6 * MiB * thiefShare));
    assert.equal(victim.end, stolen.start);
    assertPartition(plan);
  }
});

test('work stealing picks the piece that would finish last, not just the largest', () => {
  const plan = new RangePlan(8 * MiB, [], 2);
  const fast = plan.assign(0, () => undefined) as Piece; // 4 MiB at 4 MB/s → 1 s
  const slow = plan.assign(1, () => undefined) as Piece; // 4 MiB at 0.5 MB/s → 8 s
  plan.claim(fast, 1 * MiB);
  plan.markWritten(fast, 1 * MiB);
  const rates = [4e6, 0.5e6, 4e6];
  const stolen = plan.assign(2, (w) => rates[w]) as Piece;
  assert.equal(stolen.end, 8 * MiB, 'the tail of the slow piece was taken');
  assert.equal(slow.end, stolen.start);
  assert.ok(stolen.start > slow.start);
  assert.equal(fast.end, 4 * MiB, 'the fast piece was left alone');
});

test('no stealing of crumbs smaller than the minimum piece from a live owner', () => {
  const plan = new RangePlan(1 * MiB, [], 1, { minPiece: 256 * KiB });
  const p = plan.assign(0, () => undefined) as Piece;
  plan.claim(p, 700 * KiB);
  assert.equal(
    plan.assign(1, () => 1e6),
    undefined,
  );
  // …but a stalled owner gives up even a crumb
  const stolen = plan.assign(1, (w) => (w === 0 ? 0 : 1e6)) as Piece;
  assert.equal(stolen.end - stolen.start, 324 * KiB);
});

test('release gives back unwritten bytes and merges with a free neighbour', () => {
  const plan = new RangePlan(4 * MiB, [], 1);
  const p = plan.assign(0, () => undefined) as Piece;
  plan.claim(p, 3 * MiB);
  plan.markWritten(p, 1 * MiB); // 2 MiB claimed but not on disk (write failed)
  plan.release(p);
  assert.equal(p.pos, 1 * MiB);
  assert.equal(plan.remaining(), 3 * MiB);
  const again = plan.assign(1, () => undefined) as Piece;
  assert.equal(again, p);
  assert.deepEqual(plan.doneRanges(), [{ start: 0, end: 1 * MiB }]);
});

test('a simulated download with one slow link finishes with every byte written once', () => {
  // 3 slots at 1000, 1000 and 250 units per tick; run until complete, bounded.
  const size = 30 * MiB;
  const speeds = [1 * MiB, 1 * MiB, 256 * KiB];
  const plan = new RangePlan(size, [], 3);
  const owned: (Piece | undefined)[] = [undefined, undefined, undefined];
  const delivered = [0, 0, 0];
  let ticks = 0;
  for (; ticks < 1000 && !plan.complete(); ticks++) {
    for (let w = 0; w < 3; w++) {
      let piece = owned[w];
      if (!piece || piece.pos >= piece.end) {
        if (piece) plan.finish(piece);
        piece = plan.assign(w, (x) => speeds[x]);
        owned[w] = piece;
      }
      if (!piece) continue;
      const n = plan.claim(piece, speeds[w] as number);
      plan.markWritten(piece, n);
      delivered[w] = (delivered[w] ?? 0) + n;
    }
  }
  assert.ok(plan.complete());
  assert.equal(
    delivered.reduce((a, b) => a + b, 0),
    size,
  );
  // ideal: size / (2.25 MiB per tick) ≈ 13.3 ticks; the slow tail must not stretch it much
  assert.ok(ticks <= 16, `took ${ticks} ticks`);
  assertPartition(plan);
});

test('normalizeRanges and complementRanges', () => {
  assert.deepEqual(
    normalizeRanges(
      [
        { start: 5, end: 10 },
        { start: 0, end: 3 },
        { start: 3, end: 4 },
        { start: 8, end: 12 },
        { start: 20, end: 30 },
      ],
      25,
    ),
    [
      { start: 0, end: 4 },
      { start: 5, end: 12 },
      { start: 20, end: 25 },
    ],
  );
  assert.deepEqual(complementRanges([{ start: 2, end: 4 }], 6), [
    { start: 0, end: 2 },
    { start: 4, end: 6 },
  ]);
  assert.deepEqual(complementRanges([], 0), []);
});

test('regression: an emptied piece of a stalled owner does not hide the others from thieves', () => {
  // Worker 1 stalled and lost its whole remainder to worker 0; worker 2 then finished.
  // The empty piece still owned by the stalled worker must not be picked (it has nothing to give).
  const plan = new RangePlan(9 * MiB, [], 3);
  const a = plan.assign(0, () => undefined) as Piece;
  const b = plan.assign(1, () => undefined) as Piece;
  const c = plan.assign(2, () => undefined) as Piece;
  plan.claim(b, 1 * MiB);
  plan.markWritten(b, 1 * MiB);
  for (const p of [a, c]) {
    plan.claim(p, 3 * MiB);
    plan.markWritten(p, 3 * MiB);
    plan.finish(p);
  }
  const rates = [1e6, 0, 1e6];
  const rest = plan.assign(0, (w) => rates[w]) as Piece; // takes all of b's remainder
  assert.equal(b.end, b.pos);
  assert.equal(rest.end - rest.start, 2 * MiB);
  const restEnd = rest.end;
  const half = plan.assign(2, (w) => rates[w]);
  assert.ok(half, 'worker 2 steals from worker 0 instead of staying idle');
  assert.equal(half.end, restEnd);
  assert.equal(rest.end, half.start);
});
