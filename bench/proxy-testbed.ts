/**
 * bench:proxy part 1, on the netns testbed: K parallel downloads through the
 * SOCKS5 proxy vs a kernel ECMP route, as a share of the summed single-link
 * rates (see proxy.ts for the method).
 */
import { rm } from 'node:fs/promises';
import { createTestbed } from '../src/testbed/testbed.js';
import { startDaemon, waitFor, type RunningDaemon } from '../test/helpers/daemon.js';
import { mbit, mean, sleep } from './proxy-tools.js';
import { type FlowRun } from './flows.js';
import {
  BUSY_SHARE,
  FILE,
  FILE_SIZE,
  K_MAX,
  MiB,
  T,
  TARGET,
  TRIALS,
  WINDOW_END_MS,
  WINDOW_START_MS,
  cli,
  progress,
  runFlows,
} from './proxy-options.js';
import { checkStopping, registerCleanup } from './proxy-cleanup.js';

interface Trial {
  k: number;
  mode: 'linkmux' | 'ecmp';
  run: FlowRun;
  fraction: number;
  busy: Record<string, boolean>;
  failed: number;
}

interface TestbedResult {
  singles: Record<string, number>;
  sum: number;
  trials: Trial[];
  daemonLog: string;
}

export async function testbedPart(): Promise<TestbedResult> {
  const tb = await createTestbed({ links: 3, rateMbit: 8, files: [{ name: FILE, size: FILE_SIZE }] });
  let daemon: RunningDaemon | undefined;
  const cleanup = registerCleanup(async () => {
    try {
      await daemon?.stop();
    } finally {
      await tb.destroy();
      // startDaemon writes its config here and leaves it behind.
      await rm(`/tmp/${tb.prefix}linkmux.yaml`, { force: true });
    }
  });
  try {
    const url = tb.url(FILE);
    progress(`testbed ${tb.prefix} up; measuring each uplink alone`);
    const singles: Record<string, number> = {};
    for (const u of tb.uplinks) {
      checkStopping();
      const r = await runFlows(tb, 1, ['--interface', u.dev, url]);
      singles[u.dev] = r.rates[u.dev] ?? 0;
      await sleep(300);
    }
    const sum = Object.values(singles).reduce((a, b) => a + b, 0);

    daemon = await startDaemon(
      tb,
      cli,
      `
listen: { socks: "127.0.0.1:1080", http: "127.0.0.1:8080", control: "127.0.0.1:9190" }
links: [${tb.uplinks.map((u) => u.dev).join(', ')}]
policy: adaptive
health:
  interval: 1
  timeout: 0.5
  failThreshold: 3
  riseThreshold: 2
  targets: ["tcp://${tb.serverAddress}:80"]
`,
    );
    const d = daemon;
    const allOnline = () =>
      waitFor(
        'every link online',
        10_000,
        () => d.status(),
        (s) => s.links.every((l) => l.state === 'online'),
      );

    const trials: Trial[] = [];
    const record = (k: number, mode: Trial['mode'], run: FlowRun) => {
      const busy: Record<string, boolean> = {};
      for (const u of tb.uplinks) busy[u.dev] = (run.rates[u.dev] ?? 0) >= BUSY_SHARE * (singles[u.dev] ?? 0);
      const total = Object.values(run.rates).reduce((a, b) => a + b, 0);
      const failed = run.codes.filter((c) => c !== 0 && c !== 28).length;
      trials.push({ k, mode, run, fraction: total / sum, busy, failed });
    };
    for (let k = 1; k <= K_MAX; k++) {
      await allOnline();
      for (let t = 0; t < TRIALS; t++) {
        checkStopping();
        record(k, 'linkmux', await runFlows(tb, k, ['--socks5', d.socks, url], () => d.status()));
        await sleep(300);
      }
      await tb.setEcmp(true);
      try {
        for (let t = 0; t < TRIALS; t++) {
          checkStopping();
          record(k, 'ecmp', await runFlows(tb, k, [url]));
          await sleep(300);
        }
      } finally {
        await tb.setEcmp(false);
      }
      const of = (m: Trial['mode']) =>
        trials
          .filter((x) => x.k === k && x.mode === m)
          .map((x) => x.fraction.toFixed(2))
          .join(' ');
      progress(`K=${k}: linkmux ${of('linkmux')} | ECMP ${of('ecmp')}`);
    }
    return { singles, sum, trials, daemonLog: d.log() };
  } finally {
    await cleanup.run();
  }
}

function describeLinks(trial: Trial, devs: string[]): string {
  const rates = devs.map((dev) => `${dev} ${mbit(trial.run.rates[dev] ?? 0)}`).join(', ');
  const st = trial.run.status;
  const conns = st
    ? st.links
        .map(
          (l) =>
            `${l.id} ${l.state} ${l.activeConnections} conn, cap ${l.capacity === undefined ? '?' : mbit(l.capacity)}`,
        )
        .join('; ')
    : '';
  const flows =
    trial.mode === 'ecmp'
      ? `flows by source: ${trial.run.outs.map((o) => o.split(' ')[1] ?? '?').join(' ')}`
      : `/status mid-window: ${conns || 'n/a'}`;
  return `rx Mbit/s: ${rates}; ${flows}; curl exits: ${trial.run.codes.join(' ')}`;
}

export function printTestbed(r: TestbedResult): boolean {
  const devs = Object.keys(r.singles);
  console.log(`\n## Testbed: 3 × 8 Mbit/s uplinks, one server address, ${TRIALS} trials per K and mode`);
  console.log(
    `Window: rx counters of the client's uplinks from ${WINDOW_START_MS / 1000} s to ${WINDOW_END_MS / 1000} s ` +
      `after the start of K curls (--max-time ${T}, ${FILE_SIZE / MiB} MiB file).`,
  );
  console.log(
    `Single-link rates (each alone, same window): ${devs.map((d) => `${d} ${mbit(r.singles[d] ?? 0)}`).join(', ')} ` +
      `Mbit/s; sum ${mbit(r.sum)} Mbit/s. Busy link: ≥ ${BUSY_SHARE * 100} % of its own rate.\n`,
  );
  console.log(
    '| K | linkmux mean | linkmux min | linkmux all links busy | ECMP mean | ECMP min | ECMP all links busy | target (K ≥ 3: linkmux ≥ 0.95 in every trial) |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|---|');
  let ok = true;
  const ks = [...new Set(r.trials.map((t) => t.k))];
  for (const k of ks) {
    const cell = (mode: Trial['mode']) => {
      const ts = r.trials.filter((t) => t.k === k && t.mode === mode);
      const fr = ts.map((t) => t.fraction);
      const all = ts.filter((t) => Object.values(t.busy).every(Boolean)).length;
      return { mean: mean(fr), min: Math.min(...fr), busy: all / ts.length };
    };
    const lm = cell('linkmux');
    const ec = cell('ecmp');
    const target = k < 3 ? '—' : lm.min >= TARGET ? 'MET' : 'MISSED';
    if (k >= 3 && lm.min < TARGET) ok = false;
    const pct = (x: number) => `${Math.round(x * 100)} %`;
    console.log(
      `| ${k} | ${lm.mean.toFixed(3)} | ${lm.min.toFixed(3)} | ${pct(lm.busy)} | ${ec.mean.toFixed(3)} | ` +
        `${ec.min.toFixed(3)} | ${pct(ec.busy)} | ${target} |`,
    );
  }
  const failures = r.trials.filter((t) => t.failed > 0);
  console.log(
    `\nFailed curls (exit other than 0 or 28): ${failures.length === 0 ? 'none' : failures.map((t) => `K=${t.k} ${t.mode}: ${t.run.outs.join(' / ')}`).join('; ')}`,
  );
  const odd = r.trials.filter(
    (t) => t.mode === 'linkmux' && t.k >= 3 && (t.fraction < TARGET || !Object.values(t.busy).every(Boolean)),
  );
  console.log(
    `linkmux trials with K ≥ 3 below target or with an idle link: ${odd.length === 0 ? 'none' : ''}`,
  );
  for (const t of odd) console.log(`- K=${t.k} fraction ${t.fraction.toFixed(3)}: ${describeLinks(t, devs)}`);
  const worstEcmp = r.trials
    .filter((t) => t.mode === 'ecmp' && t.k >= 3)
    .sort((a, b) => a.fraction - b.fraction)[0];
  if (worstEcmp)
    console.log(
      `Worst ECMP trial with K ≥ 3: K=${worstEcmp.k} fraction ${worstEcmp.fraction.toFixed(3)}: ${describeLinks(worstEcmp, devs)}`,
    );
  const events = r.daemonLog.split('\n').filter((l) => /warn|error|offline|degraded/.test(l));
  console.log(
    `Daemon log, warnings and link state changes: ${events.length === 0 ? 'none' : `\n${events.slice(0, 20).join('\n')}`}`,
  );
  console.log(`\nTarget (K ≥ 3: linkmux ≥ ${TARGET} × sum in every trial): ${ok ? 'MET' : 'MISSED'}`);
  return ok;
}

// ── part 2: loopback ────────────────────────────────────────────────────────
