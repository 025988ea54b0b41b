/**
 * bench:proxy's options (environment) and the pieces both parts share: the
 * CLI path, progress lines, the flow runner over the testbed's client.
 */
import { fileURLToPath } from 'node:url';
import { type Testbed } from '../src/testbed/testbed.js';
import type { DaemonStatus } from '../src/control/status-types.js';
import { runFlows as runFlowsIn } from './flows.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
export const TRIALS = env('BENCH_TRIALS', 10);
export const T = env('BENCH_MAX_TIME', 4);
export const K_MAX = env('BENCH_K_MAX', 6);
export const LOOPBACK_BYTES = env('BENCH_LOOPBACK_MIB', 1024) * MiB;
export const CONNECTS = env('BENCH_CONNECTS', 2000);
/**
 * Connects each way before the measured ones. A fresh daemon's first few thousand connects run code that
 * V8 has not optimised yet (and a machine coming out of idle): p50 up to twice a warmed daemon's, p99
 * 2.6–3.1 ms against 0.9–1.9. They are printed on rows of their own ("fresh daemon").
 */
export const WARMUP = env('BENCH_WARMUP', 2000);
export const IDLE = env('BENCH_IDLE', 1000);
/** Idle tunnels held open through each proxy while connect latency is measured. */
export const LATENCY_TUNNELS = env('BENCH_LATENCY_TUNNELS', 0);
/** Rounds of the loopback throughput test (direct, bare relay, linkmux in each). */
export const ROUNDS = 5;
export const PARTS = (process.env.BENCH_PARTS ?? 'testbed,loopback').split(',');
/** Sections of the loopback part to run. */
export const SECTIONS = (process.env.BENCH_LOOPBACK ?? 'idle,latency,throughput').split(',');

/** Counter window after the flows start: slow start and the tail are skipped, in both modes alike. */
export const WINDOW_START_MS = 1_000;
export const WINDOW_END_MS = T * 1000 - 500;
export const BUSY_SHARE = 0.25;
export const TARGET = 0.95;
export const FILE = 'big.bin';
export const FILE_SIZE = 64 * MiB;

export const WINDOW = { maxTimeS: T, startMs: WINDOW_START_MS, endMs: WINDOW_END_MS };
export const runFlows = (tb: Testbed, k: number, args: string[], midway?: () => Promise<DaemonStatus>) =>
  runFlowsIn(tb, tb.clientNs, k, args, WINDOW, midway);

export const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
export const progress = (s: string) =>
  console.error(`[bench:proxy ${new Date().toISOString().slice(11, 19)}] ${s}`);
