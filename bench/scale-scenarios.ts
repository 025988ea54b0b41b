/**
 * bench:scale's scenarios at one rate, on one testbed (the client's three
 * uplinks, plus two node machines with one uplink each when `nodes` runs).
 * Each returns its figures; goodput is payload bits per second, CPU is the
 * process's user + system seconds per GiB it moved. Every download is checked
 * (sha-256 of the file, or of the range pieces end to end) and removed.
 */
import { rm, stat } from 'node:fs/promises';
import type { Testbed } from '../src/testbed/testbed.js';
import { startDaemon, waitFor } from '../test/helpers/daemon.js';
import {
  byteRange,
  checkAndRemove,
  curlRanges,
  runMeasured,
  type MeasuredRun,
  type RangeResult,
  type RangeJob,
} from './measure.js';
import { startLendingNodes } from './lending-nodes.js';
import { procCounters, sleep } from './proxy-tools.js';
import { GiB, K, cli, deadlineS } from './scale-options.js';

export const FILE = 'big.bin';

export interface RateContext {
  tb: Testbed;
  rate: number;
  size: number;
  /** The client's uplink devices (three). */
  devs: string[];
  getArgs: string[];
}

const mbitOf = (bytes: number, s: number) => (bytes * 8) / s / 1e6;
const out = (tb: Testbed, what: string) => `/tmp/${tb.prefix}${what}`;
const url = (c: RateContext) => c.tb.url(FILE);
/** Seconds a transfer of `bytes` may take when `links` uplinks carry it. */
const bound = (c: RateContext, bytes: number, links = 1) => deadlineS(bytes, c.rate * links);

export interface OneLink {
  mbit: number;
}

/** curl over the client's first uplink alone, a third of the file. */
export async function oneLink(c: RateContext): Promise<OneLink> {
  const range = byteRange(c.size, 0, 3);
  const job: RangeJob = { ns: c.tb.clientNs, via: ['--interface', c.devs[0]!], range, out: out(c.tb, 'one') };
  try {
    const [r] = await curlRanges(c.tb, url(c), [job], bound(c, c.size / 3));
    return { mbit: r!.mbit };
  } finally {
    await rm(job.out, { force: true });
  }
}

export interface Limit {
  /** Sum of the three curls' goodputs. */
  mbit: number;
  links: number[];
  /** The curls' CPU seconds per GiB: what receiving and writing the bytes costs a plain process. */
  cpuPerGiB: number;
}

/** Concurrent range curls, one per (ns, dev), a 1/n share each; the pieces together must be the file. */
async function rangesAtOnce(c: RateContext, via: { ns: string; dev: string }[], tag: string): Promise<Limit> {
  const jobs = via.map((v, i) => ({
    ns: v.ns,
    via: ['--interface', v.dev],
    range: byteRange(c.size, i, via.length),
    out: out(c.tb, `${tag}${i}`),
  }));
  const paths = jobs.map((j) => j.out);
  let rs: RangeResult[];
  try {
    rs = await curlRanges(c.tb, url(c), jobs, bound(c, c.size / via.length));
  } catch (err) {
    for (const p of paths) await rm(p, { force: true });
    throw err;
  }
  await checkAndRemove(c.tb, FILE, paths);
  const cpuPerGiB = rs.reduce((a, r) => a + r.cpuS, 0) / (c.size / GiB);
  return { mbit: rs.reduce((a, r) => a + r.mbit, 0), links: rs.map((r) => r.mbit), cpuPerGiB };
}

/** The practical limit: three range curls at once, one per client uplink (`curl --interface`). */
export function practicalLimit(c: RateContext): Promise<Limit> {
  return rangesAtOnce(
    c,
    c.devs.map((dev) => ({ ns: c.tb.clientNs, dev })),
    'limit',
  );
}

export interface GetRun {
  /** File size / wall time of the process (start-up included). */
  mbit: number;
  wallS: number;
  /** The download's own time (its --json summary), start-up excluded. */
  getS: number;
  cpuS: number;
  cpuPerGiB: number;
  /** Bytes per link id, from the summary. */
  links: Record<string, number>;
}

async function measuredGet(c: RateContext, extra: string[], tag: string): Promise<GetRun> {
  const path = out(c.tb, tag);
  const args = [cli, 'get', '--json', '--overwrite', ...c.getArgs, ...extra, '-o', path, url(c)];
  let run: MeasuredRun;
  try {
    run = await runMeasured(c.tb, c.tb.clientNs, process.execPath, args, bound(c, c.size) * 1000);
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
  await checkAndRemove(c.tb, FILE, [path]);
  const done = run.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string; seconds?: number; links?: { id: string; bytes: number }[] })
    .find((e) => e.event === 'done');
  if (!done?.seconds) throw new Error(`linkmux get printed no summary:\n${run.stdout.slice(-2000)}`);
  return {
    mbit: mbitOf(c.size, run.wallS),
    wallS: run.wallS,
    getS: done.seconds,
    cpuS: run.cpuS,
    cpuPerGiB: run.cpuS / (c.size / GiB),
    links: Object.fromEntries((done.links ?? []).map((l) => [l.id, l.bytes])),
  };
}

/** `linkmux get` with default settings over the client's uplinks. */
export const get = (c: RateContext) => measuredGet(c, [], 'get');

export interface UpRun {
  /** Goodput while all K curls ran (from 1 s after the start to the first curl's end). */
  windowMbit: number;
  /** File size / time until the last curl ended. */
  endToEndMbit: number;
  cpuS: number;
  cpuPerGiB: number;
  curls: number[];
}

/** Sums the sizes of `paths` every 200 ms until `until` settles: [seconds since t0, bytes]. */
async function sampleGrowth(
  paths: string[],
  t0: number,
  until: Promise<unknown>,
): Promise<[number, number][]> {
  let settled = false;
  void until.finally(() => (settled = true)).catch(() => {});
  const samples: [number, number][] = [];
  while (!settled) {
    const sizes = await Promise.all(
      paths.map((p) =>
        stat(p).then(
          (s) => s.size,
          () => 0,
        ),
      ),
    );
    samples.push([(performance.now() - t0) / 1000, sizes.reduce((a, b) => a + b, 0)]);
    await sleep(200);
  }
  return samples;
}

/** `linkmux up` (default policy) and K curls --socks5-hostname at once, a 1/K range each. */
export async function up(c: RateContext): Promise<UpRun> {
  const { tb } = c;
  const yaml =
    `listen: { socks: "127.0.0.1:1080", control: "127.0.0.1:9190" }\nlinks: [${c.devs.join(', ')}]\n` +
    `health: { targets: ["tcp://${tb.serverAddress}:80"] }\nlog: warn\n`;
  const daemon = await startDaemon(tb, cli, yaml);
  try {
    await waitFor(
      'every link online',
      15_000,
      () => daemon.status(),
      (s) => s.links.length === c.devs.length && s.links.every((l) => l.state === 'online'),
    );
    const jobs = Array.from({ length: K }, (_, i) => ({
      ns: tb.clientNs,
      via: ['--socks5-hostname', daemon.socks],
      range: byteRange(c.size, i, K),
      out: out(tb, `up${i}`),
    }));
    const pid = daemon.child.pid!;
    const cpu0 = (await procCounters(pid)).cpu;
    const t0 = performance.now();
    const curls = curlRanges(tb, url(c), jobs, bound(c, c.size, 2));
    const [rs, samples] = await Promise.all([
      curls,
      sampleGrowth(
        jobs.map((j) => j.out),
        t0,
        curls,
      ),
    ]);
    const endS = (performance.now() - t0) / 1000;
    const cpuS = (await procCounters(pid)).cpu - cpu0;
    await checkAndRemove(
      tb,
      FILE,
      jobs.map((j) => j.out),
    );
    const firstEnd = Math.min(...rs.map((r) => r.seconds));
    const inWindow = samples.filter(([t]) => t >= 1 && t <= firstEnd - 0.1);
    const a = inWindow[0];
    const b = inWindow[inWindow.length - 1];
    if (!a || !b || b[0] - a[0] < 1) throw new Error(`up: no window of ≥ 1 s with all ${K} curls running`);
    return {
      windowMbit: mbitOf(b[1] - a[1], b[0] - a[0]),
      endToEndMbit: mbitOf(c.size, endS),
      cpuS,
      cpuPerGiB: cpuS / (c.size / GiB),
      curls: rs.map((r) => r.mbit),
    };
  } finally {
    await daemon.stop();
    for (let i = 0; i < K; i++) await rm(out(tb, `up${i}`), { force: true });
  }
}

export interface NodesRun {
  /** Each machine's uplink alone (three range curls at once, one per machine). */
  singles: Limit;
  get: GetRun;
  ratio: number;
  nodes: { dev: string; relayedMiB: number; cpuS: number; cpuPerGiB: number }[];
}

/** A LAN of the client (its first uplink) and two nodes; `get --link <dev> --join A --join B`. */
export async function overNodes(c: RateContext): Promise<NodesRun> {
  const { tb } = c;
  const machines = [0, 1, 2].map((k) => tb.machines[k]!);
  const devOf = (k: number) => tb.uplinks[machines[k]!.uplinks[0]!]!.dev;
  const singles = await rangesAtOnce(
    c,
    machines.map((m, k) => ({ ns: m.ns, dev: devOf(k) })),
    'single',
  );
  const lent = await startLendingNodes(tb, cli, [1, 2]);
  try {
    const pids = lent.nodes.map((n) => n.child.pid!);
    const cpu0 = await Promise.all(pids.map((p) => procCounters(p)));
    const rx0 = await tb.uplinkCounters();
    const extra = ['--link', devOf(0), ...lent.tokens.flatMap((t) => ['--join', t])];
    const g = await measuredGet(c, extra, 'nodes');
    const cpu1 = await Promise.all(pids.map((p) => procCounters(p)));
    const rx1 = await tb.uplinkCounters();
    const rx = (dev: string) => (rx1[dev]?.rx ?? 0) - (rx0[dev]?.rx ?? 0);
    const total = [devOf(0), ...lent.devs].reduce((a, d) => a + rx(d), 0);
    const nodes = lent.devs.map((dev, i) => {
      // Payload a node relayed: the file's bytes in proportion to its uplink's share of the wire bytes.
      const relayed = total > 0 ? (c.size * rx(dev)) / total : 0;
      const cpuS = cpu1[i]!.cpu - cpu0[i]!.cpu;
      return {
        dev,
        relayedMiB: relayed / 2 ** 20,
        cpuS,
        cpuPerGiB: relayed > 0 ? cpuS / (relayed / GiB) : NaN,
      };
    });
    return { singles, get: g, ratio: g.mbit / singles.mbit, nodes };
  } finally {
    await lent.stop();
  }
}
