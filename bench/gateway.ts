/**
 * npm run bench:gateway — `linkmux gateway` against kernel ECMP, side by side
 * in one run on the netns testbed: a LAN host (plain curl, no proxy) → the
 * gateway namespace with 3 × 8 Mbit/s uplinks → one server address.
 *
 * K = 1..K_MAX parallel downloads from the LAN host, TRIALS trials each:
 *   - through linkmux gateway (nft numgen round-robin + policy routing);
 *   - through kernel ECMP (multipath default route, L4 hash) + masquerade.
 * Both are measured identically (bench/flows.ts): the gateway's per-uplink rx
 * counters over the window [1 s, T − 0.5 s], as a fraction of the sum of the
 * single-link rates (each uplink alone, measured the same way). A link is busy
 * in a trial when it carried ≥ 25 % of its own rate. Target: for K ≥ 3,
 * linkmux ≥ 0.95 of the sum in every trial. Also: the CPU the linkmux process
 * uses at full load (it is not in the data path: the kernel forwards) next to
 * the machine's total CPU use in the same window.
 *
 * Options (env): BENCH_TRIALS (10), BENCH_MAX_TIME (4 s), BENCH_K_MAX (6).
 * Needs root; traffic stays inside the testbed's namespaces.
 */
import { readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createTestbed, removeLeftovers, type Testbed } from '../src/testbed/testbed.js';
import { startDaemon, waitFor, type RunningDaemon } from '../test/helpers/daemon.js';
import { runFlows, type FlowRun } from './flows.js';
import { mean, mbit, sleep } from './proxy-tools.js';

const MiB = 1024 * 1024;
const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const TRIALS = env('BENCH_TRIALS', 10);
const T = env('BENCH_MAX_TIME', 4);
const K_MAX = env('BENCH_K_MAX', 6);
const WINDOW = { maxTimeS: T, startMs: 1_000, endMs: T * 1000 - 500 };
const BUSY_SHARE = 0.25;
const TARGET = 0.95;
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const progress = (s: string) =>
  console.error(`[bench:gateway ${new Date().toISOString().slice(11, 19)}] ${s}`);

interface Trial {
  k: number;
  mode: 'linkmux' | 'ecmp';
  fraction: number;
  allBusy: boolean;
  failed: number;
}

/** CPU seconds of one process, and of the whole machine (all cores, busy time), so far. */
async function cpu(pid: number): Promise<{ proc: number; machineBusy: number; machineTotal: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const all = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const idle = (all[3] ?? 0) + (all[4] ?? 0);
  const total = all.reduce((a, b) => a + b, 0);
  return {
    proc: (Number(f[11]) + Number(f[12])) / 100,
    machineBusy: (total - idle) / 100,
    machineTotal: total / 100,
  };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench:gateway needs root (it builds network namespaces)');
    process.exit(2);
  }
  await removeLeftovers();
  const tb: Testbed = await createTestbed({
    links: 3,
    rateMbit: 8,
    lanHosts: 1,
    files: [{ name: 'big.bin', size: 64 * MiB }],
  });
  let gw: RunningDaemon | undefined;
  try {
    const url = tb.url('big.bin');
    const host = tb.lanHosts[0]!.ns;
    progress('measuring each uplink alone');
    const singles: Record<string, number> = {};
    for (const u of tb.uplinks) {
      const r = await runFlows(tb, tb.clientNs, 1, ['--interface', u.dev, url], WINDOW);
      singles[u.dev] = r.rates[u.dev] ?? 0;
      await sleep(300);
    }
    const sum = Object.values(singles).reduce((a, b) => a + b, 0);
    const trials: Trial[] = [];
    const record = (k: number, mode: Trial['mode'], run: FlowRun) => {
      const total = Object.values(run.rates).reduce((a, b) => a + b, 0);
      const allBusy = tb.uplinks.every((u) => (run.rates[u.dev] ?? 0) >= BUSY_SHARE * (singles[u.dev] ?? 0));
      trials.push({
        k,
        mode,
        fraction: total / sum,
        allBusy,
        failed: run.codes.filter((c) => c !== 0 && c !== 28).length,
      });
    };

    gw = await startDaemon(
      tb,
      cli,
      `listen: { socks: false, http: false, control: "127.0.0.1:9190" }
gateway:
  lan: [lan0]
  uplinks: [${tb.uplinks.map((u) => `{ interface: ${u.dev} }`).join(', ')}]
health: { interval: 1, timeout: 0.5, targets: ["tcp://${tb.serverAddress}:80"] }
log: warn
`,
      { args: ['gateway'] },
    );
    const d = gw;
    await waitFor(
      'uplinks online',
      10_000,
      () => d.status(),
      (s) => s.links.every((l) => l.state === 'online'),
    );
    let cpuLine = '';
    for (let k = 1; k <= K_MAX; k++) {
      for (let t = 0; t < TRIALS; t++) {
        const c0 = k === K_MAX && t === 0 ? await cpu(d.child.pid!) : undefined;
        record(k, 'linkmux', await runFlows(tb, host, k, [url], WINDOW));
        if (c0) {
          const c1 = await cpu(d.child.pid!);
          const wall = T;
          cpuLine =
            `linkmux process ${(((c1.proc - c0.proc) / wall) * 100).toFixed(2)} % of one core; whole machine ` +
            `${(((c1.machineBusy - c0.machineBusy) / (c1.machineTotal - c0.machineTotal)) * 100).toFixed(1)} % busy ` +
            `(all cores, testbed shaping and forwarding included), over ${wall} s with K = ${k} flows`;
        }
        await sleep(300);
      }
      progress(
        `K=${k} linkmux: ${trials
          .filter((x) => x.k === k)
          .map((x) => x.fraction.toFixed(2))
          .join(' ')}`,
      );
    }
    await gw.stop();
    gw = undefined;
    await tb.setEcmp(true);
    await tb.gatewayMasquerade(true);
    try {
      for (let k = 1; k <= K_MAX; k++) {
        for (let t = 0; t < TRIALS; t++) {
          record(k, 'ecmp', await runFlows(tb, host, k, [url], WINDOW));
          await sleep(300);
        }
        const ecmp = trials.filter((x) => x.k === k && x.mode === 'ecmp');
        progress(`K=${k} ECMP: ${ecmp.map((x) => x.fraction.toFixed(2)).join(' ')}`);
      }
    } finally {
      await tb.gatewayMasquerade(false);
      await tb.setEcmp(false);
    }

    console.log(
      `\n## linkmux gateway vs kernel ECMP — LAN host → gateway (3 × 8 Mbit/s) → one server, ${TRIALS} trials`,
    );
    console.log(
      `Single-link rates: ${Object.entries(singles)
        .map(([d2, r]) => `${d2} ${mbit(r)}`)
        .join(', ')} Mbit/s; sum ${mbit(sum)} Mbit/s.`,
    );
    console.log(
      '| K | linkmux mean | linkmux min | linkmux all busy | ECMP mean | ECMP min | ECMP all busy | target |',
    );
    console.log('|---:|---:|---:|---:|---:|---:|---:|---|');
    let ok = true;
    for (let k = 1; k <= K_MAX; k++) {
      const cell = (mode: Trial['mode']) => {
        const ts = trials.filter((x) => x.k === k && x.mode === mode);
        const fr = ts.map((x) => x.fraction);
        return { mean: mean(fr), min: Math.min(...fr), busy: ts.filter((x) => x.allBusy).length / ts.length };
      };
      const lm = cell('linkmux');
      const ec = cell('ecmp');
      if (k >= 3 && lm.min < TARGET) ok = false;
      const pct = (x: number) => `${Math.round(x * 100)} %`;
      console.log(
        `| ${k} | ${lm.mean.toFixed(3)} | ${lm.min.toFixed(3)} | ${pct(lm.busy)} | ${ec.mean.toFixed(3)} | ` +
          `${ec.min.toFixed(3)} | ${pct(ec.busy)} | ${k < 3 ? '—' : lm.min >= TARGET ? 'MET' : 'MISSED'} |`,
      );
    }
    const failed = trials.filter((x) => x.failed > 0);
    console.log(
      `Failed curls: ${failed.length === 0 ? 'none' : failed.map((x) => `K=${x.k} ${x.mode}`).join(', ')}`,
    );
    console.log(`CPU at full load: ${cpuLine}`);
    console.log(`Target (K ≥ 3: linkmux ≥ ${TARGET} × sum in every trial): ${ok ? 'MET' : 'MISSED'}`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    await gw?.stop();
    await tb.destroy();
    await rm(`/tmp/${tb.clientNs}-linkmux.yaml`, { force: true });
  }
}

await main();
