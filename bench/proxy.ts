/**
 * npm run bench:proxy — `linkmux up` measured side by side in one run.
 *
 * 1. netns testbed (3 × 8 Mbit/s uplinks, one server address): K = 1..6
 *    parallel downloads (curl, --max-time T) through the SOCKS5 proxy, and
 *    through a kernel ECMP default route with L4 hashing (plain curl; every
 *    trial opens new connections, so new source ports and a new hash draw).
 *    Both modes are measured identically: the client's per-uplink rx counters
 *    over the window [1 s, T − 0.5 s] after the start (slow start skipped),
 *    as a fraction of the sum of the single-link rates measured the same way
 *    (each uplink alone, curl --interface upN, once at the start). Headers
 *    count on both sides of the fraction, so they cancel. A link is busy in a
 *    trial when it carried ≥ 25 % of its own single-link rate. Target: for
 *    K ≥ 3, linkmux ≥ 0.95 of the sum in EVERY trial.
 * 2. loopback (127.0.0.1 only, no namespaces): the daemon spawned with one
 *    link, lo, against an HTTP server in this process that serves its body
 *    from memory: one connection through the proxy vs direct (throughput),
 *    the daemon's CPU seconds per GiB relayed (/proc/<pid>/stat), connect
 *    latency added by the SOCKS5 handshake and the dial (p50/p99 of
 *    sequential connects), and the daemon's RSS per idle tunnelled connection.
 *
 * Options (env): BENCH_TRIALS (10), BENCH_MAX_TIME (4 s), BENCH_K_MAX (6),
 * BENCH_LOOPBACK_MIB (1024), BENCH_CONNECTS (2000), BENCH_WARMUP (2000 connects each way first, reported
 * apart as a fresh daemon's), BENCH_IDLE (1000), BENCH_LATENCY_TUNNELS
 * (0: idle tunnels held open through each proxy while connect latency is measured),
 * BENCH_DAEMON_NODE_ARGS (node's options for the loopback daemon alone, e.g.
 * --cpu-prof), BENCH_PARTS ("testbed,loopback"), BENCH_LOOPBACK ("idle,latency,throughput": the
 * loopback part's sections; `BENCH_PARTS=loopback BENCH_LOOPBACK=latency` measures
 * connect latency alone).
 * Needs root (part 1 builds network namespaces). Traffic stays inside the
 * testbed's namespaces (198.18.0.0/15) or on loopback; everything started here
 * is stopped in `finally` and on SIGINT/SIGTERM.
 */
import os from 'node:os';
import path from 'node:path';
import { removeLeftovers } from '../src/testbed/testbed.js';
import { CONNECTS, IDLE, K_MAX, LOOPBACK_BYTES, MiB, PARTS, T, TRIALS, WARMUP } from './proxy-options.js';
import { runCleanups } from './proxy-cleanup.js';
import { printTestbed, testbedPart } from './proxy-testbed.js';
import { loopbackPart, printLoopback } from './proxy-loopback.js';

async function main(): Promise<void> {
  if (process.getuid?.() !== 0 && PARTS.includes('testbed')) {
    console.error('bench:proxy needs root (it builds network namespaces); BENCH_PARTS=loopback runs without');
    process.exit(2);
  }
  const started = performance.now();
  console.log(`# bench:proxy`);
  console.log(
    `\`${['node', ...process.argv.slice(1).map((a) => path.relative(process.cwd(), a) || a)].join(' ')}\` ` +
      `(npm run bench:proxy) — BENCH_TRIALS=${TRIALS} BENCH_MAX_TIME=${T} BENCH_K_MAX=${K_MAX} ` +
      `BENCH_LOOPBACK_MIB=${LOOPBACK_BYTES / MiB} BENCH_CONNECTS=${CONNECTS} BENCH_WARMUP=${WARMUP} BENCH_IDLE=${IDLE}; ` +
      `node ${process.version}, Linux ${os.release()}, ${os.cpus().length} CPUs, ${new Date().toISOString()}`,
  );
  let ok = true;
  try {
    if (PARTS.includes('testbed')) {
      await removeLeftovers();
      ok = printTestbed(await testbedPart());
    }
    if (PARTS.includes('loopback')) printLoopback(await loopbackPart());
  } finally {
    await runCleanups();
  }
  console.log(`\nTotal time: ${((performance.now() - started) / 1000).toFixed(0)} s`);
  process.exitCode = ok ? 0 : 1;
}

await main();
