/**
 * npm run bench:nodes — other machines' uplinks joining the pool, on the netns
 * testbed: a LAN (one bridge) with the client and two nodes, each machine with
 * its own 8 Mbit/s uplink through its own ISP, one server address. In one run:
 *   - each machine's uplink alone (curl on that machine), measured
 *     concurrently: independent paths, so this is each link's own goodput;
 *   - linkmux get on the client over its uplink plus the two nodes (--join);
 *   - the CPU a node spends per Mbit/s relayed (utime + stime of its process
 *     over the download, divided by what its uplink carried).
 * Target: linkmux ≥ 0.93 × the sum of single-link goodputs.
 *
 * Options (env): BENCH_SIZE_MIB (default 32), BENCH_TRIALS (default 2).
 * Needs root (network namespaces); traffic stays inside the testbed.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createTestbed, removeLeftovers, type Testbed } from '../src/testbed/testbed.js';
import { startLendingNodes, type LendingNodes } from './lending-nodes.js';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 32) * MiB;
const TRIALS = Number(process.env.BENCH_TRIALS ?? 2);
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const TICKS_PER_SECOND = 100;

const mbit = (bytes: number, s: number) => (bytes * 8) / s / 1e6;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

/** CPU seconds (user + system) used so far by a process. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench:nodes needs root (it builds network namespaces)');
    process.exit(2);
  }
  await removeLeftovers();
  const tb: Testbed = await createTestbed({
    links: 3,
    machines: [0, 1, 2],
    rateMbit: 8,
    files: [{ name: 'big.bin', size: SIZE }],
  });
  let lent: LendingNodes | undefined;
  try {
    const url = tb.url('big.bin');
    const check = async (ns: string, path: string) => {
      const { stdout } = await tb.exec(ns, 'sha256sum', [path]);
      if (stdout.split(/\s+/)[0] !== tb.files['big.bin']?.sha256)
        throw new Error(`corrupt download at ${path}`);
      await tb.exec(ns, 'rm', ['-f', path]);
    };
    lent = await startLendingNodes(tb, cli, [1, 2]);
    const { nodes, tokens } = lent;

    console.log(`\n## 3 machines × 8 Mbit/s on one LAN — ${SIZE / MiB} MiB, one server address`);
    const singles = await Promise.all(
      tb.machines.map(async (m, k) => {
        const out = `/tmp/${tb.prefix}single${k}`;
        const s = await timed(() =>
          tb.exec(m.ns, 'curl', ['-sS', '--fail', '--interface', `up${k}`, '-o', out, url]),
        );
        await check(m.ns, out);
        return {
          what: `curl on ${k === 0 ? 'the client' : `node n${k}`}, up${k} alone`,
          mbit: mbit(SIZE, s),
        };
      }),
    );
    const sum = singles.reduce((a, s) => a + s.mbit, 0);
    console.log(`sum of single-link goodputs: ${sum.toFixed(2)} Mbit/s`);
    console.log('| what | goodput (Mbit/s) | ratio to sum |');
    console.log('|---|---:|---:|');
    for (const s of singles)
      console.log(`| ${s.what} | ${s.mbit.toFixed(2)} | ${(s.mbit / sum).toFixed(3)} |`);

    const ratios: number[] = [];
    const cpuPerMbit: number[] = [];
    for (let t = 0; t < TRIALS; t++) {
      const out = `/tmp/${tb.prefix}linkmux`;
      const pids = nodes.map((n) => n.child.pid!);
      const cpu0 = await Promise.all(pids.map(cpuSeconds));
      const rx0 = await tb.uplinkCounters();
      const s = await timed(() =>
        tb.exec(tb.clientNs, process.execPath, [
          cli,
          'get',
          '--quiet',
          '--overwrite',
          '--link',
          'up0',
          ...tokens.flatMap((tok) => ['--join', tok]),
          '-o',
          out,
          url,
        ]),
      );
      await check(tb.clientNs, out);
      const cpu1 = await Promise.all(pids.map(cpuSeconds));
      const rx1 = await tb.uplinkCounters();
      const rate = mbit(SIZE, s);
      ratios.push(rate / sum);
      console.log(
        `| linkmux get, client + 2 nodes, trial ${t + 1} | ${rate.toFixed(2)} | ${(rate / sum).toFixed(3)} |`,
      );
      nodes.forEach((_, i) => {
        const dev = `up${i + 1}`;
        const relayedMbit = mbit((rx1[dev]?.rx ?? 0) - (rx0[dev]?.rx ?? 0), s);
        const cpu = (cpu1[i]! - cpu0[i]!) / s;
        cpuPerMbit.push(cpu / relayedMbit);
        console.log(
          `|   node n${i + 1}: relayed ${relayedMbit.toFixed(2)} Mbit/s, CPU ${(cpu * 100).toFixed(1)} % of a core ` +
            `= ${((cpu / relayedMbit) * 100).toFixed(3)} % per Mbit/s | | |`,
        );
      });
    }
    const min = Math.min(...ratios);
    const meanCpu = cpuPerMbit.reduce((a, b) => a + b, 0) / cpuPerMbit.length;
    console.log(
      `node CPU: ${(meanCpu * 100).toFixed(3)} % of one core per Mbit/s relayed (mean over nodes and trials)`,
    );
    const ok = min >= 0.93;
    console.log(
      `target: linkmux ≥ 0.93 × sum in every trial → ${ok ? 'MET' : 'MISSED'} (min ${min.toFixed(3)})`,
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    await lent?.stop();
    await tb.destroy();
  }
}

await main();
