/**
 * npm run bench:scale — linkmux's cost per byte against the practical limit,
 * at several uplink rates in one run (issue 15). Per rate, one netns testbed:
 * the client's 3 uplinks shaped by TBF at both ends (plus, for `nodes`, two
 * LAN machines with one uplink each at the same rate), one server address,
 * and in order:
 *   one    curl over one uplink (a third of the file);
 *   limit  the practical limit: three range curls at once, one per uplink
 *          (curl --interface), sum of their goodputs;
 *   get    `linkmux get` (default settings): ratio to the limit (wall time,
 *          start-up included; its own time too), CPU-s/GiB of the process
 *          (user + system from /usr/bin/time), sha-256 checked;
 *   up     `linkmux up` and 6 curls --socks5-hostname at once, a sixth of
 *          the file each: goodput while all 6 run (and end to end) / limit,
 *          CPU-s/GiB of the daemon (/proc/<pid>/stat);
 *   nodes  a LAN of 3 machines (client + 2 `linkmux node`), each machine's
 *          uplink alone (3 range curls at once) vs `get --link up0 --join A
 *          --join B`: ratio to their sum, CPU-s/GiB of the client and of each
 *          node per GiB it relayed.
 * The testbed file server's CPU is watched in every step (≥ 90 % of a core:
 * flagged as a possible bottleneck). Prints a table per rate and appends one
 * JSON line per run (date, commit, kernel, Node, CPU, load, every figure).
 *
 * Options (env):
 *   BENCH_RATES     Mbit/s per uplink, comma-separated (default 8,100,400)
 *   BENCH_SIZE_MIB  file size, one for all rates or one per rate (default
 *                   ≈ 8 s at 3 × the rate: 8 → 32, 100 → 256, 400 → 1024)
 *   BENCH_ONLY      scenarios to run, e.g. get,up (default one,limit,get,up,nodes;
 *                   limit is added whenever get or up runs: their ratios need it)
 *   BENCH_TRIALS    runs of each rate, each on a fresh testbed (default 1); > 1 adds
 *                   a summary, median (min–max) of the headline figures
 *   BENCH_GET_ARGS  extra `linkmux get` arguments, e.g. "-x 2" (experiments)
 *   BENCH_OUT       results file (default bench-results/scale.jsonl)
 * Quick single scenario: BENCH_RATES=400 BENCH_ONLY=get npm run bench:scale (≈ 40 s). Keep the
 * default sizes for figures: a shorter file puts start-up and slow start into them.
 * Needs root (network namespaces), curl and /usr/bin/time; traffic stays in the testbed.
 * The CPU figures are this machine's; ratios are noisy on a loaded machine (see loadBefore/After).
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import os from 'node:os';
import { createTestbed, removeLeftovers, type Testbed } from '../src/testbed/testbed.js';
import { missingToolMessage } from '../src/util/runner.js';
import { fileServerPid, startupCost } from './measure.js';
import { procCounters } from './proxy-tools.js';
import { registerCleanup } from './proxy-cleanup.js';
import { GiB, MiB, cli, progress, readOptions, type ScaleOptions } from './scale-options.js';
import { appendRecord, environment, printRate, printSummary, type RateResult } from './scale-report.js';
import { FILE, get, oneLink, overNodes, practicalLimit, up, type RateContext } from './scale-scenarios.js';

const execFileAsync = promisify(execFile);

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('bench:scale needs root (it builds network namespaces)');
  for (const tool of ['ip', 'tc', 'nft', 'curl', '/usr/bin/time']) {
    try {
      execFileSync(tool, tool === '/usr/bin/time' ? ['-f', '', 'true'] : ['-V'], { stdio: 'ignore' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new Error(
          tool === '/usr/bin/time' ? 'install the time package for /usr/bin/time' : missingToolMessage(tool),
        );
    }
  }
}

async function measureRate(
  opts: ScaleOptions,
  i: number,
  trial: number,
  startupCpuS: number,
): Promise<RateResult> {
  const rate = opts.rates[i]!;
  const size = opts.sizes[i]!;
  const withNodes = opts.only.has('nodes');
  const result: RateResult = {
    rateMbit: rate,
    trial,
    sizeMiB: size / MiB,
    congestionControl: '?',
    fileServer: {},
    errors: {},
  };
  progress(`3 × ${rate} Mbit/s: building the testbed (${size / MiB} MiB file${withNodes ? ', LAN' : ''})`);
  let tb: Testbed;
  try {
    tb = await createTestbed({
      links: withNodes ? 5 : 3,
      ...(withNodes ? { machines: [0, 0, 0, 1, 2] } : {}),
      rateMbit: rate,
      files: [{ name: FILE, size }],
    });
  } catch (err) {
    result.errors.testbed = (err as Error).message;
    return result;
  }
  const cleanup = registerCleanup(() => tb.destroy());
  try {
    const client = tb.machines[0]!;
    const c: RateContext = {
      tb,
      rate,
      size,
      devs: client.uplinks.map((u) => tb.uplinks[u]!.dev),
      getArgs: opts.getArgs,
    };
    const sysctl = await tb.exec(tb.clientNs, 'sysctl', ['-n', 'net.ipv4.tcp_congestion_control']);
    result.congestionControl = sysctl.stdout.trim();
    const server = await fileServerPid(tb);
    const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
      progress(`3 × ${rate} Mbit/s: ${name}`);
      // Each step starts with no dirty pages of the last one: their writeback would
      // otherwise run during this step and land in its CPU (get fsyncs its own data).
      await execFileAsync('sync');
      const cpu0 = (await procCounters(server)).cpu;
      const t0 = performance.now();
      try {
        return await fn();
      } catch (err) {
        result.errors[name] = (err as Error).message.slice(0, 2000);
        progress(`3 × ${rate} Mbit/s: ${name} FAILED: ${result.errors[name]}`);
        return undefined;
      } finally {
        const cpuS = (await procCounters(server)).cpu - cpu0;
        result.fileServer[name] = { cpuS, core: cpuS / ((performance.now() - t0) / 1000) };
      }
    };
    if (opts.only.has('one')) {
      const one = await step('one', () => oneLink(c));
      if (one) result.one = { ...one, ofRate: one.mbit / rate };
    }
    if (opts.only.has('limit')) result.limit = await step('limit', () => practicalLimit(c));
    const limit = result.limit?.mbit ?? NaN;
    if (opts.only.has('get')) {
      const g = await step('get', () => get(c));
      if (g) {
        const ratioInProcess = (size * 8) / g.getS / 1e6 / limit;
        const cpuPerGiBNet = ((g.cpuS - startupCpuS) * GiB) / size;
        result.get = { ...g, ratio: g.mbit / limit, ratioInProcess, cpuPerGiBNet };
      }
    }
    if (opts.only.has('up')) {
      const u = await step('up', () => up(c));
      if (u) result.up = { ...u, ratio: u.windowMbit / limit, endToEndRatio: u.endToEndMbit / limit };
    }
    if (withNodes) result.nodes = await step('nodes', () => overNodes(c));
  } catch (err) {
    result.errors.setup = (err as Error).message;
  } finally {
    await cleanup.run();
  }
  return result;
}

async function main(): Promise<void> {
  const opts = readOptions();
  preflight();
  await removeLeftovers();
  const env = environment();
  const startup = await startupCost(cli);
  // Every transfer takes about as long as the file over three links; nodes makes two.
  const transfers = opts.only.size + (opts.only.has('nodes') ? 1 : 0);
  const minutes =
    (opts.trials *
      opts.sizes.reduce((a, s, i) => a + (transfers * s * 8) / (3 * opts.rates[i]! * 0.9e6), 0)) /
    60;
  progress(
    `rates ${opts.rates.join(', ')} Mbit/s, scenarios ${[...opts.only].join(',')}, ${opts.trials} trial(s); ` +
      `about ${Math.ceil(minutes + opts.rates.length * opts.trials * 0.2)} min`,
  );
  const results: RateResult[] = [];
  for (let i = 0; i < opts.rates.length; i++) {
    for (let t = 0; t < opts.trials; t++) {
      const r = await measureRate(opts, i, t, startup.cpuS);
      results.push(r);
      printRate(r, opts.trials);
    }
  }
  if (opts.trials > 1) printSummary(results);
  const loadAfter = os.loadavg().map((x) => Number(x.toFixed(2)));
  await appendRecord(opts.out, { ...env, loadAfter, startup, rates: opts.rates, results });
  console.log(
    `\nStarting the CLI (linkmux --version): ${startup.wallS.toFixed(2)} s, ${startup.cpuS.toFixed(2)} CPU-s. ` +
      `Load average before ${env.loadBefore.join(' ')}, after ${loadAfter.join(' ')} (${env.cores} cores). ` +
      `Appended to ${opts.out}.`,
  );
  if (results.some((r) => Object.keys(r.errors).length > 0)) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  console.error(`bench:scale: ${(err as Error).message}`);
  process.exitCode = 2;
}
