/**
 * K parallel downloads measured over a window of kernel counters, shared by
 * the proxy and gateway benchmarks: both modes of a comparison are measured
 * the same way (rx bytes of the uplinks between [start, end] after the flows
 * began), so slow start and the tail are skipped alike.
 */
import type { ChildProcess } from 'node:child_process';
import type { Testbed } from '../src/testbed/testbed.js';
import type { DaemonStatus } from '../src/control/status-types.js';
import { sleep } from './proxy-tools.js';

export interface FlowWindow {
  /** curl --max-time, seconds. */
  maxTimeS: number;
  /** Window start and end, ms after the flows start. */
  startMs: number;
  endMs: number;
}

export interface FlowRun {
  /** bytes/s received per uplink device in the window. */
  rates: Record<string, number>;
  windowS: number;
  /** curl exit codes (28 = stopped by --max-time, the normal end here). */
  codes: (number | null)[];
  /** curl -w output per flow: "http_code local_ip". */
  outs: string[];
  status?: DaemonStatus;
}

async function sample(
  tb: Testbed,
  countersNs: string,
): Promise<{ at: number; c: Record<string, { rx: number }> }> {
  const t1 = performance.now();
  const c = await tb.counters(countersNs);
  return { at: (t1 + performance.now()) / 2, c };
}

/**
 * K curls started at once in namespace `ns`; the client's (or the gateway's)
 * uplink rx counters read at the window's edges.
 */
export async function runFlows(
  tb: Testbed,
  ns: string,
  k: number,
  args: string[],
  w: FlowWindow,
  midway?: () => Promise<DaemonStatus>,
): Promise<FlowRun> {
  const T = w.maxTimeS;
  const WINDOW_START_MS = w.startMs;
  const WINDOW_END_MS = w.endMs;
  const t0 = performance.now();
  const children: ChildProcess[] = [];
  const done = Array.from({ length: k }, () => {
    const child = tb.spawn(
      ns,
      'curl',
      ['-sS', '-o', '/dev/null', '--max-time', String(T), '-w', '%{http_code} %{local_ip}\n', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    return new Promise<{ code: number | null; out: string }>((resolve) => {
      let out = '';
      let err = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.once('error', (e) => resolve({ code: -1, out: String(e) }));
      // stdout is the -w line; stderr only matters when curl failed for another reason than --max-time.
      child.once('close', (code) =>
        resolve({ code, out: code === 0 || code === 28 ? out.trim() : `${out.trim()} ${err.trim()}` }),
      );
    });
  });
  // --max-time bounds each curl; this bounds the bench should curl itself hang.
  const guard = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), T * 1000 + 5_000);
  try {
    await sleep(t0 + WINDOW_START_MS - performance.now());
    const a = await sample(tb, tb.clientNs);
    let status: DaemonStatus | undefined;
    if (midway) {
      await sleep(t0 + (WINDOW_START_MS + WINDOW_END_MS) / 2 - performance.now());
      status = await midway().catch(() => undefined);
    }
    await sleep(t0 + WINDOW_END_MS - performance.now());
    const b = await sample(tb, tb.clientNs);
    const results = await Promise.all(done);
    const windowS = (b.at - a.at) / 1000;
    const rates: Record<string, number> = {};
    for (const u of tb.uplinks) rates[u.dev] = ((b.c[u.dev]?.rx ?? 0) - (a.c[u.dev]?.rx ?? 0)) / windowS;
    return {
      rates,
      windowS,
      codes: results.map((r) => r.code),
      outs: results.map((r) => r.out),
      ...(status ? { status } : {}),
    };
  } finally {
    clearTimeout(guard);
  }
}
