/**
 * MPTCP subflows per local address, from `ss -Htin` (each TCP socket is two
 * lines: "ESTAB 0 0 LOCAL:PORT PEER:PORT", then its details; an MPTCP subflow's
 * details carry "tcp-ulp-mptcp"). Summed per local address, this is how much of
 * the server link's traffic each uplink carries. Pure: text in, numbers out.
 */
export interface SubflowTotals {
  subflows: number;
  /** bytes_received. */
  bytesIn: number;
  /** bytes_acked (sent and acknowledged). */
  bytesOut: number;
}

export const SS_ARGS = ['-Htin', 'state', 'established'];

/** Totals by local address of the subflows whose peer port is `peerPort` (the server's). */
export function parseSubflows(text: string, peerPort: number): Map<string, SubflowTotals> {
  const out = new Map<string, SubflowTotals>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i]!.trim().split(/\s+/);
    // With "state established" ss omits the State column: Recv-Q Send-Q Local Peer.
    const addrs = head.filter((w) => /:\d+$/.test(w));
    if (addrs.length < 2) continue;
    const details = lines[i + 1] ?? '';
    if (!/^\s/.test(details)) continue;
    i++;
    if (!details.includes('tcp-ulp-mptcp')) continue;
    const local = splitHostPort(addrs[addrs.length - 2]!);
    const peer = splitHostPort(addrs[addrs.length - 1]!);
    if (!local || !peer || peer.port !== peerPort) continue;
    const num = (name: string) => Number(new RegExp(`\\b${name}:(\\d+)`).exec(details)?.[1] ?? 0);
    const t = out.get(local.host) ?? { subflows: 0, bytesIn: 0, bytesOut: 0 };
    t.subflows++;
    t.bytesIn += num('bytes_received');
    t.bytesOut += num('bytes_acked');
    out.set(local.host, t);
  }
  return out;
}

function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^\[?([^\]]*?)\]?(?:%[^:]+)?:(\d+)$/.exec(text);
  if (!m) return undefined;
  const host = m[1]!.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  return { host, port: Number(m[2]) };
}
