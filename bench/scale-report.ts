/**
 * bench:scale's output: the figures of one rate (what scale-scenarios.ts
 * measured, with ratios), a Markdown table per rate, and one JSON line per run
 * appended to the results file with what is needed to compare runs later
 * (date, commit, kernel, Node, CPU, load before and after).
 */
import { execFileSync } from 'node:child_process';
import { appendFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { GetRun, Limit, NodesRun, OneLink, UpRun } from './scale-scenarios.js';
import { MiB } from './scale-options.js';

export interface ServerCpu {
  cpuS: number;
  /** CPU seconds per wall second over the scenario: ≥ ~0.9 means the file server may be the bottleneck. */
  core: number;
}

export interface RateResult {
  rateMbit: number;
  /** 0-based, with BENCH_TRIALS > 1. */
  trial: number;
  sizeMiB: number;
  /** The client namespace's net.ipv4.tcp_congestion_control. */
  congestionControl: string;
  one?: OneLink & { ofRate: number };
  limit?: Limit;
  /** ratioInProcess: from get's own time (start-up excluded); cpuPerGiBNet: start-up CPU subtracted. */
  get?: GetRun & { ratio: number; ratioInProcess: number; cpuPerGiBNet: number };
  up?: UpRun & { ratio: number; endToEndRatio: number };
  nodes?: NodesRun;
  fileServer: Record<string, ServerCpu>;
  errors: Record<string, string>;
}

export interface RunRecord {
  date: string;
  commit: string;
  dirty: boolean;
  kernel: string;
  node: string;
  cpu: string;
  cores: number;
  loadBefore: number[];
  loadAfter: number[];
  /** `linkmux --version`: wall and CPU seconds of starting the CLI (median of 3). */
  startup: { wallS: number; cpuS: number };
  rates: number[];
  results: RateResult[];
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function environment(): Omit<RunRecord, 'loadAfter' | 'startup' | 'rates' | 'results'> {
  return {
    date: new Date().toISOString(),
    commit: git(['rev-parse', 'HEAD']),
    dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    kernel: os.release(),
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    loadBefore: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

export async function appendRecord(file: string, record: RunRecord): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  // Five significant digits are more than these measurements carry.
  const round = (_: string, v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(5)) : v);
  await appendFile(file, `${JSON.stringify(record, round)}\n`);
}

const f = (x: number | undefined, digits = 1) =>
  x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);

export function printRate(r: RateResult, trials: number): void {
  const row = (cells: string[]) => console.log(`| ${cells.join(' | ')} |`);
  console.log(
    `\n## 3 × ${r.rateMbit} Mbit/s per uplink — ${r.sizeMiB} MiB file, TBF both ends, ${r.congestionControl}` +
      (trials > 1 ? `, trial ${r.trial + 1} of ${trials}` : ''),
  );
  row(['scenario', 'goodput (Mbit/s)', 'ratio', 'CPU-s/GiB', 'notes']);
  row(['---', '---:', '---:', '---:', '---']);
  if (r.one)
    row([
      'one link (curl, ⅓ of the file)',
      f(r.one.mbit),
      f(r.one.ofRate, 3),
      '',
      'ratio to the rate (the wire allows 1448/1514 = 0.956)',
    ]);
  if (r.limit)
    row([
      'practical limit (3 range curls at once)',
      f(r.limit.mbit),
      '1',
      f(r.limit.cpuPerGiB, 2),
      `per link ${r.limit.links.map((x) => f(x)).join(', ')}; CPU: the curls'`,
    ]);
  if (r.get) {
    const links = Object.entries(r.get.links)
      .map(([id, b]) => `${id} ${f(b / MiB, 0)}`)
      .join(', ');
    row([
      '`linkmux get`',
      f(r.get.mbit),
      f(r.get.ratio, 3),
      f(r.get.cpuPerGiB, 2),
      `own time ${f(r.get.getS, 2)} s of ${f(r.get.wallS, 2)} → ${f(r.get.ratioInProcess, 3)}; ` +
        `CPU less start-up ${f(r.get.cpuPerGiBNet, 2)}; MiB ${links}`,
    ]);
  }
  if (r.up)
    row([
      '`linkmux up`, 6 SOCKS5 curls',
      f(r.up.windowMbit),
      f(r.up.ratio, 3),
      f(r.up.cpuPerGiB, 2),
      `while all 6 ran; end to end ${f(r.up.endToEndMbit)} → ${f(r.up.endToEndRatio, 3)}`,
    ]);
  if (r.nodes) {
    const n = r.nodes;
    row([
      'LAN: each machine’s link alone (sum)',
      f(n.singles.mbit),
      '1',
      f(n.singles.cpuPerGiB, 2),
      `per machine ${n.singles.links.map((x) => f(x)).join(', ')}`,
    ]);
    row([
      '`get --join A --join B` (client)',
      f(n.get.mbit),
      f(n.ratio, 3),
      f(n.get.cpuPerGiB, 2),
      `own time ${f(n.get.getS, 2)} s`,
    ]);
    for (const [i, node] of n.nodes.entries())
      row([
        `node n${i + 1} (${node.dev})`,
        '',
        '',
        f(node.cpuPerGiB, 2),
        `relayed ${f(node.relayedMiB, 0)} MiB, ${f(node.cpuS, 2)} CPU-s = ${f((node.cpuS / n.get.wallS) * 100, 0)} % of a core`,
      ]);
  }
  const busiest = Object.entries(r.fileServer).sort((a, b) => b[1].core - a[1].core)[0];
  if (busiest)
    console.log(
      `File server: at most ${f(busiest[1].core * 100, 0)} % of a core (${busiest[0]})` +
        (busiest[1].core >= 0.9 ? ' — it may be the bottleneck' : ''),
    );
  for (const [s, e] of Object.entries(r.errors)) console.log(`FAILED ${s}: ${e}`);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The headline figures, median (min–max) over the trials, one column per rate. */
export function printSummary(results: RateResult[]): void {
  const figures: [string, (r: RateResult) => number | undefined, number][] = [
    ['practical limit, Mbit/s', (r) => r.limit?.mbit, 1],
    ['get / limit', (r) => r.get?.ratio, 3],
    ['get / limit, own time', (r) => r.get?.ratioInProcess, 3],
    ['get CPU-s/GiB', (r) => r.get?.cpuPerGiB, 2],
    ['up / limit', (r) => r.up?.ratio, 3],
    ['up CPU-s/GiB', (r) => r.up?.cpuPerGiB, 2],
    ['get over nodes / sum', (r) => r.nodes?.ratio, 3],
    ['client CPU-s/GiB (nodes)', (r) => r.nodes?.get.cpuPerGiB, 2],
    [
      'node CPU-s/GiB relayed (mean of 2)',
      (r) => r.nodes && median(r.nodes.nodes.map((n) => n.cpuPerGiB)),
      2,
    ],
  ];
  const rates = [...new Set(results.map((r) => r.rateMbit))];
  console.log(`\n## Summary: median (min–max) over the trials`);
  console.log(`| figure | ${rates.map((x) => `3 × ${x} Mbit/s`).join(' | ')} |`);
  console.log(`|---|${rates.map(() => '---:').join('|')}|`);
  for (const [name, get, digits] of figures) {
    const cells = rates.map((rate) => {
      const xs = results
        .filter((r) => r.rateMbit === rate)
        .map(get)
        .filter((x): x is number => x !== undefined && Number.isFinite(x));
      if (xs.length === 0) return '—';
      return `${f(median(xs), digits)} (${f(Math.min(...xs), digits)}–${f(Math.max(...xs), digits)})`;
    });
    if (cells.some((c) => c !== '—')) console.log(`| ${name} | ${cells.join(' | ')} |`);
  }
}
