/**
 * Shared settings of the fuzz tests (test/unit/fuzz-*.test.ts): how many cases
 * each property runs, with which seed, and the bounds that turn a hang or a
 * pathological slowdown into a failure instead of a stuck test run.
 *
 *   LINKMUX_FUZZ_RUNS=N    cases per property (default: the property's own, a few hundred)
 *   LINKMUX_FUZZ_SEED=S    an integer, or "random"; default a fixed seed, so runs repeat
 *
 * fast-check prints the seed and the counterexample's path on failure; rerun with
 * that seed to reproduce. Bounds: a property fails when it has not finished its
 * runs within its time budget (scaled with the run count), an async case fails
 * after CASE_DEADLINE_MS, and a synchronous case is timed and fails when it took
 * longer (it cannot be interrupted, but every parser here consumes at least one
 * byte or character per step, so only super-linear work can make it slow).
 */
import fc from 'fast-check';
import type { Parameters } from 'fast-check';

const DEFAULT_SEED = 0x11c0ffee;
/** Longest one case may take, sync or async, in milliseconds. */
export const CASE_DEADLINE_MS = 2000;
/** Budget of a default-sized property run in milliseconds; long runs get it scaled by their run count. */
const PROPERTY_BUDGET_MS = 20_000;

function envInt(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`${name}=${text}: expected an integer`);
  return n;
}

/** The seed of every property in this run. */
export const FUZZ_SEED: number =
  process.env.LINKMUX_FUZZ_SEED === 'random'
    ? Math.floor(Math.random() * 0x7fffffff)
    : (envInt('LINKMUX_FUZZ_SEED') ?? DEFAULT_SEED);

const RUNS_OVERRIDE = envInt('LINKMUX_FUZZ_RUNS');

/** Cases for a property whose default is `defaultRuns`: LINKMUX_FUZZ_RUNS replaces it (scaled by `share`). */
export function fuzzRuns(defaultRuns: number, share = 1): number {
  return RUNS_OVERRIDE === undefined ? defaultRuns : Math.max(1, Math.round(RUNS_OVERRIDE * share));
}

/** fc.assert parameters: runs, seed, the property's time budget and the per-case deadline for async cases. */
export function fuzzParams<T>(defaultRuns: number, share = 1): Parameters<T> {
  const numRuns = fuzzRuns(defaultRuns, share);
  const budget = Math.max(PROPERTY_BUDGET_MS, Math.ceil((PROPERTY_BUDGET_MS * numRuns) / defaultRuns));
  return {
    numRuns,
    seed: FUZZ_SEED,
    plugins: [fc.interruptAfterTimeLimit(budget, { failOnInterrupt: true }), fc.timeout(CASE_DEADLINE_MS)],
  };
}

/** node:test's timeout for a test holding properties of `defaultRuns` cases in all. */
export function testTimeout(defaultRuns: number): number {
  const runs = fuzzRuns(defaultRuns);
  return Math.max(60_000, Math.ceil((PROPERTY_BUDGET_MS * 3 * runs) / defaultRuns));
}

/** Runs a synchronous case and fails it when it took longer than the per-case deadline. */
export function timed<R>(what: string, fn: () => R): R {
  const start = performance.now();
  const out = fn();
  const took = performance.now() - start;
  if (took > CASE_DEADLINE_MS)
    throw new Error(`${what} took ${Math.round(took)} ms (deadline ${CASE_DEADLINE_MS} ms)`);
  return out;
}

/** A way to cut `len` bytes into pieces: sorted cut offsets. */
export function cutsOf(len: number): fc.Arbitrary<number[]> {
  return fc
    .uniqueArray(fc.integer({ min: 0, max: len }), { maxLength: Math.min(len + 1, 12) })
    .map((a) => a.sort((x, y) => x - y));
}

/** `bytes` cut at the given sorted offsets (empty pieces included: a parser must take them). */
export function cut(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const c of cuts) {
    out.push(bytes.subarray(at, c));
    at = c;
  }
  out.push(bytes.subarray(at));
  return out;
}

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; at: number; count: number };

/** A byte, biased toward protocol constants and the edges of the printable range. */
export const byteArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      0x00,
      0x01,
      0x02,
      0x03,
      0x04,
      0x05,
      0x09,
      0x0a,
      0x0d,
      0x20,
      0x21,
      0x7e,
      0x7f,
      0x80,
      0xff,
    ),
  },
);

/** One mutation of a byte string: positions are taken modulo its length when applied. */
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: byteArb }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.array(byteArb, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
);

/** Applies mutations in order; the result may equal the input (a flip undone, a set to the same byte). */
export function mutate(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + (m.kind === 'insert' ? 1 : 0));
    switch (m.kind) {
      case 'flip':
        if (b.length > 0) b[at] = (b[at] ?? 0) ^ (1 << m.bit);
        break;
      case 'set':
        if (b.length > 0) b[at] = m.byte;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, at + m.count), b.subarray(at)]);
        break;
    }
  }
  return b;
}
