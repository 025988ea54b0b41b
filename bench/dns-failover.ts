/**
 * npm run bench:dns — how long new connections BY NAME stay broken after the main
 * uplink dies silently (issue 10), on the netns testbed: 3 × 8 Mbit/s uplinks, the
 * testbed DNS (files.test) reachable through each, up0 the main default route.
 *
 * Each trial: every link online; at t0 up0 is blackholed (link and carrier stay
 * up); from t0 a new connection by name is started every 100 ms (each bounded to
 * 3 s, at most 30 in flight) until one succeeds, for at most BENCH_MAX_S. Two paths:
 *   - linkmux: curl --socks5-hostname through `linkmux up` (the name goes to the
 *     daemon unresolved);
 *   - kernel: plain curl by name in the client ns (the system resolver and the
 *     socket both follow the main default route, up0): expected to fail throughout.
 * Between trials up0 is restored and the daemon must see it online again.
 * Prints the time from t0 to the first success per trial and min / median / max.
 *
 * Options (env): BENCH_TRIALS (default 5), BENCH_MAX_S (default 20).
 * Needs root (network namespaces); traffic stays inside the testbed.
 */
import { fileURLToPath } from 'node:url';
import { createTestbed, FILES_NAME, removeLeftovers, type Testbed } from '../src/testbed/testbed.js';
import { startDaemon, type RunningDaemon } from '../test/helpers/daemon.js';
import { runIn, waitAllLinks, waitLinkState } from '../test/helpers/netns-run.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
const MAX_MS = Number(process.env.BENCH_MAX_S ?? 20) * 1000;
const EVERY_MS = 100;
const ATTEMPT_S = 3;
const MAX_IN_FLIGHT = 30;
const FILE = 'k16.bin';
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/**
 * Starts `attempt` every EVERY_MS from now until one resolves true or MAX_MS pass;
 * resolves with the ms from the start to the first success, or undefined.
 */
async function firstSuccess(attempt: () => Promise<boolean>): Promise<number | undefined> {
  const t0 = performance.now();
  let inFlight = 0;
  let won: number | undefined;
  const running: Promise<void>[] = [];
  while (won === undefined && performance.now() - t0 < MAX_MS) {
    if (inFlight < MAX_IN_FLIGHT) {
      inFlight++;
      running.push(
        attempt().then((ok) => {
          inFlight--;
          if (ok && won === undefined) won = performance.now() - t0;
        }),
      );
    }
    await new Promise((r) => setTimeout(r, EVERY_MS));
  }
  await Promise.all(running); // every attempt is bounded by ATTEMPT_S
  return won;
}

function curlByName(tb: Testbed, extra: string[]): () => Promise<boolean> {
  const args = ['-sS', '--fail', '--max-time', String(ATTEMPT_S), ...extra, '-o', '/dev/null'];
  return async () => {
    const r = await runIn(
      tb,
      tb.clientNs,
      'curl',
      [...args, tb.url(FILE, 'http', FILES_NAME)],
      (ATTEMPT_S + 2) * 1000,
    );
    return r.code === 0;
  };
}

const fmt = (ms: number | undefined) =>
  ms === undefined ? `no success within ${MAX_MS / 1000} s` : `${Math.round(ms)} ms`;

function summary(xs: (number | undefined)[]): string {
  const ok = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  if (ok.length === 0) return `never succeeded (${xs.length} trials)`;
  const median = ok[Math.floor((ok.length - 1) / 2)] ?? 0;
  const failed = xs.length - ok.length;
  return `min ${Math.round(ok[0] ?? 0)} / median ${Math.round(median)} / max ${Math.round(ok[ok.length - 1] ?? 0)} ms${failed ? `; ${failed} trial(s) never succeeded` : ''}`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench:dns needs root (it builds network namespaces)');
    process.exit(2);
  }
  await removeLeftovers();
  const tb = await createTestbed({
    links: 3,
    rateMbit: 8,
    dns: true,
    files: [{ name: FILE, size: 16 * 1024 }],
  });
  let daemon: RunningDaemon | undefined;
  try {
    daemon = await startDaemon(
      tb,
      cli,
      `listen: { socks: "127.0.0.1:1080", http: "127.0.0.1:8080", control: "127.0.0.1:9190" }
health: { targets: ["tcp://1.1.1.1:443", "tcp://${tb.serverAddress}:80"] }
log: warn
`,
    );
    const d = daemon;
    console.log(`\n## new connections by name after the main uplink (up0) goes silent — ${TRIALS} trials`);
    console.log(`attempt every ${EVERY_MS} ms (each ≤ ${ATTEMPT_S} s), up to ${MAX_MS / 1000} s per trial\n`);
    console.log('| trial | linkmux (--socks5-hostname) | kernel resolver + main route |');
    console.log('|---:|---:|---:|');
    const viaLinkmux: (number | undefined)[] = [];
    const viaKernel: (number | undefined)[] = [];
    for (let t = 1; t <= TRIALS; t++) {
      await waitAllLinks(d, 'online', 15_000);
      // Past the names' TTL (1 s), so no trial is answered from a cache filled before t0.
      await new Promise((r) => setTimeout(r, 1_500));
      await tb.blackhole(0);
      try {
        const [lm, kernel] = await Promise.all([
          firstSuccess(curlByName(tb, ['--socks5-hostname', d.socks])),
          firstSuccess(curlByName(tb, [])),
        ]);
        viaLinkmux.push(lm);
        viaKernel.push(kernel);
        console.log(`| ${t} | ${fmt(lm)} | ${fmt(kernel)} |`);
      } finally {
        await tb.unblackhole(0);
      }
      await waitLinkState(d, 'up0', 'online', 15_000);
    }
    console.log(`\nlinkmux: ${summary(viaLinkmux)}`);
    console.log(`kernel:  ${summary(viaKernel)}`);
    if (viaKernel.every((x) => x === undefined)) {
      console.log('kernel path: failed in every trial, as expected (its lookups and sockets follow up0)');
    }
    const ok = viaLinkmux.every((x) => x !== undefined);
    console.log(`target: linkmux connects by name in every trial → ${ok ? 'MET' : 'MISSED'}`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    await daemon?.stop();
    await tb.destroy();
  }
}

await main();
