/**
 * bench:scale's options (environment variables, documented in scale.ts) and
 * the constants its parts share. Parsing fails early with a message that
 * names the variable.
 */
import { fileURLToPath } from 'node:url';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const SCENARIOS = ['one', 'limit', 'get', 'up', 'nodes'] as const;
export type Scenario = (typeof SCENARIOS)[number];
/** Concurrent SOCKS5 curls through `linkmux up`. */
export const K = 6;

export const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
export const progress = (s: string) =>
  console.error(`[bench:scale ${new Date().toISOString().slice(11, 19)}] ${s}`);

function numbers(name: string, dflt: string): number[] {
  const text = process.env[name] ?? dflt;
  const xs = text.split(',').map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !(x > 0)))
    throw new Error(`${name}="${text}": expected positive numbers separated by commas`);
  return xs;
}

/**
 * Default file size for a rate: about 8 s at three times the rate (a power of
 * two MiB, ≥ 16): 8 → 32 MiB, 100 → 256 MiB, 400 → 1024 MiB.
 */
export function defaultSizeMiB(rateMbit: number): number {
  return Math.max(16, 2 ** Math.round(Math.log2(3 * rateMbit)));
}

export interface ScaleOptions {
  rates: number[];
  /** File size per rate, bytes (same order as rates). */
  sizes: number[];
  only: Set<Scenario>;
  out: string;
  /** Runs of every scenario at each rate (each on a fresh testbed). */
  trials: number;
  /** Extra arguments for every `linkmux get` (experiments: "-x 2", "--min-piece 1m"). */
  getArgs: string[];
}

export function readOptions(): ScaleOptions {
  const rates = numbers('BENCH_RATES', '8,100,400');
  const given = process.env.BENCH_SIZE_MIB ? numbers('BENCH_SIZE_MIB', '') : [];
  if (given.length > 1 && given.length !== rates.length)
    throw new Error(`BENCH_SIZE_MIB: give one size, or one per rate (${rates.length})`);
  const sizes = rates.map((r, i) => Math.round((given[given.length > 1 ? i : 0] ?? defaultSizeMiB(r)) * MiB));
  const onlyText = process.env.BENCH_ONLY ?? SCENARIOS.join(',');
  const only = new Set<Scenario>();
  for (const s of onlyText.split(',').map((x) => x.trim())) {
    if (!(SCENARIOS as readonly string[]).includes(s))
      throw new Error(`BENCH_ONLY: unknown scenario "${s}" (known: ${SCENARIOS.join(', ')})`);
    only.add(s as Scenario);
  }
  // The ratios of get and up are to the practical limit: measure it whenever they run.
  if (only.has('get') || only.has('up')) only.add('limit');
  const trials = Number(process.env.BENCH_TRIALS ?? 1);
  if (!Number.isInteger(trials) || trials < 1 || trials > 20)
    throw new Error(`BENCH_TRIALS="${process.env.BENCH_TRIALS}": expected an integer from 1 to 20`);
  return {
    rates,
    sizes,
    only,
    trials,
    out: process.env.BENCH_OUT ?? 'bench-results/scale.jsonl',
    getArgs: (process.env.BENCH_GET_ARGS ?? '').split(/\s+/).filter(Boolean),
  };
}

/** Generous bound for one transfer of `bytes` at `mbit`: 4 × the expected time, at least 60 s. */
export const deadlineS = (bytes: number, mbit: number) => Math.max(60, (4 * bytes * 8) / (mbit * 1e6));
