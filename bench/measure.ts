/**
 * Measuring one transfer on the testbed, for bench:scale: a process run under
 * /usr/bin/time (wall time and its own user + system CPU seconds, which
 * /proc/<pid>/stat cannot give once it has exited), concurrent range curls
 * (goodput = bytes / curl's own time_total), the sha-256 of downloaded pieces
 * put end to end, and the testbed file server's process (to check it is not
 * the bottleneck). Every wait is bounded: a process past its deadline is
 * killed with its children, and the step fails.
 */
import { createReadStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { Testbed } from '../src/testbed/testbed.js';
import { ExecRunner } from '../src/util/runner.js';

export interface MeasuredRun {
  wallS: number;
  /** User + system CPU seconds of the process (not of the `ip netns exec` wrapper: it execs). */
  cpuS: number;
  stdout: string;
}

/** Direct children of `pid` (Linux ≥ 3.5 /proc/<pid>/task/<pid>/children). */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

/** Runs `cmd args…` in `ns` under /usr/bin/time; rejects on a non-zero exit or after `timeoutMs`. */
export async function runMeasured(
  tb: Testbed,
  ns: string,
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<MeasuredRun> {
  const timeFile = `/tmp/${tb.prefix}time-${Math.random().toString(16).slice(2)}`;
  const t0 = performance.now();
  const child = tb.spawn(ns, '/usr/bin/time', ['-f', '%U %S', '-o', timeFile, cmd, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    const pid = child.pid;
    if (pid === undefined) return;
    void childrenOf(pid).then((kids) => {
      for (const k of kids) process.kill(k, 'SIGKILL');
      child.kill('SIGKILL');
    });
  }, timeoutMs);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    const wallS = (performance.now() - t0) / 1000;
    if (timedOut) throw new Error(`${cmd} ${args[1] ?? ''}: no end within ${timeoutMs / 1000} s`);
    if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stderr.trim()}`);
    const [user, sys] = (await readFile(timeFile, 'utf8')).trim().split(/\s+/).slice(-2).map(Number);
    if (!Number.isFinite(user) || !Number.isFinite(sys)) throw new Error(`no CPU times from /usr/bin/time`);
    return { wallS, cpuS: user! + sys!, stdout };
  } finally {
    clearTimeout(timer);
    await rm(timeFile, { force: true });
  }
}

/** Byte range i of n over `size` bytes: [from, to] inclusive, the n ranges cover the file exactly. */
export function byteRange(size: number, i: number, n: number): [number, number] {
  return [Math.floor((i * size) / n), Math.floor(((i + 1) * size) / n) - 1];
}

export interface RangeJob {
  ns: string;
  /** Extra curl arguments: --interface upN, --socks5-hostname …. */
  via: string[];
  range: [number, number];
  out: string;
}

export interface RangeResult {
  bytes: number;
  /** curl's time_total, seconds. */
  seconds: number;
  /** bytes / seconds × 8 / 1e6. */
  mbit: number;
  /** curl's own user + system seconds. */
  cpuS: number;
}

/** Range curls at once; each must answer 206 with exactly its range's length. */
export async function curlRanges(
  tb: Testbed,
  url: string,
  jobs: RangeJob[],
  maxTimeS: number,
): Promise<RangeResult[]> {
  return Promise.all(
    jobs.map(async (j) => {
      const [from, to] = j.range;
      const args = [
        ...['-sS', '--fail', '--max-time', String(Math.ceil(maxTimeS)), ...j.via],
        ...['-r', `${from}-${to}`, '-o', j.out, '-w', '%{http_code} %{size_download} %{time_total}', url],
      ];
      // --max-time bounds curl; the deadline only catches a curl that ignores it.
      const run = await runMeasured(tb, j.ns, 'curl', args, (maxTimeS + 10) * 1000);
      const [code, bytes, seconds] = run.stdout.trim().split(' ').map(Number);
      if (code !== 206 || bytes !== to - from + 1)
        throw new Error(`curl ${j.via.join(' ')} -r ${from}-${to}: got ${run.stdout.trim()}`);
      return { bytes, seconds: seconds!, mbit: (bytes * 8) / seconds! / 1e6, cpuS: run.cpuS };
    }),
  );
}

/** sha-256 (hex) of the files read end to end. */
export async function sha256Of(paths: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const p of paths) {
    for await (const chunk of createReadStream(p, { highWaterMark: 1024 * 1024 }))
      hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** Checks that `paths` end to end are testbed file `name`, then removes them. */
export async function checkAndRemove(tb: Testbed, name: string, paths: string[]): Promise<void> {
  try {
    const sha = await sha256Of(paths);
    if (sha !== tb.files[name]?.sha256) throw new Error(`corrupt download: ${paths.join(' + ')}`);
  } finally {
    for (const p of paths) await rm(p, { force: true });
  }
}

/** The pid of the testbed's HTTP file server (port 80) in the server namespace. */
export async function fileServerPid(tb: Testbed): Promise<number> {
  const { stdout } = await new ExecRunner().run('ip', ['netns', 'pids', tb.serverNs]);
  const pids = stdout.split(/\s+/).filter(Boolean);
  for (const pid of pids) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const argv = cmdline.split('\0');
    if (argv.some((a) => a.endsWith('file-server-main.js')) && argv.includes('80')) return Number(pid);
  }
  throw new Error(`no file server process found in ${tb.serverNs}`);
}

/**
 * What starting the CLI costs (`linkmux --version`: the whole module graph is
 * loaded eagerly), median of 3 runs: subtracted from a short `get`'s figures it
 * leaves the cost of the transfer itself.
 */
export async function startupCost(cli: string): Promise<{ wallS: number; cpuS: number }> {
  const runs: { wallS: number; cpuS: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const { stderr } = await new ExecRunner().run('/usr/bin/time', [
      '-f',
      '%U %S',
      process.execPath,
      cli,
      '--version',
    ]);
    const [user, sys] = stderr.trim().split(/\s+/).slice(-2).map(Number);
    runs.push({ wallS: (performance.now() - t0) / 1000, cpuS: (user ?? NaN) + (sys ?? NaN) });
  }
  const mid = <T>(xs: T[], key: (x: T) => number) => xs.map(key).sort((a, b) => a - b)[1]!;
  return { wallS: mid(runs, (r) => r.wallS), cpuS: mid(runs, (r) => r.cpuS) };
}
