/**
 * node dist/bench/startup.js — what a `linkmux` run costs before it does any
 * work: wall milliseconds and CPU seconds (user + system of the process and of
 * the `ip` commands it runs) of `--version`, `--help`, `links` and a 64 KiB
 * `get` from a file server on loopback (fetched directly: no uplink, no root).
 * Median of BENCH_RUNS (default 15) runs of each, interleaved, after one
 * warm-up run. Each run is timed by bash's `times` (the rusage of the reaped
 * child, to the millisecond), as /proc/<pid>/stat cannot give it once the
 * process has exited.
 *
 * Options (env): BENCH_RUNS; BENCH_CLI, another build's dist/src/cli/main.js
 * to compare with (run both back to back: the machine is shared).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { startFileServer } from '../src/testbed/file-server.js';

const RUNS = Math.min(200, Math.max(1, Number(process.env.BENCH_RUNS ?? 15)));
const cli = process.env.BENCH_CLI ?? fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const RUN_TIMEOUT_MS = 20_000;

interface Sample {
  wallMs: number;
  cpuS: number;
}

/** One run of `node cli args…` under bash, whose `times` prints its children's user and system time. */
async function runOnce(args: string[]): Promise<Sample> {
  const script = 'node "$@" >/dev/null 2>&1; rc=$?; times; exit $rc';
  const t0 = performance.now();
  const child = spawn('bash', ['-c', script, 'bash', cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  const wallMs = performance.now() - t0;
  if (code !== 0) throw new Error(`linkmux ${args.join(' ')}: exit ${code}`);
  // `times`: the shell's own user/system line, then its children's: "0m0.052s 0m0.013s".
  const children = out.trim().split('\n')[1] ?? '';
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  if (secs.length !== 2) throw new Error(`cannot read bash's times output: ${JSON.stringify(out)}`);
  return { wallMs, cpuS: (secs[0] ?? 0) + (secs[1] ?? 0) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'lmx-startup-'));
  const server = await startFileServer({ root: dir });
  try {
    await writeFile(join(dir, 'f.bin'), randomBytes(64 * 1024));
    const out = join(dir, 'out.bin');
    const commands: Array<[string, string[]]> = [
      ['--version', ['--version']],
      ['--help', ['--help']],
      ['links', ['links']],
      ['get 64 KiB (loopback)', ['get', '-q', '--overwrite', '-o', out, server.fileUrl('f.bin')]],
    ];
    const samples = new Map<string, Sample[]>(commands.map(([name]) => [name, []]));
    for (const [, args] of commands) await runOnce(args); // warm-up: page cache
    for (let i = 0; i < RUNS; i++) {
      for (const [name, args] of commands) samples.get(name)?.push(await runOnce(args));
    }
    console.log(`${cli}: median of ${RUNS} runs`);
    for (const [name, s] of samples) {
      const wall = median(s.map((x) => x.wallMs));
      const cpu = median(s.map((x) => x.cpuS));
      console.log(`${name.padEnd(24)} wall ${wall.toFixed(1).padStart(6)} ms   cpu ${cpu.toFixed(3)} s`);
    }
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
