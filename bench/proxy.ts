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
 * BENCH_LOOPBACK_MIB (1024), BENCH_CONNECTS (500), BENCH_IDLE (1000),
 * BENCH_PARTS ("testbed,loopback").
 * Needs root (part 1 builds network namespaces). Traffic stays inside the
 * testbed's namespaces (198.18.0.0/15) or on loopback; everything started here
 * is stopped in `finally` and on SIGINT/SIGTERM.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestbed, removeLeftovers, type Testbed } from '../src/testbed/testbed.js';
import type { DaemonStatus } from '../src/control/status-types.js';
import { startDaemon, waitFor, type RunningDaemon } from '../test/helpers/daemon.js';
import {
  hostPort,
  mbit,
  mean,
  median,
  openFds,
  percentile,
  procCounters,
  rssKiB,
  sleep,
  socks5Connect,
  tcpConnect,
  type HostPort,
} from './proxy-tools.js';
import { runFlows as runFlowsIn, type FlowRun } from './flows.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const TRIALS = env('BENCH_TRIALS', 10);
const T = env('BENCH_MAX_TIME', 4);
const K_MAX = env('BENCH_K_MAX', 6);
const LOOPBACK_BYTES = env('BENCH_LOOPBACK_MIB', 1024) * MiB;
const CONNECTS = env('BENCH_CONNECTS', 500);
const IDLE = env('BENCH_IDLE', 1000);
/** Rounds of the loopback throughput test (direct, bare relay, linkmux in each). */
const ROUNDS = 5;
const PARTS = (process.env.BENCH_PARTS ?? 'testbed,loopback').split(',');

/** Counter window after the flows start: slow start and the tail are skipped, in both modes alike. */
const WINDOW_START_MS = 1_000;
const WINDOW_END_MS = T * 1000 - 500;
const BUSY_SHARE = 0.25;
const TARGET = 0.95;
const FILE = 'big.bin';
const FILE_SIZE = 64 * MiB;

const WINDOW = { maxTimeS: T, startMs: WINDOW_START_MS, endMs: WINDOW_END_MS };
const runFlows = (tb: Testbed, k: number, args: string[], midway?: () => Promise<DaemonStatus>) =>
  runFlowsIn(tb, tb.clientNs, k, args, WINDOW, midway);

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const progress = (s: string) => console.error(`[bench:proxy ${new Date().toISOString().slice(11, 19)}] ${s}`);

// ── cleanup, also on SIGINT/SIGTERM ─────────────────────────────────────────

const cleanups: (() => Promise<void>)[] = [];
let stopping = false;

async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups[cleanups.length - 1] as () => Promise<void>;
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup: ${String(err)}`);
    }
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${sig}: cleaning up (curls, daemons, relay, testbed)…`);
    setTimeout(() => process.exit(1), 30_000).unref();
    void runCleanups().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  });
}

/** Registers `fn` as a cleanup that runs at most once, from `finally` or from a signal. */
function registerCleanup(fn: () => Promise<void>): { run: () => Promise<void> } {
  let running: Promise<void> | undefined;
  const run = () => {
    const i = cleanups.indexOf(run);
    if (i >= 0) cleanups.splice(i, 1);
    return (running ??= fn());
  };
  cleanups.push(run);
  return { run };
}

function checkStopping(): void {
  if (stopping) throw new Error('interrupted');
}

// ── part 1: the testbed ─────────────────────────────────────────────────────

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

async function testbedPart(): Promise<TestbedResult> {
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

function printTestbed(r: TestbedResult): boolean {
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

/** Serves GET /bytes/<n>: n bytes from one buffer in memory, with backpressure. */
function bodyServer(): http.Server {
  const chunk = Buffer.alloc(MiB, 0x5a);
  return http.createServer((req, res) => {
    const n = Number(/^\/bytes\/(\d+)$/.exec(req.url ?? '')?.[1] ?? 0);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
    let left = n;
    res.once('close', () => (left = 0));
    const pump = () => {
      while (left > 0) {
        const c = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= c.length;
        if (!res.write(c)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
}

/** Accepts connections and keeps them open, silent, until the peer closes. */
function holdServer(): { server: net.Server; sockets: Set<Socket> } {
  const sockets = new Set<Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => s.destroy());
    s.once('close', () => sockets.delete(s));
  });
  return { server, sockets };
}

async function listen(server: net.Server): Promise<HostPort> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const a = server.address() as AddressInfo;
  return { host: '127.0.0.1', port: a.port };
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (server instanceof http.Server) server.closeAllConnections();
    server.close(() => resolve());
  });
}

/**
 * The reference relay: the least a Node process can do to forward a connection
 * (two pipes, symmetric teardown), no SOCKS, no links. Prints its port.
 */
const BARE_RELAY = `
const net = require('node:net');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const server = net.createServer((c) => {
  const u = net.connect(port, host);
  c.pipe(u);
  u.pipe(c);
  const end = () => { c.destroy(); u.destroy(); };
  for (const s of [c, u]) { s.on('error', end); s.on('close', end); }
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;

async function spawnBareRelay(target: HostPort): Promise<{ child: ChildProcess; pid: number; port: number }> {
  const child = spawn(process.execPath, ['-e', BARE_RELAY, target.host, String(target.port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 100 && !/^\d+\n/.test(out); i++) await sleep(50);
  const port = Number(out.trim());
  if (!port || child.pid === undefined) {
    child.kill('SIGKILL');
    throw new Error(`the reference relay did not start (${out})`);
  }
  return { child, pid: child.pid, port };
}

interface LoopbackDaemon {
  child: ChildProcess;
  pid: number;
  socks: HostPort;
  control: string;
  log: () => string;
  stop(): Promise<void>;
}

async function spawnLoopbackDaemon(dir: string, probe: HostPort): Promise<LoopbackDaemon> {
  const config = path.join(dir, 'linkmux.yaml');
  await writeFile(
    config,
    `listen: { socks: "127.0.0.1:0", http: false, control: "127.0.0.1:0" }
links: [lo]
privateDirect: false   # 127.0.0.1 must go through the lo link, not "direct"
log: info
health: { interval: 1, timeout: 0.5, targets: ["tcp://${probe.host}:${probe.port}"] }
`,
  );
  const child = spawn(process.execPath, [cli, 'up', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    for (let i = 0; ; i++) {
      const m = /SOCKS5 on ([\d.]+:\d+), control on ([\d.]+:\d+)/.exec(log);
      if (m?.[1] && m[2] && child.pid !== undefined)
        return { child, pid: child.pid, socks: hostPort(m[1]), control: m[2], log: () => log, stop };
      if (child.exitCode !== null || i >= 100) throw new Error(`linkmux up did not start:\n${log}`);
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

async function getStatus(control: string): Promise<DaemonStatus> {
  const res = await fetch(`http://${control}/status`, { signal: AbortSignal.timeout(2_000) });
  return (await res.json()) as DaemonStatus;
}

/** The daemon's V8 heap in use, bytes, from its Prometheus text (prom-client's default metrics). */
async function heapUsed(control: string): Promise<number> {
  const res = await fetch(`http://${control}/metrics`, { signal: AbortSignal.timeout(2_000) });
  return Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(await res.text())?.[1] ?? NaN);
}

/** curls running on loopback, killed by the cleanup if the bench is interrupted. */
const curls = new Set<ChildProcess>();

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('curl', ['-sS', '--fail', '--max-time', '120', ...args], (err, stdout, stderr) => {
      curls.delete(child);
      if (err) reject(new Error(`curl ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(stdout);
    });
    curls.add(child);
  });
}

interface LoopbackResult {
  directBps: number[];
  bareBps: number[];
  proxyBps: number[];
  /** CPU seconds per GiB, one value per round. */
  cpuPerGiB: number[];
  bareCpuPerGiB: number[];
  /** Minor page faults per GiB, one value per round. */
  faultsPerGiB: number[];
  bareFaultsPerGiB: number[];
  latDirect: number[];
  latSocks: number[];
  idle: {
    n: number;
    rssBefore: number;
    rssOpen: number;
    rssClosed: number;
    heap: number[];
    fds: number[];
    active: number;
  };
}

async function loopbackPart(): Promise<LoopbackResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lmx-bench-proxy-'));
  const body = bodyServer();
  const hold = holdServer();
  let daemon: LoopbackDaemon | undefined;
  let bare: { child: ChildProcess } | undefined;
  const opened: Socket[] = [];
  const cleanup = registerCleanup(async () => {
    for (const c of curls) c.kill('SIGKILL');
    for (const s of opened) s.destroy();
    bare?.child.kill('SIGKILL');
    await daemon?.stop();
    await closeServer(body);
    for (const s of hold.sockets) s.destroy();
    await closeServer(hold.server);
    await rm(dir, { recursive: true, force: true });
  });
  try {
    const web = await listen(body);
    const sink = await listen(hold.server);
    daemon = await spawnLoopbackDaemon(dir, web);
    const d = daemon;
    await waitFor(
      'lo online',
      10_000,
      () => getStatus(d.control),
      (s) => s.links[0]?.state === 'online',
    );
    progress(`loopback daemon pid ${d.pid}: SOCKS5 ${d.socks.host}:${d.socks.port}`);

    // (d) memory per idle tunnelled connection, first, while the heap holds little else.
    for (let i = 0; i < 50; i++) (await socks5Connect(d.socks, sink, 5_000)).socket.destroy();
    await sleep(1_500);
    const rssBefore = await rssKiB(d.pid);
    const heap = [await heapUsed(d.control)];
    const fds = [await openFds(d.pid)];
    for (let i = 0; i < IDLE; i += 50) {
      checkStopping();
      const batch = Array.from({ length: Math.min(50, IDLE - i) }, () =>
        socks5Connect(d.socks, sink, 10_000),
      );
      for (const r of await Promise.all(batch)) opened.push(r.socket);
    }
    await sleep(2_000);
    const rssOpen = await rssKiB(d.pid);
    heap.push(await heapUsed(d.control));
    fds.push(await openFds(d.pid));
    const active = (await getStatus(d.control)).connections.active;
    for (const s of opened.splice(0)) s.destroy();
    await waitFor(
      'idle connections closed',
      10_000,
      () => getStatus(d.control),
      (s) => s.connections.active === 0,
    );
    await sleep(1_500);
    const rssClosed = await rssKiB(d.pid);
    heap.push(await heapUsed(d.control));
    fds.push(await openFds(d.pid));
    progress(`idle: RSS ${rssBefore} → ${rssOpen} → ${rssClosed} KiB, fds ${fds.join(' → ')}`);

    // (c) connect latency, direct and through the proxy, interleaved.
    const latDirect: number[] = [];
    const latSocks: number[] = [];
    for (let i = 0; i < CONNECTS + 20; i++) {
      checkStopping();
      const a = await tcpConnect(sink, 5_000);
      a.socket.destroy();
      const b = await socks5Connect(d.socks, sink, 5_000);
      b.socket.destroy();
      if (i < 20) continue; // warm-up
      latDirect.push(a.ms);
      latSocks.push(b.ms);
    }

    // (a) + (b) one connection: direct, through the reference relay, through linkmux,
    // interleaved so that the machine's load changes hit all three alike; CPU of each relay.
    const relay = await spawnBareRelay(web);
    bare = relay;
    const bytesPath = `/bytes/${LOOPBACK_BYTES}`;
    const fetchOnce = async (base: string, proxy: string[], pid?: number) => {
      const none = { cpu: 0, minflt: 0 };
      const c0 = pid === undefined ? none : await procCounters(pid);
      const out = await curl([
        ...proxy,
        '-o',
        '/dev/null',
        '-w',
        '%{speed_download} %{size_download}',
        base + bytesPath,
      ]);
      const c1 = pid === undefined ? none : await procCounters(pid);
      const [speed, size] = out.split(' ').map(Number);
      if (size !== LOOPBACK_BYTES) throw new Error(`short body: ${size} of ${LOOPBACK_BYTES} bytes`);
      return { speed: speed ?? 0, cpu: c1.cpu - c0.cpu, faults: c1.minflt - c0.minflt };
    };
    const origin = `http://${web.host}:${web.port}`;
    const directBps: number[] = [];
    const bareBps: number[] = [];
    const proxyBps: number[] = [];
    const cpuPerGiB: number[] = [];
    const bareCpuPerGiB: number[] = [];
    const faultsPerGiB: number[] = [];
    const bareFaultsPerGiB: number[] = [];
    const perGiB = (x: number) => x / (LOOPBACK_BYTES / GiB);
    for (let i = 0; i < ROUNDS; i++) {
      checkStopping();
      directBps.push((await fetchOnce(origin, [])).speed);
      const b = await fetchOnce(`http://127.0.0.1:${relay.port}`, [], relay.pid);
      bareBps.push(b.speed);
      bareCpuPerGiB.push(perGiB(b.cpu));
      bareFaultsPerGiB.push(perGiB(b.faults));
      const p = await fetchOnce(origin, ['--socks5', `${d.socks.host}:${d.socks.port}`], d.pid);
      proxyBps.push(p.speed);
      cpuPerGiB.push(perGiB(p.cpu));
      faultsPerGiB.push(perGiB(p.faults));
    }
    return {
      directBps,
      bareBps,
      proxyBps,
      cpuPerGiB,
      bareCpuPerGiB,
      faultsPerGiB,
      bareFaultsPerGiB,
      latDirect,
      latSocks,
      idle: { n: IDLE, rssBefore, rssOpen, rssClosed, heap, fds, active },
    };
  } finally {
    await cleanup.run();
  }
}

function printLoopback(r: LoopbackResult): void {
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  const MBps = (x: number) => `${(x / 1e6).toFixed(0)} MB/s`;
  const dT = median(r.directBps);
  const bT = median(r.bareBps);
  const pT = median(r.proxyBps);
  console.log(
    `\n## Loopback: daemon with one link (lo); ${os.cpus().length} CPUs shared by curl, the server and the relay\n`,
  );
  console.log(
    'Reference: a bare Node relay (two pipes, no SOCKS, no links), spawned beside the daemon and measured ' +
      'in the same rounds.\n',
  );
  console.log(
    '| measure | direct | bare Node relay | linkmux SOCKS5 | linkmux vs direct | linkmux vs bare relay |',
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  console.log(
    `| one connection, ${LOOPBACK_BYTES / MiB} MiB, median of ${ROUNDS} (curl) | ${MBps(dT)} | ${MBps(bT)} | ${MBps(pT)} | ` +
      `×${(pT / dT).toFixed(2)} | ×${(pT / bT).toFixed(2)} |`,
  );
  console.log(
    `| relay CPU (user+sys) per GiB relayed, median of ${ROUNDS} | — | ${median(r.bareCpuPerGiB).toFixed(2)} s | ` +
      `${median(r.cpuPerGiB).toFixed(2)} s | — | ×${(median(r.cpuPerGiB) / median(r.bareCpuPerGiB)).toFixed(2)} |`,
  );
  console.log(
    `| relay minor page faults per GiB relayed, median of ${ROUNDS} | — | ${Math.round(median(r.bareFaultsPerGiB))} | ` +
      `${Math.round(median(r.faultsPerGiB))} | — | — |`,
  );
  for (const p of [50, 99]) {
    const a = percentile(r.latDirect, p);
    const b = percentile(r.latSocks, p);
    console.log(
      `| connect latency p${p}, ${r.latSocks.length} sequential connects (added: +${ms(b - a)}) | ${ms(a)} | — | ${ms(b)} | — | — |`,
    );
  }
  const perConn = ((r.idle.rssOpen - r.idle.rssBefore) * 1024) / r.idle.n;
  console.log(
    `| daemon RSS per idle tunnelled connection (${r.idle.n} open) | — | — | ${(perConn / 1024).toFixed(1)} KiB | — | — |`,
  );
  console.log(
    `\nRuns: direct ${r.directBps.map(MBps).join(', ')}; bare relay ${r.bareBps.map(MBps).join(', ')}; ` +
      `linkmux ${r.proxyBps.map(MBps).join(', ')}. CPU s/GiB per round: bare relay ` +
      `${r.bareCpuPerGiB.map((x) => x.toFixed(2)).join(', ')}; linkmux ${r.cpuPerGiB.map((x) => x.toFixed(2)).join(', ')}. Connect latency: from connect() to "connected" (direct) or ` +
      `to the SOCKS5 success reply (linkmux: greeting, method, request, dial through lo, reply). ` +
      `Idle test: daemon RSS ${r.idle.rssBefore} → ${r.idle.rssOpen} KiB with ${r.idle.active} tunnels open ` +
      `(status connections.active) → ${r.idle.rssClosed} KiB after closing them; V8 heap used (no forced GC) ` +
      `${r.idle.heap.map((h) => (h / MiB).toFixed(1)).join(' → ')} MiB; open fds ${r.idle.fds.join(' → ')}.`,
  );
}

// ── main ────────────────────────────────────────────────────────────────────

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
      `BENCH_LOOPBACK_MIB=${LOOPBACK_BYTES / MiB} BENCH_CONNECTS=${CONNECTS} BENCH_IDLE=${IDLE}; ` +
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
