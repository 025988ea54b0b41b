/**
 * aria2 JSON-RPC calls made with curl inside a testbed namespace (the daemon
 * listens on that namespace's loopback), for the netns tier and the benchmark.
 */
import type { Testbed } from '../../src/testbed/testbed.js';

export interface RpcReply {
  result?: unknown;
  error?: { code: number; message: string };
}

export async function rpcIn(
  tb: Testbed,
  ns: string,
  address: string,
  method: string,
  params: unknown[],
): Promise<RpcReply> {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
  const { stdout } = await tb.exec(ns, 'curl', [
    '-sS',
    '--max-time',
    '5',
    '-d',
    body,
    `http://${address}/jsonrpc`,
  ]);
  return JSON.parse(stdout) as RpcReply;
}

/** Polls tellStatus until the download is complete (throws on error/removed or after `ms`). */
export async function waitComplete(
  tb: Testbed,
  ns: string,
  address: string,
  token: string,
  gid: string,
  ms: number,
): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  let last: Record<string, unknown> = {};
  while (Date.now() < end) {
    const r = await rpcIn(tb, ns, address, 'aria2.tellStatus', [token, gid]);
    last = (r.result ?? {}) as Record<string, unknown>;
    if (last.status === 'complete') return last;
    if (last.status === 'error' || last.status === 'removed') {
      throw new Error(`download ${gid} ended ${String(last.status)}: ${String(last.errorMessage)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`download ${gid} not complete within ${ms} ms: ${JSON.stringify(last).slice(0, 300)}`);
}
