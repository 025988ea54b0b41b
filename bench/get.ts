/**
 * npm run bench:get — goodput of one file from ONE server address, side by side
 * in one run on the netns testbed:
 *   - each uplink alone (curl --interface upN), measured concurrently: the
 *     uplinks are independent paths, so this is each link's own goodput;
 *   - linkmux get over all uplinks;
 *   - aria2c -x3 -s3 through a kernel ECMP default route (L4 hash), the
 *     classic trick, over several trials since hashing is random.
 * Scenarios: 3 × 8 Mbit/s, and 8 + 4 + 2 Mbit/s (work stealing must hide the
 * slow link's tail). Prints ratios against the sum of single-link goodputs and
 * against the practical limit: one range curl per uplink, all at once, each
 * fetching its third of the file (the time of the slowest is the limit).
 * For linkmux it also prints its CPU (user+sys seconds per GiB), the TCP
 * connections it opened (the client namespace's TcpActiveOpens) and the file
 * server's CPU (a server near one core would be the bottleneck, not linkmux).
 *
 * Options (env): BENCH_SIZE_MIB (default 32), BENCH_ECMP_TRIALS (default 3,
 * 0 = skip aria2c), BENCH_RATE (Mbit/s per uplink, comma-separated list: one
 * scenario of BENCH_LINKS (default 3) equal uplinks per rate instead of the
 * defaults), BENCH_GET_TRIALS (linkmux runs per scenario, default 1),
 * BENCH_GET_ARGS (extra `linkmux get` arguments, space-separated),
 * BENCH_NODE_ARGS (node flags for linkmux, e.g. --cpu-prof --cpu-prof-dir=/tmp/p),
 * BENCH_OUT_DIR (where linkmux writes, default /tmp; /dev/shm keeps the disk's
 * writeback, and other processes' dirty pages, out of linkmux's system time).
 * Needs root (network namespaces); traffic stays inside the testbed.
 */
import { createTestbed, removeLeftovers, type Testbed } from '../src/testbed/testbed.js';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 32) * MiB;
const ECMP_TRIALS = Number(process.env.BENCH_ECMP_TRIALS ?? 3);
const RATES = (process.env.BENCH_RATE ?? '')
  .split(',')
  .filter((x) => x.trim() !== '')
  .map(Number);
const LINKS = Number(process.env.BENCH_LINKS ?? 3);
const GET_TRIALS = Math.max(1, Number(process.env.BENCH_GET_TRIALS ?? 1));
const GET_ARGS = (process.env.BENCH_GET_ARGS ?? '').split(' ').filter((x) => x !== '');
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((x) => x !== '');
/** A command to run linkmux under (e.g. `perf record -g -o /tmp/perf.data --`); for profiling only. */
const WRAP = (process.env.BENCH_WRAP ?? '').split(' ').filter((x) => x !== '');
const OUT_DIR = process.env.BENCH_OUT_DIR ?? '/tmp';
const CLK_TCK = 100;
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Row {
  what: string;
  mbit: number;
  ratio: number;
  note?: string;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

const mbit = (bytes: number, s: number) => (bytes * 8) / s / 1e6;

/** user+sys CPU seconds of the processes of a namespace (the file server's, in the server ns). */
async function nsCpu(tb: Testbed, ns: string): Promise<number> {
  const { stdout } = await tb.exec(ns, 'sh', ['-c', `ip netns pids ${ns}`]).catch(() => ({ stdout: '' }));
  let ticks = 0;
  for (const pid of stdout.split(/\s+/).filter((x) => /^\d+$/.test(x))) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11] ?? 0) + Number(f[12] ?? 0);
  }
  return ticks / CLK_TCK;
}

/** TCP connections opened so far in a namespace (its TcpActiveOpens). */
async function activeOpens(tb: Testbed, ns: string): Promise<number> {
  const { stdout } = await tb.exec(ns, 'nstat', ['-saz', 'TcpActiveOpens']);
  const m = /TcpActiveOpens\s+(\d+)/.exec(stdout);
  return Number(m?.[1] ?? NaN);
}

async function scenario(rates: number[]): Promise<{ rows: Row[]; target: number; sum: number }> {
  const tb: Testbed = await createTestbed({
    links: rates.length,
    rateMbit: rates,
    files: [{ name: 'big.bin', size: SIZE }],
  });
  try {
    const url = tb.url('big.bin');
    const sha = tb.files['big.bin']?.sha256;
    const check = async (path: string) => {
      const { stdout } = await tb.exec(tb.clientNs, 'sha256sum', [path]);
      if (stdout.split(/\s+/)[0] !== sha) throw new Error(`corrupt download at ${path}`);
      await tb.exec(tb.clientNs, 'rm', ['-f', path]);
    };
    const rows: Row[] = [];
    // Each uplink alone, all at once (independent paths).
    const singles = await Promise.all(
      tb.uplinks.map(async (u) => {
        const out = `/tmp/${tb.prefix}single${u.index}`;
        const s = await timed(() =>
          tb.exec(tb.clientNs, 'curl', ['-sS', '--fail', '--interface', u.dev, '-o', out, url]),
        );
        await check(out);
        return { dev: u.dev, rate: u.rateMbit, mbit: mbit(SIZE, s) };
      }),
    );
    const sum = singles.reduce((a, s) => a + s.mbit, 0);
    for (const s of singles)
      rows.push({ what: `curl, ${s.dev} alone (${s.rate} Mbit/s)`, mbit: s.mbit, ratio: s.mbit / sum });

    // The practical limit: one range curl per uplink, at once, each its share of the file.
    const n = tb.uplinks.length;
    const srvBefore = await nsCpu(tb, tb.serverNs);
    const limitS = await timed(() =>
      Promise.all(
        tb.uplinks.map(async (u, i) => {
          const first = Math.floor((SIZE * i) / n);
          const last = Math.floor((SIZE * (i + 1)) / n) - 1;
          const out = `/tmp/${tb.prefix}range${i}`;
          await tb.exec(tb.clientNs, 'curl', [
            '-sS',
            '--fail',
            '--interface',
            u.dev,
            '-r',
            `${first}-${last}`,
            '-o',
            out,
            url,
          ]);
        }),
      ),
    );
    const srvLimit = (await nsCpu(tb, tb.serverNs)) - srvBefore;
    await tb.exec(tb.clientNs, 'sh', [
      '-c',
      `cat ${tb.uplinks.map((_, i) => `/tmp/${tb.prefix}range${i}`).join(' ')} > /tmp/${tb.prefix}ranges`,
    ]);
    await check(`/tmp/${tb.prefix}ranges`);
    await tb.exec(tb.clientNs, 'sh', ['-c', `rm -f /tmp/${tb.prefix}range*`]);
    const limit = mbit(SIZE, limitS);
    rows.push({
      what: `practical limit: ${n} range curls at once, one per uplink`,
      mbit: limit,
      ratio: limit / sum,
      note: `file server ${((srvLimit * 1024 * MiB) / SIZE).toFixed(2)} CPU-s/GiB`,
    });

    for (let t = 0; t < GET_TRIALS; t++) {
      const out = `${OUT_DIR}/${tb.prefix}linkmux`;
      const opensBefore = await activeOpens(tb, tb.clientNs);
      const srv0 = await nsCpu(tb, tb.serverNs);
      const perGiB = (s: number) => ((s * 1024 * MiB) / SIZE).toFixed(2);
      let cpu = NaN;
      let split = '';
      const lm = await timed(async () => {
        const { stderr } = await tb.exec(tb.clientNs, '/usr/bin/time', [
          '-f',
          'LMXCPU %U %S',
          ...WRAP,
          process.execPath,
          ...NODE_ARGS,
          cli,
          'get',
          '--quiet',
          '--overwrite',
          ...GET_ARGS,
          '-o',
          out,
          url,
        ]);
        const m = /LMXCPU ([\d.]+) ([\d.]+)/.exec(stderr);
        if (m) {
          cpu = Number(m[1]) + Number(m[2]);
          split = ` (user ${perGiB(Number(m[1]))}, sys ${perGiB(Number(m[2]))})`;
        }
      });
      const srv = (await nsCpu(tb, tb.serverNs)) - srv0;
      const opens = (await activeOpens(tb, tb.clientNs)) - opensBefore;
      await check(out);
      rows.push({
        what: `linkmux get, ${rates.length} links${GET_ARGS.length ? ` (${GET_ARGS.join(' ')})` : ''}`,
        mbit: mbit(SIZE, lm),
        ratio: mbit(SIZE, lm) / sum,
        note:
          `${(mbit(SIZE, lm) / limit).toFixed(3)} × practical limit, ${perGiB(cpu)} CPU-s/GiB${split}, ` +
          `${opens} TCP connections, file server ${perGiB(srv)} CPU-s/GiB`,
      });
    }

    if (ECMP_TRIALS > 0) await ecmpRows(tb, url, sum, check, rows);
    return { rows, target: rates.every((r) => r === rates[0]) ? 0.95 : 0.93, sum };
  } finally {
    await tb.destroy();
  }
}

/** aria2c -x3 -s3 over a kernel ECMP route, ECMP_TRIALS times. */
async function ecmpRows(
  tb: Testbed,
  url: string,
  sum: number,
  check: (path: string) => Promise<void>,
  rows: Row[],
): Promise<void> {
  await tb.setEcmp(true);
  try {
    const trials: number[] = [];
    for (let t = 0; t < ECMP_TRIALS; t++) {
      const dir = `/tmp/${tb.prefix}aria`;
      const s = await timed(() =>
        tb.exec(tb.clientNs, 'aria2c', [
          '-q',
          '-x3',
          '-s3',
          '-k1M',
          '--allow-overwrite=true',
          '--auto-file-renaming=false',
          '--file-allocation=none',
          '-d',
          dir,
          '-o',
          'big.bin',
          url,
        ]),
      );
      await check(`${dir}/big.bin`);
      trials.push(mbit(SIZE, s));
    }
    const mean = trials.reduce((a, b) => a + b, 0) / trials.length;
    rows.push({
      what: `aria2c -x3 -s3 via kernel ECMP (L4 hash), ${trials.length} trials`,
      mbit: mean,
      ratio: mean / sum,
      note: `min ${(Math.min(...trials) / sum).toFixed(2)}, max ${(Math.max(...trials) / sum).toFixed(2)}`,
    });
  } finally {
    await tb.setEcmp(false);
    await tb.exec(tb.clientNs, 'rm', ['-rf', `/tmp/${tb.prefix}aria`]);
  }
}

function print(title: string, r: { rows: Row[]; target: number; sum: number }): boolean {
  console.log(`\n## ${title} — ${SIZE / MiB} MiB, one server address`);
  console.log(`sum of single-link goodputs: ${r.sum.toFixed(2)} Mbit/s`);
  console.log('| what | goodput (Mbit/s) | ratio to sum |');
  console.log('|---|---:|---:|');
  for (const row of r.rows) {
    console.log(
      `| ${row.what} | ${row.mbit.toFixed(2)} | ${row.ratio.toFixed(3)}${row.note ? ` (${row.note})` : ''} |`,
    );
  }
  const lm = r.rows.find((x) => x.what.startsWith('linkmux'));
  const ok = !!lm && lm.ratio >= r.target;
  console.log(`target: linkmux ≥ ${r.target} × sum → ${ok ? 'MET' : 'MISSED'} (${lm?.ratio.toFixed(3)})`);
  return ok;
}

async function main() {
  if (process.getuid?.() !== 0) {
    console.error('bench:get needs root (it builds network namespaces)');
    process.exit(2);
  }
  await removeLeftovers();
  let ok = true;
  if (RATES.length > 0) {
    for (const r of RATES) {
      const rates = Array.from({ length: LINKS }, () => r);
      ok = print(`${LINKS} × ${r} Mbit/s`, await scenario(rates)) && ok;
    }
  } else {
    ok = print('3 × 8 Mbit/s', await scenario([8, 8, 8])) && ok;
    ok = print('8 + 4 + 2 Mbit/s', await scenario([8, 4, 2])) && ok;
  }
  process.exitCode = ok ? 0 : 1;
}

await main();
