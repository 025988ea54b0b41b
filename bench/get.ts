/**
 * npm run bench:get — goodput of one file from ONE server address, side by side
 * in one run on the netns testbed:
 *   - each uplink alone (curl --interface upN), measured concurrently: the
 *     uplinks are independent paths, so this is each link's own goodput;
 *   - linkmux get over all uplinks;
 *   - aria2c -x3 -s3 through a kernel ECMP default route (L4 hash), the
 *     classic trick, over several trials since hashing is random.
 * Scenarios: 3 × 8 Mbit/s, and 8 + 4 + 2 Mbit/s (work stealing must hide the
 * slow link's tail). Prints ratios against the sum of single-link goodputs.
 *
 * Options (env): BENCH_SIZE_MIB (default 32), BENCH_ECMP_TRIALS (default 3).
 * Needs root (network namespaces); traffic stays inside the testbed.
 */
import { createTestbed, removeLeftovers, type Testbed } from '../src/testbed/testbed.js';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 32) * MiB;
const ECMP_TRIALS = Number(process.env.BENCH_ECMP_TRIALS ?? 3);
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

    const out = `/tmp/${tb.prefix}linkmux`;
    const lm = await timed(() =>
      tb.exec(tb.clientNs, process.execPath, [cli, 'get', '--quiet', '--overwrite', '-o', out, url]),
    );
    await check(out);
    rows.push({
      what: `linkmux get, ${rates.length} links`,
      mbit: mbit(SIZE, lm),
      ratio: mbit(SIZE, lm) / sum,
    });

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
    return { rows, target: rates.every((r) => r === rates[0]) ? 0.95 : 0.93, sum };
  } finally {
    await tb.destroy();
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
  const a = print('3 × 8 Mbit/s', await scenario([8, 8, 8]));
  const b = print('8 + 4 + 2 Mbit/s', await scenario([8, 4, 2]));
  process.exitCode = a && b ? 0 : 1;
}

await main();
