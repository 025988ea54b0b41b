/**
 * bench:proxy part 2, on loopback: throughput through the daemon vs direct and
 * a bare relay, CPU seconds per GiB, connect latency added, RSS per idle
 * tunnelled connection (see proxy.ts for the method).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { DaemonStatus } from '../src/control/status-types.js';
import { waitFor } from '../test/helpers/daemon.js';
import {
  hostPort,
  median,
  openFds,
  procCounters,
  rssKiB,
  sleep,
  socks5Connect,
  type HostPort,
} from './proxy-tools.js';
import {
  CONNECTS,
  WARMUP,
  GiB,
  IDLE,
  LATENCY_TUNNELS,
  LOOPBACK_BYTES,
  MiB,
  ROUNDS,
  SECTIONS,
  cli,
  progress,
} from './proxy-options.js';
import {
  latencyRows,
  measureConnects,
  spawnBareRelay,
  spawnBareSocks5,
  spawnHoldServer,
  type Latencies,
} from './proxy-latency.js';
import { checkStopping, registerCleanup } from './proxy-cleanup.js';

/** Serves GET /bytes/<n>: n bytes from one buffer in memory, with backpressure. */
export function bodyServer(): http.Server {
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

export async function listen(server: net.Server): Promise<HostPort> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const a = server.address() as AddressInfo;
  return { host: '127.0.0.1', port: a.port };
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (server instanceof http.Server) server.closeAllConnections();
    server.close(() => resolve());
  });
}

export interface LoopbackDaemon {
  child: ChildProcess;
  pid: number;
  socks: HostPort;
  control: string;
  log: () => string;
  stop(): Promise<void>;
}

/** Destroys the client ends of `sockets` and waits until the daemon counts no connection. */
export async function closeTunnels(d: LoopbackDaemon, sockets: Socket[], ms: number): Promise<void> {
  for (const s of sockets.splice(0)) s.destroy();
  await waitFor(
    'tunnels closed',
    ms,
    () => getStatus(d.control),
    (st) => st.connections.active === 0,
  );
}

export async function spawnLoopbackDaemon(
  dir: string,
  probe: HostPort,
  env: NodeJS.ProcessEnv = process.env,
  // BENCH_DAEMON_NODE_ARGS: node's own options for the daemon alone (e.g. --cpu-prof).
  nodeArgs = (process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean),
): Promise<LoopbackDaemon> {
  const config = path.join(dir, 'linkmux.yaml');
  await writeFile(
    config,
    `listen: { socks: "127.0.0.1:0", http: false, control: "127.0.0.1:0" }
links: [lo]
privateDirect: false   # 127.0.0.1 must go through the lo link, not "direct"
log: ${process.env.BENCH_DAEMON_LOG ?? 'info'}   # BENCH_DAEMON_LOG
health: { interval: 1, timeout: 0.5, targets: ["tcp://${probe.host}:${probe.port}"] }
`,
  );
  const child = spawn(process.execPath, [...nodeArgs, cli, 'up', '-c', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
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
      if (m?.[1] && m[2] && child.pid !== undefined) {
        const control = m[2];
        // Ready when its one link is online (the probe reached the local web server).
        await waitFor(
          'lo online',
          10_000,
          () => getStatus(control),
          (st) => st.links[0]?.state === 'online',
        );
        return { child, pid: child.pid, socks: hostPort(m[1]), control, log: () => log, stop };
      }
      if (child.exitCode !== null || i >= 100) throw new Error(`linkmux up did not start:\n${log}`);
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function getStatus(control: string): Promise<DaemonStatus> {
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
  latency: Latencies | undefined;
  idle: IdleResult | undefined;
}

interface IdleResult {
  n: number;
  rssBefore: number;
  rssOpen: number;
  rssClosed: number;
  heap: number[];
  fds: number[];
  active: number;
}

/** RSS, heap and descriptors before, with IDLE idle tunnels open, and after closing them. */
async function idleSection(d: LoopbackDaemon, sink: HostPort, opened: Socket[]): Promise<IdleResult> {
  for (let i = 0; i < 50; i++) (await socks5Connect(d.socks, sink, 5_000)).socket.destroy();
  await sleep(1_500);
  const rssBefore = await rssKiB(d.pid);
  const heap = [await heapUsed(d.control)];
  const fds = [await openFds(d.pid)];
  for (let i = 0; i < IDLE; i += 50) {
    checkStopping();
    const batch = Array.from({ length: Math.min(50, IDLE - i) }, () => socks5Connect(d.socks, sink, 10_000));
    for (const r of await Promise.all(batch)) opened.push(r.socket);
  }
  await sleep(2_000);
  const rssOpen = await rssKiB(d.pid);
  heap.push(await heapUsed(d.control));
  fds.push(await openFds(d.pid));
  const active = (await getStatus(d.control)).connections.active;
  await closeTunnels(d, opened, 10_000);
  await sleep(1_500);
  const rssClosed = await rssKiB(d.pid);
  heap.push(await heapUsed(d.control));
  fds.push(await openFds(d.pid));
  progress(`idle: RSS ${rssBefore} → ${rssOpen} → ${rssClosed} KiB, fds ${fds.join(' → ')}`);
  return { n: IDLE, rssBefore, rssOpen, rssClosed, heap, fds, active };
}

export async function loopbackPart(): Promise<LoopbackResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lmx-bench-proxy-'));
  const body = bodyServer();
  const hold = holdServer();
  let daemon: LoopbackDaemon | undefined;
  let bare: { child: ChildProcess } | undefined;
  let socksRef: { child: ChildProcess } | undefined;
  let holdRef: { child: ChildProcess } | undefined;
  const opened: Socket[] = [];
  const cleanup = registerCleanup(async () => {
    for (const c of curls) c.kill('SIGKILL');
    for (const s of opened) s.destroy();
    bare?.child.kill('SIGKILL');
    socksRef?.child.kill('SIGKILL');
    holdRef?.child.kill('SIGKILL');
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
    progress(`loopback daemon pid ${d.pid}: SOCKS5 ${d.socks.host}:${d.socks.port}`);

    // (d) memory per idle tunnelled connection, first, while the heap holds little else.
    const idle = SECTIONS.includes('idle') ? await idleSection(d, sink, opened) : undefined;

    // (c) connect latency: direct, a bare Node SOCKS5 server, linkmux, interleaved.
    let latency: Latencies | undefined;
    if (SECTIONS.includes('latency')) {
      const ref = await spawnBareSocks5();
      socksRef = ref;
      const far = await spawnHoldServer();
      holdRef = far;
      const target = { host: '127.0.0.1', port: far.port };
      // Connects with LATENCY_TUNNELS idle tunnels open through each proxy (per-connect work that grows with them
      // shows); the tunnels end at the other hold server (this process's, idle while measuring).
      for (let i = 0; i < LATENCY_TUNNELS; i += 50) {
        checkStopping();
        const n = Math.min(50, LATENCY_TUNNELS - i);
        for (const proxy of [d.socks, { host: '127.0.0.1', port: ref.port }]) {
          const batch = Array.from({ length: n }, () => socks5Connect(proxy, sink, 10_000));
          for (const r of await Promise.all(batch)) opened.push(r.socket);
        }
      }
      latency = await measureConnects(
        { ...d.socks, pid: d.pid },
        { host: '127.0.0.1', port: ref.port, pid: ref.pid },
        target,
        CONNECTS,
        WARMUP,
      );
      ref.child.kill('SIGKILL');
      far.child.kill('SIGKILL');
      for (const s of opened.splice(0)) s.destroy();
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
    for (let i = 0; i < (SECTIONS.includes('throughput') ? ROUNDS : 0); i++) {
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
      latency,
      idle,
    };
  } finally {
    await cleanup.run();
  }
}

export function printLoopback(r: LoopbackResult): void {
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
  if (r.directBps.length > 0) {
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
  }
  if (r.latency) for (const row of latencyRows(r.latency)) console.log(row);
  if (r.idle) {
    const perConn = ((r.idle.rssOpen - r.idle.rssBefore) * 1024) / r.idle.n;
    console.log(
      `| daemon RSS per idle tunnelled connection (${r.idle.n} open) | — | — | ${(perConn / 1024).toFixed(1)} KiB | — | — |`,
    );
  }
  console.log(
    `\nRuns: direct ${r.directBps.map(MBps).join(', ')}; bare relay ${r.bareBps.map(MBps).join(', ')}; ` +
      `linkmux ${r.proxyBps.map(MBps).join(', ')}. CPU s/GiB per round: bare relay ` +
      `${r.bareCpuPerGiB.map((x) => x.toFixed(2)).join(', ')}; linkmux ${r.cpuPerGiB.map((x) => x.toFixed(2)).join(', ')}. Connect latency: from connect() to "connected" (direct) or ` +
      `to the SOCKS5 success reply (linkmux: greeting, method, request, dial through lo, reply); bare SOCKS5: the least Node SOCKS5 server, spawned beside the daemon, same client. ` +
      (r.idle
        ? `Idle test: daemon RSS ${r.idle.rssBefore} → ${r.idle.rssOpen} KiB with ${r.idle.active} tunnels open ` +
          `(status connections.active) → ${r.idle.rssClosed} KiB after closing them; V8 heap used (no forced GC) ` +
          `${r.idle.heap.map((h) => (h / MiB).toFixed(1)).join(' → ')} MiB; open fds ${r.idle.fds.join(' → ')}.`
        : ''),
  );
}

// ── main ────────────────────────────────────────────────────────────────────
