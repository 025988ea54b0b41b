/**
 * bench:proxy's reference relays and its connect-latency measurement.
 *
 * Two reference processes are spawned beside the daemon: a bare Node relay
 * (two pipes, no SOCKS, no links: the floor for throughput and CPU) and a bare
 * Node SOCKS5 server (greeting, no auth, IPv4 CONNECT, net.connect, reply,
 * pipes: the floor for connect latency, what any Node SOCKS5 proxy pays on
 * this machine now). Connect latency is measured over sequential connects,
 * direct / bare SOCKS5 / linkmux interleaved (the order rotating every round)
 * so that the machine's load changes hit all three alike; their far end is a
 * hold server in a process of its own, at nice 19 (see spawnHoldServer).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { checkStopping } from './proxy-cleanup.js';
import {
  percentile,
  procCounters,
  sleep,
  socks5Connect,
  tcpConnect,
  type HostPort,
  type Timed,
} from './proxy-tools.js';

/** Forwards every connection to argv[1]:argv[2]. Prints its port. */
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

/** The least SOCKS5 server (no auth, IPv4 CONNECT only). Prints its port. */
const BARE_SOCKS5 = `
const net = require('node:net');
const server = net.createServer((c) => {
  c.setNoDelay(true);
  let stage = 0;
  let buf = Buffer.alloc(0);
  c.on('error', () => c.destroy());
  const onData = (d) => {
    buf = Buffer.concat([buf, d]);
    if (stage === 0) {
      if (buf.length < 2 || buf.length < 2 + buf[1]) return;
      buf = buf.subarray(2 + buf[1]);
      stage = 1;
      c.write(Buffer.from([5, 0]));
    }
    if (stage !== 1 || buf.length < 10) return;
    stage = 2;
    c.off('data', onData);
    c.pause();
    const u = net.connect(buf.readUInt16BE(8), buf.subarray(4, 8).join('.'), () => {
      u.setNoDelay(true);
      c.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
      c.pipe(u);
      u.pipe(c);
      c.resume();
    });
    const end = () => { c.destroy(); u.destroy(); };
    for (const s of [c, u]) { s.on('error', end); s.on('close', end); }
  };
  c.on('data', onData);
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;

/** Accepts connections and holds them, silent, until the peer closes. Prints its port. */
const HOLD = `
const net = require('node:net');
const server = net.createServer((s) => { s.on('error', () => s.destroy()); });
server.listen(0, '127.0.0.1', 1024, () => console.log(server.address().port));`;

export interface Reference {
  child: ChildProcess;
  pid: number;
  port: number;
}

async function spawnReference(script: string, args: string[], what: string): Promise<Reference> {
  const child = spawn(process.execPath, ['-e', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 100 && !/^\d+\n/.test(out); i++) await sleep(50);
  const port = Number(out.trim());
  if (!port || child.pid === undefined) {
    child.kill('SIGKILL');
    throw new Error(`the ${what} did not start (${out})`);
  }
  return { child, pid: child.pid, port };
}

export const spawnBareRelay = (target: HostPort) =>
  spawnReference(BARE_RELAY, [target.host, String(target.port)], 'reference relay');

export const spawnBareSocks5 = () => spawnReference(BARE_SOCKS5, [], 'reference SOCKS5 server');

/**
 * The connects' far end, in a process of its own: accepting and holding
 * thousands of sockets in the measuring process stalled its event loop, and
 * the stalls showed up as latency of every way alike (direct included).
 */
export async function spawnHoldServer(): Promise<Reference> {
  const hold = await spawnReference(HOLD, [], 'hold server');
  // The far end of every connect is not what is measured, and on loopback it shares the CPUs
  // with the relays: at normal priority its accepts and closes, woken by the very connect being
  // timed, delayed the relay's next step by a scheduler slice (a bare Node SOCKS5 server's p99
  // went from 1.1 to 2.4 ms). At nice 19 it runs when the path it serves has nothing to do, as a
  // remote server would.
  os.setPriority(hold.pid, 19);
  return hold;
}

export interface Latencies {
  direct: number[];
  bareSocks: number[];
  linkmux: number[];
  /** The warm-up connects of each way, measured too: a fresh daemon (and freshly started references). */
  fresh: { direct: number[]; bareSocks: number[]; linkmux: number[] };
  /** CPU seconds (user+sys) per connect of the bare SOCKS5 server and of the daemon, over the measured rounds. */
  cpuPerConnect: { bareSocks: number; linkmux: number };
}

/**
 * `n` sequential connects to `sink` each way, after `warmup` rounds kept apart
 * (`fresh`; at least 20): direct, through the bare SOCKS5 server, through
 * linkmux, the order rotating.
 */
export async function measureConnects(
  linkmux: HostPort & { pid: number },
  bareSocks: HostPort & { pid: number },
  sink: HostPort,
  n: number,
  warmup: number,
): Promise<Latencies> {
  const out: Latencies = {
    direct: [],
    bareSocks: [],
    linkmux: [],
    fresh: { direct: [], bareSocks: [], linkmux: [] },
    cpuPerConnect: { bareSocks: 0, linkmux: 0 },
  };
  const w = Math.max(20, warmup);
  let cpu0 = { bare: 0, linkmux: 0 };
  const ways: ['direct' | 'bareSocks' | 'linkmux', () => Promise<Timed>][] = [
    ['direct', () => tcpConnect(sink, 5_000)],
    ['bareSocks', () => socks5Connect(bareSocks, sink, 5_000)],
    ['linkmux', () => socks5Connect(linkmux, sink, 5_000)],
  ];
  for (let i = 0; i < n + w; i++) {
    checkStopping();
    if (i === w)
      cpu0 = {
        bare: (await procCounters(bareSocks.pid)).cpu,
        linkmux: (await procCounters(linkmux.pid)).cpu,
      };
    for (let j = 0; j < ways.length; j++) {
      const [key, connect] = ways[(i + j) % ways.length] as (typeof ways)[number];
      const r = await connect();
      r.socket.destroy();
      (i >= w ? out[key] : out.fresh[key]).push(r.ms);
    }
  }
  out.cpuPerConnect = {
    bareSocks: ((await procCounters(bareSocks.pid)).cpu - cpu0.bare) / n,
    linkmux: ((await procCounters(linkmux.pid)).cpu - cpu0.linkmux) / n,
  };
  return out;
}

/** Rows of the loopback table: p50/p90/p99/max per way, and what linkmux adds over each. */
export function latencyRows(l: Latencies): string[] {
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  const signed = (x: number) => `${x < 0 ? '-' : '+'}${ms(Math.abs(x))}`;
  const rows: string[] = [];
  const row = (label: string, ways: Latencies['fresh'], p: number) => {
    const [a, b, c] = [ways.direct, ways.bareSocks, ways.linkmux].map((xs) => percentile(xs, p)) as [
      number,
      number,
      number,
    ];
    rows.push(
      `| ${label} | ${ms(a)} | ${ms(b)} (bare SOCKS5) | ${ms(c)} | ${signed(c - a)} | ${signed(c - b)} |`,
    );
  };
  const n = l.linkmux.length;
  const w = l.fresh.linkmux.length;
  for (const p of [50, 90, 99, 100]) {
    row(`connect latency ${p === 100 ? 'max' : `p${p}`}, ${n} sequential connects each after ${w}`, l, p);
  }
  for (const p of [50, 99]) row(`fresh daemon: connect latency p${p} of its first ${w} connects`, l.fresh, p);
  const us = (s: number) => `${(s * 1e6).toFixed(0)} µs`;
  const c = l.cpuPerConnect;
  rows.push(
    `| relay CPU (user+sys) per connect, ${l.linkmux.length} connects | — | ${us(c.bareSocks)} (bare SOCKS5) | ` +
      `${us(c.linkmux)} | — | ×${(c.linkmux / c.bareSocks).toFixed(2)} |`,
  );
  return rows;
}
