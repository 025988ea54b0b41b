/**
 * BENCH_TRACE=1 helpers for bench/server.ts: the kernel's TCP and MPTCP
 * counters (/proc/net/netstat of a namespace) before and after a scenario, and
 * snapshots of the server's subflows (`ss -tin` on the server port), so a stall
 * can be told apart: duplicates re-sent (DuplicateData on the receiver), an
 * RM_ADDR that never arrived (RmAddr on the server), retransmission timeouts on
 * the dead subflow (TCPTimeouts, SubflowStale). Read-only; runs only `cat` and
 * `ss` inside the testbed's namespaces.
 */
import type { Testbed } from '../src/testbed/testbed.js';

export type Mibs = Record<string, number>;

/** Every counter of /proc/net/netstat in `ns`, as `Prefix.Name`. */
export async function readMibs(tb: Testbed, ns: string): Promise<Mibs> {
  const { stdout } = await tb.exec(ns, 'cat', ['/proc/net/netstat']);
  const lines = stdout.trim().split('\n');
  const out: Mibs = {};
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = (lines[i] ?? '').split(/\s+/);
    const values = (lines[i + 1] ?? '').split(/\s+/);
    const prefix = (names[0] ?? '').replace(/:$/, '');
    for (let k = 1; k < names.length; k++) out[`${prefix}.${names[k]}`] = Number(values[k] ?? 0);
  }
  return out;
}

const TCP_KEYS = [
  'TCPTimeouts',
  'TCPLossProbes',
  'TCPSackRecovery',
  'TCPLostRetransmit',
  'TCPRetransFail',
  'TCPSpuriousRTOs',
  'TCPOFOQueue',
];

/** The MPTCP counters that moved between `a` and `b`, plus a few TCP loss counters. */
export function mibDelta(a: Mibs, b: Mibs): string {
  return Object.keys(b)
    .filter((k) => k.startsWith('MPTcpExt.') || TCP_KEYS.some((t) => k === `TcpExt.${t}`))
    .map((k) => [k.replace(/^\w+\./, ''), (b[k] ?? 0) - (a[k] ?? 0)] as const)
    .filter(([, d]) => d !== 0)
    .map(([k, d]) => `${k}=${d}`)
    .join(' ');
}

/** One line per subflow on `port` in `ns` (`ss -tin`): peer, cwnd, bytes in flight, unacked, rto, retransmits. */
export async function subflowLines(tb: Testbed, ns: string, port: number): Promise<string[]> {
  const { stdout } = await tb.exec(ns, 'ss', ['-tinOH', 'state', 'established', `( sport = :${port} )`]);
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const f = l.split(/\s+/);
      const pick = (re: RegExp) => re.exec(l)?.[1] ?? '-';
      return [
        f[3],
        pick(/\b(cubic|bbr|reno|htcp|vegas|westwood)\b/),
        `sendq ${f[1]}`,
        `cwnd ${pick(/\bcwnd:(\d+)/)}`,
        `unacked ${pick(/\bunacked:(\d+)/)}`,
        `notsent ${pick(/\bnotsent:(\d+)/)}`,
        `rto ${pick(/\brto:([\d.]+)/)}`,
        `retrans ${pick(/\bretrans:([\d/]+)/)}`,
        `backoff ${pick(/\bbackoff:(\d+)/)}`,
        `rtt ${pick(/\brtt:([\d.]+)/)}`,
      ].join(' ');
    });
}
