/**
 * npm run bench:relay — what relaying costs per byte, on the netns testbed:
 * CPU seconds (user + system of the process, /proc/<pid>/stat) per GiB moved.
 *
 *   up:   3 uplinks × BENCH_RATE Mbit/s, BENCH_FLOWS curls through `linkmux up`'s
 *         SOCKS5 port; the daemon's CPU per GiB the curls received.
 *   node: a node machine with one uplink × BENCH_RATE Mbit/s, `linkmux up` on the
 *         client with only that node as a link (TLS + SOCKS5 client side),
 *         BENCH_FLOWS curls through it; the node's and the client daemon's CPU per GiB.
 *   get:  the same node, `linkmux get --join` alone on the client (its own uplink
 *         down); the node's CPU per GiB and get's own (/usr/bin/time); sha256 checked.
 *
 * Idle CPU (health probes, samplers) is measured over BENCH_IDLE_S seconds
 * first and reported beside the relay's, not subtracted. Every byte count is
 * curl's own (%{size_download}). Options (env): BENCH_MODE (up|node|get, default up),
 * BENCH_RATE (default 8), BENCH_FLOWS (default 6), BENCH_SECONDS (default 15),
 * BENCH_TRIALS (default 2), BENCH_WARMUP_S (default 60: relaying first, reported apart as the
 * fresh daemon's; in get mode one whole get, 0 skips it), BENCH_PROF=dir (run the daemons under --cpu-prof), BENCH_DAEMON_NODE_ARGS
 * (node's options for the daemons, e.g. --no-opt);
 * LINKMUX_RELAY_COALESCE reaches the daemons (0 = coalescing off), for before/after runs.
 * Needs root; traffic stays inside the testbed.
 */
import { readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createTestbed, removeLeftovers, type Testbed } from '../src/testbed/testbed.js';
import { startDaemon, waitFor, type RunningDaemon } from '../test/helpers/daemon.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const MODE = process.env.BENCH_MODE ?? 'up';
const RATE = env('BENCH_RATE', 8);
const FLOWS = env('BENCH_FLOWS', 6);
const SECONDS = env('BENCH_SECONDS', 15);
const TRIALS = env('BENCH_TRIALS', 2);
const IDLE_S = env('BENCH_IDLE_S', 3);
/**
 * Relaying before the trials, reported on a line of its own: a fresh daemon runs the relay path
 * in V8's baseline tier until it has been busy for about a minute (with --no-opt the trials stay
 * at the first minute's cost: 2.9–4.0 against 2.3–2.6 CPU-s/GiB at 3 × 8 Mbit/s).
 */
const WARMUP_S = env('BENCH_WARMUP_S', 60);
const PROF = process.env.BENCH_PROF;
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const TICKS_PER_SECOND = 100;

async function cpuSeconds(pid: number): Promise<number> {
  const [user, sys] = await cpuSplit(pid);
  return user + sys;
}

/** [user, system] CPU seconds used so far by a process. */
async function cpuSplit(pid: number): Promise<[number, number]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(fields[11]) / TICKS_PER_SECOND, Number(fields[12]) / TICKS_PER_SECOND];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** FLOWS curls for `seconds` through a SOCKS5 proxy; the bytes they received. */
async function flows(tb: Testbed, socks: string, url: string, seconds: number): Promise<number> {
  const runs = Array.from({ length: FLOWS }, () =>
    tb
      .exec(tb.clientNs, 'sh', [
        '-c',
        `curl -sS -o /dev/null --max-time ${seconds} -w '%{size_download}' --socks5-hostname ${socks} ${url}; true`,
      ])
      .then((r) => Number(r.stdout.trim()) || 0),
  );
  return (await Promise.all(runs)).reduce((a, b) => a + b, 0);
}

/** One `linkmux get` over the node alone; prints its own CPU; the bytes it fetched. */
async function getOnce(tb: Testbed, token: string, url: string, size: number): Promise<number> {
  const out = `/tmp/${tb.prefix}get.out`;
  const r = await tb.exec(tb.clientNs, '/usr/bin/time', [
    '-f',
    'get CPU: user %U s, sys %S s',
    process.execPath,
    cli,
    'get',
    '--quiet',
    '--overwrite',
    '--join',
    token,
    '-o',
    out,
    url,
  ]);
  const sum = (await tb.exec(tb.clientNs, 'sha256sum', [out])).stdout.split(/\s+/)[0];
  await rm(out, { force: true });
  if (sum !== tb.files['big.bin']?.sha256) throw new Error('corrupt download');
  console.log(`${r.stderr.trim()} for ${(size / MiB).toFixed(0)} MiB`);
  return size;
}

// sh execs node with the flags in front of the daemon's own argv (NODE_OPTIONS refuses --cpu-prof and V8's).
const nodeArgs = [
  ...(PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`] : []),
  ...(process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean),
];
const wrap = nodeArgs.length > 0 ? ['sh', '-c', `exec "$0" ${nodeArgs.join(' ')} "$@"`] : [];

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:relay needs root (network namespaces)');
  await removeLeftovers();
  const size = Math.max(
    64 * MiB,
    Math.ceil((RATE * 1e6 * (MODE === 'up' ? 3 : 1) * SECONDS * (MODE === 'get' ? 0.8 : 1)) / 8 / MiB) * MiB,
  );
  const tb = await createTestbed(
    MODE === 'up'
      ? { links: 3, rateMbit: RATE, files: [{ name: 'big.bin', size }] }
      : { links: 2, machines: [0, 1], rateMbit: RATE, files: [{ name: 'big.bin', size }] },
  );
  const daemons: RunningDaemon[] = [];
  const health = `health: { interval: 1, timeout: 0.5, targets: ["tcp://${tb.serverAddress}:80"] }\nlog: warn\n`;
  try {
    const url = tb.url('big.bin');
    let links = `links: [${tb.uplinks.map((u) => u.dev).join(', ')}]\n`;
    const measured: { name: string; pid: number }[] = [];
    let token = '';
    if (MODE !== 'up') {
      const m = tb.machines[1]!;
      const flags = ['--listen', `${m.lanAddress}:7300`, '--state-dir', `/tmp/${tb.prefix}node1`];
      flags.push('--name', 'n1', '--link', 'up1');
      token = (await tb.exec(m.ns, process.execPath, [cli, 'node', '--init', ...flags])).stdout.trim();
      const yaml = `listen: { control: "127.0.0.1:9190" }\n${health}`;
      const node = await startDaemon(tb, cli, yaml, { ns: m.ns, args: ['node', ...flags], wrap });
      daemons.push(node);
      measured.push({ name: 'node', pid: node.child.pid! });
      links = `links: []\njoin: ["${token}"]\n`;
      // The client's own uplink down (in the testbed's namespace): every byte goes through the node.
      await tb.exec(tb.clientNs, 'ip', ['link', 'set', tb.uplinks[0]!.dev, 'down']);
    }
    let run: (seconds: number) => Promise<number>;
    if (MODE === 'get') {
      run = () => getOnce(tb, token, url, size);
    } else {
      const up = await startDaemon(
        tb,
        cli,
        `listen: { socks: "127.0.0.1:1080", control: "127.0.0.1:9190" }\n${links}${health}`,
        { wrap },
      );
      daemons.push(up);
      measured.push({ name: MODE === 'node' ? 'up (node client)' : 'up', pid: up.child.pid! });
      await waitFor(
        'every link online',
        15_000,
        () => up.status(),
        (s) => s.links.length > 0 && s.links.every((l) => l.state === 'online'),
      );
      run = (seconds) => flows(tb, up.socks, url, seconds);
    }
    const idle0 = await Promise.all(measured.map((p) => cpuSeconds(p.pid)));
    await sleep(IDLE_S * 1000);
    const idle1 = await Promise.all(measured.map((p) => cpuSeconds(p.pid)));
    console.log(
      `## relay cost: mode ${MODE}, ${RATE} Mbit/s per uplink, ${FLOWS} curls × ${SECONDS} s, node ${process.version}`,
    );
    console.log(
      `idle CPU: ${measured.map((p, i) => `${p.name} ${(((idle1[i]! - idle0[i]!) / IDLE_S) * 100).toFixed(1)} %`).join(', ')}`,
    );
    const trials = [...(WARMUP_S > 0 ? [WARMUP_S] : []), ...Array<number>(TRIALS).fill(SECONDS)];
    for (let t = 0; t < trials.length; t++) {
      const warmup = WARMUP_S > 0 && t === 0;
      const c0 = await Promise.all(measured.map((p) => cpuSeconds(p.pid)));
      const s0 = await Promise.all(measured.map((p) => cpuSplit(p.pid)));
      const t0 = performance.now();
      const bytes = await run(trials[t]!);
      const s = (performance.now() - t0) / 1000;
      const c1 = await Promise.all(measured.map((p) => cpuSeconds(p.pid)));
      const s1 = await Promise.all(measured.map((p) => cpuSplit(p.pid)));
      const gib = bytes / GiB;
      const per = measured
        .map(
          (p, i) =>
            `${p.name} ${((c1[i]! - c0[i]!) / gib).toFixed(2)} CPU-s/GiB (user ${(s1[i]![0] - s0[i]![0]).toFixed(2)} s, sys ${(s1[i]![1] - s0[i]![1]).toFixed(2)} s)`,
        )
        .join(', ');
      console.log(
        `${warmup ? "warm-up (the fresh daemon's first relaying)" : `trial ${t + (WARMUP_S > 0 ? 0 : 1)}`}: ${(bytes / MiB).toFixed(0)} MiB in ${s.toFixed(1)} s = ${((bytes * 8) / s / 1e6).toFixed(1)} Mbit/s; ${per}`,
      );
      await sleep(500);
    }
  } finally {
    for (const d of daemons.reverse()) await d.stop();
    await rm(`/tmp/${tb.prefix}node1`, { recursive: true, force: true });
    await tb.destroy();
  }
}

await main();
