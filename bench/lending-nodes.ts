/**
 * `linkmux node` on testbed machines, for the benchmarks that lend a LAN
 * machine's uplink to the client (bench:nodes, bench:scale): each node is
 * initialised (its join token read), then run as a daemon on its LAN address
 * with its own state directory. stop() stops every node started so far and
 * removes the state directories, also after a failed start.
 */
import { rm } from 'node:fs/promises';
import type { Testbed } from '../src/testbed/testbed.js';
import { startDaemon, type RunningDaemon } from '../test/helpers/daemon.js';

export interface LendingNodes {
  /** One per machine asked for, in order. */
  nodes: RunningDaemon[];
  /** The join tokens, in the same order (pass each to `get --join`). */
  tokens: string[];
  /** The uplink device each node lends. */
  devs: string[];
  stop(): Promise<void>;
}

/** Starts a node on each of `machines` (indexes into tb.machines, ≥ 1), lending that machine's first uplink. */
export async function startLendingNodes(tb: Testbed, cli: string, machines: number[]): Promise<LendingNodes> {
  const nodes: RunningDaemon[] = [];
  const tokens: string[] = [];
  const devs: string[] = [];
  const stateDirs: string[] = [];
  const stop = async () => {
    for (const n of nodes) await n.stop();
    for (const dir of stateDirs) await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const k of machines) {
      const m = tb.machines[k];
      const dev = tb.uplinks[m?.uplinks[0] ?? -1]?.dev;
      if (!m || !dev) throw new Error(`testbed has no machine ${k} with an uplink`);
      const stateDir = `/tmp/${tb.prefix}node${k}`;
      stateDirs.push(stateDir);
      const flags = ['--listen', `${m.lanAddress}:7300`, '--state-dir', stateDir, '--name', `n${k}`];
      flags.push('--link', dev);
      tokens.push((await tb.exec(m.ns, process.execPath, [cli, 'node', '--init', ...flags])).stdout.trim());
      const yaml = `listen: { control: "127.0.0.1:9190" }\nhealth: { targets: ["tcp://${tb.serverAddress}:80"] }\nlog: warn\n`;
      nodes.push(await startDaemon(tb, cli, yaml, { ns: m.ns, args: ['node', ...flags] }));
      devs.push(dev);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, tokens, devs, stop };
}
