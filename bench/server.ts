/**
 * npm run bench:server — ONE TCP connection over every uplink through a
 * `linkmux server` (kernel MPTCP), on the netns testbed with the far-server
 * host: client (3 shaped uplinks) → ISPs (NAT) → `linkmux server` → web host.
 * In one run, per rate set (3 × 8 and 8 + 4 + 2 Mbit/s):
 *   - each uplink alone (curl --interface, concurrently: independent paths);
 *   - one curl --socks5-hostname through plain `linkmux up` (one connection
 *     is one link: ≈ 1/3);
 *   - the same through `linkmux up --server`: goodput / sum, each uplink's
 *     share of the bytes (kernel counters), the server's CPU seconds per GiB
 *     relayed (/proc/<pid>/stat utime + stime);
 * and on 3 × 8: an uplink blackholed mid-transfer (time until goodput is back
 * to ≥ 0.9 × the other links' sum, no reset, file intact) and healed (time until
 * it carries traffic again).
 * Targets: ≥ 0.90 × sum (3 × 8), ≥ 0.85 × sum (8 + 4 + 2), every uplink ≥ 20 %,
 * recovery ≤ 5 s, back ≤ 10 s.
 *
 * Options (env): BENCH_SIZE_MIB (default 32); BENCH_ONLY=equal|unequal (one scenario);
 * BENCH_PLAIN=0 (skip the plain `linkmux up` run); BENCH_FAR_SYSCTL / BENCH_CLIENT_SYSCTL
 * ("key=value,key=value": sysctls set in the server's / client's namespace before
 * the daemons start, for experiments); BENCH_TRACE=1 (print the blackhole's
 * goodput timeline, per-run tail and wire rates, TCP/MPTCP counters, the server's subflows);
 * BENCH_REPEAT=N (N downloads through the server in the same testbed, each reported; the
 * verdict uses the first); BENCH_FAILOVER=0 (skip the blackhole); BENCH_CONGESTION=NAME|system
 * (`linkmux server --congestion`, default cubic). Needs root; traffic stays in the testbed.
 */
import { rm, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createTestbed, removeLeftovers, type Testbed } from '../src/testbed/testbed.js';
import { startDaemon, type RunningDaemon } from '../test/helpers/daemon.js';
import { procCounters, sleep } from './proxy-tools.js';
import { mibDelta, readMibs, subflowLines } from './server-trace.js';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 32) * MiB;
const REPEAT = Math.max(1, Math.min(10, Number(process.env.BENCH_REPEAT ?? 1)));
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const mbitOf = (bytes: number, s: number) => (bytes * 8) / s / 1e6;

const health = (bed: Testbed) =>
  `health: { interval: 1, timeout: 0.5, failThreshold: 3, riseThreshold: 2, targets: ["tcp://${bed.serverAddress}:80"] }`;

async function curl(bed: Testbed, args: string[], file: string, out?: string): Promise<number> {
  out ??= `/tmp/${bed.prefix}bench-${Math.random().toString(16).slice(2)}`;
  const t = performance.now();
  await bed.exec(bed.clientNs, 'curl', [
    '-sS',
    '--fail',
    '--max-time',
    '300',
    ...args,
    '-o',
    out,
    bed.url(file),
  ]);
  const s = (performance.now() - t) / 1000;
  const { stdout } = await bed.exec(bed.clientNs, 'sha256sum', [out]);
  await rm(out, { force: true });
  if (stdout.split(/\s+/)[0] !== bed.files[file]?.sha256) throw new Error(`corrupt download of ${file}`);
  return s;
}

/** Bytes curl has written so far (the namespaces share this file system): the application's goodput. */
const written = async (path: string) => (await stat(path).catch(() => ({ size: 0 }))).size;

const rx = async (bed: Testbed) => {
  const c = await bed.counters(bed.clientNs);
  return bed.uplinks.map((u) => c[u.dev]?.rx ?? 0);
};

interface Outcome {
  ok: boolean;
  lines: string[];
}

async function scenario(rates: number[], target: number, failover: boolean): Promise<Outcome> {
  const lines: string[] = [];
  const say = (s: string) => {
    console.log(s);
    lines.push(s);
  };
  const tb = await createTestbed({
    links: rates.length,
    rateMbit: rates,
    farServer: true,
    files: [
      { name: 'one.bin', size: SIZE },
      { name: 'long.bin', size: 2 * SIZE },
    ],
  });
  let server: RunningDaemon | undefined;
  let client: RunningDaemon | undefined;
  let ok = true;
  try {
    const far = tb.farServerNs as string;
    const sysctls = async (ns: string, spec: string | undefined) => {
      for (const kv of (spec ?? '').split(',').filter(Boolean)) await tb.exec(ns, 'sysctl', ['-qw', kv]);
    };
    await sysctls(far, process.env.BENCH_FAR_SYSCTL);
    await sysctls(tb.clientNs, process.env.BENCH_CLIENT_SYSCTL);
    const flags = ['--state-dir', `/tmp/${tb.prefix}server`, '--advertise', `${tb.farServerAddress}:7400`];
    const token = (await tb.exec(far, process.execPath, [cli, 'server', '--init', ...flags])).stdout.trim();
    server = await startDaemon(tb, cli, 'listen: { control: "127.0.0.1:9190" }\nlog: warn\n', {
      ns: far,
      args: [
        'server',
        ...flags,
        ...(process.env.BENCH_CONGESTION ? ['--congestion', process.env.BENCH_CONGESTION] : []),
      ],
    });
    say(`\n## ${rates.join(' + ')} Mbit/s — one ${SIZE / MiB} MiB download, one connection`);
    const singles = await Promise.all(tb.uplinks.map((u) => curl(tb, ['--interface', u.dev], 'one.bin')));
    const singleMbit = singles.map((s) => mbitOf(SIZE, s));
    const sum = singleMbit.reduce((a, b) => a + b, 0);
    say('| what | goodput (Mbit/s) | ratio to sum |');
    say('|---|---:|---:|');
    singleMbit.forEach((m, i) => say(`| curl, up${i} alone | ${m.toFixed(2)} | ${(m / sum).toFixed(3)} |`));
    say(`| sum of single links | ${sum.toFixed(2)} | 1.000 |`);

    const yaml = (withServer: boolean) =>
      `listen: { socks: "127.0.0.1:1080", http: false, control: "127.0.0.1:9190" }\n${health(tb)}\nlog: ${process.env.BENCH_TRACE === '1' ? 'info' : 'warn'}\n` +
      (withServer ? `server: { token: "${token}", stateDir: "/tmp/${tb.prefix}client" }\n` : '');
    if (process.env.BENCH_PLAIN !== '0') {
      client = await startDaemon(tb, cli, yaml(false));
      const plain = mbitOf(SIZE, await curl(tb, ['--socks5-hostname', client.socks], 'one.bin'));
      say(`| one curl through plain \`linkmux up\` | ${plain.toFixed(2)} | ${(plain / sum).toFixed(3)} |`);
      await client.stop();
    }

    client = await startDaemon(tb, cli, yaml(true));
    await sleep(3000); // endpoints installed, health settled
    const pid = server.child.pid as number;
    const runs: Run[] = [];
    for (let k = 0; k < REPEAT; k++) runs.push(await viaServerRun(tb, client, pid, sum, say));
    const run = runs[0] as Run;
    const { grew, cpu } = run;
    const ratio = mbitOf(SIZE, run.s) / sum;
    if (REPEAT > 1) {
      const ratios = runs.map((r) => mbitOf(SIZE, r.s) / sum);
      say(
        `ratios of ${REPEAT} runs in this testbed: ${ratios.map((r) => r.toFixed(3)).join(', ')} (the verdict uses the first)`,
      );
    }
    const total = grew.reduce((a, b) => a + b, 0);
    const shares = grew.map((g) => g / total);
    say(
      `shares of that connection's bytes per uplink: ${shares.map((x, i) => `up${i} ${(x * 100).toFixed(1)} %`).join(', ')}`,
    );
    const cpuPerGiB = cpu / (SIZE / 1024 ** 3);
    say(
      `server CPU: ${cpu.toFixed(2)} s for ${SIZE / MiB} MiB = ${cpuPerGiB.toFixed(2)} CPU-s per GiB relayed`,
    );
    // ≥ 20 % each where the links are equal; on unequal links, ≥ 0.8 × the link's share of the sum.
    const sharesOk = shares.every((x, i) =>
      rates.every((r) => r === rates[0]) ? x >= 0.2 : x >= (0.8 * (singleMbit[i] ?? 0)) / sum,
    );
    const ratioOk = ratio >= target;
    say(
      `target: ≥ ${target.toFixed(2)} × sum → ${ratioOk ? 'MET' : 'MISSED'} (${ratio.toFixed(3)}); every uplink's share (≥ 20 %, or ≥ 0.8 × its capacity share on unequal links) → ${sharesOk ? 'MET' : 'MISSED'}`,
    );
    ok = ratioOk && sharesOk;

    if (failover && process.env.BENCH_FAILOVER !== '0')
      ok = (await blackhole(tb, client, singleMbit, say)) && ok;
  } finally {
    await client?.stop();
    await server?.stop();
    await rm(`/tmp/${tb.prefix}server`, { recursive: true, force: true });
    await rm(`/tmp/${tb.prefix}client`, { recursive: true, force: true });
    await tb.destroy();
  }
  return { ok, lines };
}

interface Run {
  s: number;
  grew: number[];
  cpu: number;
}

/**
 * One curl through `up --server`; with BENCH_TRACE=1 also a 100 ms timeline of the bytes
 * curl wrote and each uplink received, summarised as the time to the first byte and how
 * long before the end each uplink went idle (a tail run on fewer uplinks).
 */
async function viaServerRun(
  tb: Testbed,
  client: RunningDaemon,
  pid: number,
  sum: number,
  say: (s: string) => void,
): Promise<Run> {
  const cpu0 = (await procCounters(pid)).cpu;
  const rx0 = await rx(tb);
  const out = `/tmp/${tb.prefix}bench-one`;
  const samples: Array<{ t: number; rx: number[]; got: number }> = [];
  let done = false;
  const t0 = performance.now();
  const sampler = (async () => {
    for (let i = 0; i < 3000 && !done && process.env.BENCH_TRACE === '1'; i++) {
      samples.push({ t: (performance.now() - t0) / 1000, rx: await rx(tb), got: await written(out) });
      await sleep(100);
    }
  })();
  const s = await curl(tb, ['--socks5-hostname', client.socks], 'one.bin', out).finally(() => (done = true));
  await sampler;
  const cpu1 = (await procCounters(pid)).cpu;
  const rx1 = await rx(tb);
  say(
    `| one curl through \`linkmux up --server\` | ${mbitOf(SIZE, s).toFixed(2)} | ${(mbitOf(SIZE, s) / sum).toFixed(3)} |`,
  );
  if (samples.length > 2) {
    const first = samples.find((x) => x.got > 0)?.t ?? NaN;
    const idle = tb.uplinks.map((_, u) => {
      let last = 0;
      for (let i = 1; i < samples.length; i++) {
        const a = samples[i - 1]!;
        const b = samples[i]!;
        if ((b.rx[u] ?? 0) - (a.rx[u] ?? 0) > 20_000) last = b.t;
      }
      return s - last;
    });
    say(
      `  first byte written after ${first.toFixed(2)} s; each uplink idle for the last ${idle.map((x, u) => `up${u} ${x.toFixed(2)} s`).join(', ')}`,
    );
  }
  const grew = rx1.map((b, i) => b - (rx0[i] ?? 0));
  if (process.env.BENCH_TRACE === '1')
    say(
      `  wire rate per uplink (frames received / time): ${grew.map((g, u) => `up${u} ${mbitOf(g, s).toFixed(2)}`).join(', ')} Mbit/s`,
    );
  return { s, grew, cpu: cpu1 - cpu0 };
}

/** up1 blackholed 4 s into a long download, healed 8 s later; goodput sampled every 250 ms. */
async function blackhole(
  tb: Testbed,
  client: RunningDaemon,
  single: number[],
  say: (s: string) => void,
): Promise<boolean> {
  const others = single.filter((_, i) => i !== 1).reduce((a, b) => a + b, 0);
  const samples: Array<{ t: number; rx: number[]; got: number; eps: number }> = [];
  const trace = process.env.BENCH_TRACE === '1';
  const endpoints = async () =>
    trace
      ? (await tb.exec(tb.clientNs, 'ip', ['mptcp', 'endpoint', 'show'])).stdout.trim().split('\n').length
      : 0;
  const out = `/tmp/${tb.prefix}bench-long`;
  const t0 = performance.now();
  let done = false;
  const sampler = (async () => {
    for (let i = 0; i < 2400 && !done; i++) {
      samples.push({
        t: (performance.now() - t0) / 1000,
        rx: await rx(tb),
        got: await written(out),
        eps: await endpoints(),
      });
      await sleep(250);
    }
  })();
  const far = tb.farServerNs as string;
  const mib0 = trace ? await Promise.all([readMibs(tb, tb.clientNs), readMibs(tb, far)]) : [];
  const snaps: string[] = [];
  const snap = async (label: string) => {
    if (trace) snaps.push(`${label}:`, ...(await subflowLines(tb, far, 7400)).map((l) => `  ${l}`));
  };
  const transfer = curl(tb, ['--socks5-hostname', client.socks], 'long.bin', out);
  await sleep(4000);
  await snap('server subflows 0.2 s before the blackhole');
  const cut = (performance.now() - t0) / 1000;
  await tb.blackhole(1);
  for (const at of [0.5, 1.3, 2, 3, 4]) {
    await sleep((cut + at) * 1000 - (performance.now() - t0));
    await snap(`server subflows ${at} s after`);
  }
  await sleep((cut + 8) * 1000 - (performance.now() - t0));
  const healed = (performance.now() - t0) / 1000;
  await tb.unblackhole(1);
  let intact = true;
  try {
    await transfer;
  } catch (err) {
    intact = false;
    say(`the transfer failed: ${String(err)}`);
  }
  done = true;
  await sampler;
  // Over a sliding 1 s window: goodput (bytes curl wrote: head-of-line blocking on a dead
  // subflow shows here, not in the interface counters) and up1's received bytes.
  const window = (i: number, pick: (x: (typeof samples)[number]) => number) => {
    const a = samples[i - 4];
    const b = samples[i];
    return a && b ? mbitOf(pick(b) - pick(a), b.t - a.t) : 0;
  };
  const all = (x: (typeof samples)[number]) => x.got;
  let recovered: number | undefined;
  let back: number | undefined;
  let dip = Infinity;
  const thr = 0.9 * others;
  // Recovered: from a window lying wholly after the cut, goodput stays ≥ thr for 2 s (or until the heal).
  for (let i = 4; i < samples.length; i++) {
    const t = samples[i]!.t;
    if (t >= cut + 1 && t < healed) {
      dip = Math.min(dip, window(i, all));
      if (recovered === undefined) {
        let holds = true;
        for (let k = i; k < samples.length && samples[k]!.t <= Math.min(t + 2, healed); k++) {
          if (window(k, all) < thr) holds = false;
        }
        if (holds) recovered = t - cut;
      }
    }
    if (back === undefined && t > healed && window(i, (x) => x.rx[1] ?? 0) >= 1) back = t - healed;
  }
  say(`\n## up1 blackholed mid-transfer (3 × 8), ${(2 * SIZE) / MiB} MiB, one connection`);
  say(`connection survived, file intact: ${intact ? 'yes' : 'NO'}`);
  say(`lowest goodput over 1 s after the blackhole: ${dip.toFixed(2)} Mbit/s`);
  say(
    `goodput back to ≥ 0.9 × the other links' sum (${(0.9 * others).toFixed(2)} Mbit/s): ${recovered === undefined ? 'never' : `${recovered.toFixed(2)} s`} after the blackhole`,
  );
  say(
    `up1 carries traffic again (≥ 1 Mbit/s): ${back === undefined ? 'never' : `${back.toFixed(2)} s`} after it healed`,
  );
  if (trace) {
    const mib1 = await Promise.all([readMibs(tb, tb.clientNs), readMibs(tb, far)]);
    say(`client counters: ${mibDelta(mib0[0] ?? {}, mib1[0])}`);
    say(`server counters: ${mibDelta(mib0[1] ?? {}, mib1[1])}`);
    say(snaps.join('\n'));
    for (let i = 4; i < samples.length; i++) {
      const t = samples[i]!.t;
      if (t < cut - 1 || t > healed + 3) continue;
      const per = [0, 1, 2].map((u) => window(i, (x) => x.rx[u] ?? 0).toFixed(1)).join(' ');
      say(
        `t=${(t - cut).toFixed(2)} goodput ${window(i, all).toFixed(2)} rx/uplink ${per} endpoints ${samples[i]!.eps}`,
      );
    }
    say(
      client
        .log()
        .split('\n')
        .filter((l) => /mptcp|offline|online|degraded/.test(l))
        .join('\n'),
    );
  }
  const ok = intact && recovered !== undefined && recovered <= 5 && back !== undefined && back <= 10;
  say(`target: survive intact, recover ≤ 5 s, back ≤ 10 s → ${ok ? 'MET' : 'MISSED'}`);
  return ok;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench:server needs root (it builds network namespaces)');
    process.exit(2);
  }
  await removeLeftovers();
  const only = process.env.BENCH_ONLY;
  const a = only === 'unequal' ? { ok: true } : await scenario([8, 8, 8], 0.9, true);
  const b = only === 'equal' ? { ok: true } : await scenario([8, 4, 2], 0.85, false);
  process.exitCode = a.ok && b.ok ? 0 : 1;
}

await main();
