/**
 * `linkmux up` on the testbed (3 × 8 Mbit/s uplinks, one server address):
 * parallel downloads through the proxy use every uplink (kernel counters), a
 * blackholed uplink is marked offline within 3 s and new connections keep
 * working, and the link is re-admitted when the drop rule goes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestbed, removeLeftovers, type Testbed } from '../../src/testbed/testbed.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';
import { startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon.js';
import { blackholeAndWaitOffline } from '../helpers/netns-run.js';
import { describe } from '../../src/util/errors.js';

const MiB = 1024 * 1024;
let tb: Testbed | undefined;
let daemon: RunningDaemon | undefined;

before(async () => {
  if (!netnsReady()) return;
  await removeLeftovers();
  tb = await createTestbed({ links: 3, rateMbit: 8, files: [{ name: 'f4.bin', size: 4 * MiB }] });
  daemon = await startDaemon(
    tb,
    cliPath(),
    `
listen: { socks: "127.0.0.1:1080", http: "127.0.0.1:8080", control: "127.0.0.1:9190" }
health:
  interval: 1
  timeout: 0.5
  failThreshold: 3
  riseThreshold: 2
  targets: ["tcp://${tb.serverAddress}:80"]
`,
  );
});

after(async () => {
  try {
    await daemon?.stop();
  } finally {
    await tb?.destroy();
  }
});

/** What the curls of the last `parallel` call that failed said (for the assertion messages). */
let curlErrors: string[] = [];

/** K parallel downloads through the proxy; resolves with each curl's exit code. */
async function parallel(k: number, via: 'socks' | 'http', file = 'f4.bin', maxTime = 30): Promise<number[]> {
  const bed = tb as Testbed;
  const d = daemon as RunningDaemon;
  const proxy = via === 'socks' ? ['--socks5', d.socks] : ['-x', `http://${d.http}`];
  curlErrors = [];
  return Promise.all(
    Array.from({ length: k }, async () => {
      try {
        await bed.exec(bed.clientNs, 'curl', [
          '-sS',
          '--fail',
          '--max-time',
          String(maxTime),
          ...proxy,
          '-o',
          '/dev/null',
          bed.url(file),
        ]);
        return 0;
      } catch (err) {
        curlErrors.push(describe(err).slice(0, 400));
        return 1;
      }
    }),
  );
}

for (const k of [3, 6]) {
  test(
    `K = ${k} parallel downloads: every uplink carries traffic in every trial`,
    { skip: skipReason() },
    async () => {
      const bed = tb as Testbed;
      for (let trial = 0; trial < 2; trial++) {
        const before = await bed.counters();
        const codes = await parallel(k, trial === 0 ? 'socks' : 'http');
        assert.deepEqual(codes, Array(k).fill(0), `every download succeeded: ${curlErrors.join(' | ')}`);
        const after = await bed.counters();
        for (const u of bed.uplinks) {
          const rx = (after[u.dev]?.rx ?? 0) - (before[u.dev]?.rx ?? 0);
          assert.ok(rx > 2 * MiB, `K=${k} trial ${trial}: ${u.dev} carried only ${rx} bytes`);
        }
      }
    },
  );
}

test(
  'a blackholed uplink goes offline within 3 s, new connections succeed, and it comes back',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const d = daemon as RunningDaemon;
    const up1 = bed.uplinks[1]?.dev as string;
    const stateOf = async () => (await d.status()).links.find((l) => l.id === up1)?.state;
    await waitFor('up1 online at start', 5_000, stateOf, (s) => s === 'online');
    try {
      await blackholeAndWaitOffline(bed, 1, stateOf, { withinMs: 3_000 });
      const before = await bed.counters();
      // 6 × 4 MiB over the two live 8 Mbit/s uplinks: 12.6 s at fair shares, and two flows on one
      // uplink can split it unevenly (docs/architecture.md, "Flow fairness with holds"). The one
      // failure seen with a 20 s bound took 20 s: a slow download, not a failed connection.
      const codes = await parallel(6, 'socks', 'f4.bin', 40);
      assert.deepEqual(
        codes,
        Array(6).fill(0),
        `no new connection failed while a link is dead: ${curlErrors.join(' | ')}`,
      );
      const after = await bed.counters();
      const rx1 = (after[up1]?.rx ?? 0) - (before[up1]?.rx ?? 0);
      assert.ok(rx1 < 256 * 1024, `the offline link still received ${rx1} bytes`);
    } finally {
      await bed.unblackhole(1);
    }
    await waitFor('up1 re-admitted', 6_000, stateOf, (s) => s === 'online');
    const before = await bed.counters();
    assert.deepEqual(await parallel(3, 'socks'), [0, 0, 0]);
    const after = await bed.counters();
    const rx1 = (after[up1]?.rx ?? 0) - (before[up1]?.rx ?? 0);
    assert.ok(rx1 > 2 * MiB, `the re-admitted link carried only ${rx1} bytes`);
  },
);
