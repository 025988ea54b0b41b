/**
 * `linkmux gateway` on a real router: a LAN host (no proxy settings) → the
 * gateway namespace with three 8 Mbit/s uplinks (ISP namespaces with NAT and
 * BCP 38) → one server address. Checks what users see: with 3 and 6 parallel
 * TCP flows every uplink carries traffic in every trial (kernel counters on
 * the gateway), UDP flows are spread too, an uplink blackholed with an nft
 * drop rule (link stays up) leaves the rotation within 3 s while new
 * connections succeed, bad configs change nothing, and after the gateway stops
 * its namespace's ruleset, rules and routes are exactly as before.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestbed, removeLeftovers, type Testbed } from '../../src/testbed/testbed.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';
import { startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon.js';
import { blackholeAndWaitOffline } from '../helpers/netns-run.js';
import { writeFile, rm } from 'node:fs/promises';

const MiB = 1024 * 1024;
let tb: Testbed | undefined;
let gw: RunningDaemon | undefined;
let pristine = '';

const CONFIG = (server: string, rules = '') => `
listen: { socks: false, http: false, control: "127.0.0.1:9190" }
gateway:
  lan: [lan0]
  uplinks: [{ interface: up0 }, { interface: up1 }, { interface: up2 }]
  rules: [${rules}]
health:
  interval: 1
  timeout: 0.5
  failThreshold: 3
  riseThreshold: 2
  targets: ["tcp://${server}:80"]
`;

/** What linkmux may change in the gateway namespace, printed: compared before and after. */
async function kernelState(): Promise<string> {
  const bed = tb as Testbed;
  const parts = await Promise.all([
    bed.exec(bed.clientNs, 'nft', ['list', 'ruleset']),
    bed.exec(bed.clientNs, 'ip', ['-4', 'rule', 'show']),
    bed.exec(bed.clientNs, 'ip', ['-6', 'rule', 'show']),
    bed.exec(bed.clientNs, 'ip', ['-4', 'route', 'show', 'table', 'all']),
  ]);
  return parts.map((p) => p.stdout).join('\n---\n');
}

before(async () => {
  if (!netnsReady(['conntrack', 'sysctl'])) return;
  await removeLeftovers();
  tb = await createTestbed({
    links: 3,
    rateMbit: 8,
    lanHosts: 1,
    files: [
      { name: 'f2.bin', size: 2 * MiB },
      { name: 'f4.bin', size: 4 * MiB },
    ],
  });
  pristine = await kernelState();
  gw = await startDaemon(tb, cliPath(), CONFIG(tb.serverAddress), { args: ['gateway'] });
});

after(async () => {
  try {
    await gw?.stop();
  } finally {
    await tb?.destroy();
  }
});

async function uplinkRx(): Promise<Record<string, number>> {
  const c = await (tb as Testbed).counters();
  return { up0: c.up0?.rx ?? 0, up1: c.up1?.rx ?? 0, up2: c.up2?.rx ?? 0 };
}

async function uplinkTx(): Promise<Record<string, number>> {
  const c = await (tb as Testbed).counters();
  return { up0: c.up0?.tx ?? 0, up1: c.up1?.tx ?? 0, up2: c.up2?.tx ?? 0 };
}

const delta = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.keys(b).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));

/** K parallel downloads from the LAN host (plain curl, no proxy); each must arrive intact. */
async function flows(k: number, file: string, maxTime = 30): Promise<void> {
  const bed = tb as Testbed;
  const host = bed.lanHosts[0]!.ns;
  await Promise.all(
    Array.from({ length: k }, async (_, i) => {
      const out = `/tmp/${bed.prefix}gw-${i}.bin`;
      try {
        await bed.exec(host, 'curl', [
          '-sS',
          '--fail',
          '--max-time',
          String(maxTime),
          '-o',
          out,
          bed.url(file),
        ]);
        const { stdout } = await bed.exec(host, 'sha256sum', [out]);
        assert.equal(stdout.split(/\s+/)[0], bed.files[file]?.sha256, `flow ${i} intact`);
      } finally {
        await rm(out, { force: true });
      }
    }),
  );
}

const everyUplinkOnline = () =>
  waitFor(
    'every uplink online',
    15_000,
    () => (gw as RunningDaemon).status(),
    (s) => s.links.length === 3 && s.links.every((l) => l.state === 'online'),
  );

async function state(dev: string): Promise<string | undefined> {
  return (await (gw as RunningDaemon).status()).links.find((l) => l.id === dev)?.state;
}

for (const [k, file] of [
  [3, 'f4.bin'],
  [6, 'f2.bin'],
] as const) {
  test(
    `K = ${k} TCP flows from the LAN: every uplink carries traffic in every trial`,
    { skip: skipReason(['conntrack', 'sysctl']) },
    async () => {
      for (let trial = 0; trial < 2; trial++) {
        // The test is about spreading over online uplinks: start from every uplink online.
        await everyUplinkOnline();
        const before = await uplinkRx();
        await flows(k, file);
        const rx = delta(before, await uplinkRx());
        for (const dev of ['up0', 'up1', 'up2']) {
          assert.ok(
            (rx[dev] ?? 0) > MiB,
            `K=${k} trial ${trial}: ${dev} received only ${rx[dev]} bytes; ` +
              `states ${JSON.stringify((await (gw as RunningDaemon).status()).links.map((l) => [l.id, l.state]))}; ` +
              `gateway log:\n${gw?.log()}`,
          );
        }
      }
    },
  );
}

test(
  'UDP flows from the LAN are spread over the uplinks too',
  { skip: skipReason(['conntrack', 'sysctl']) },
  async () => {
    const bed = tb as Testbed;
    const before = await uplinkTx();
    // Six UDP "flows" (six source ports), 200 datagrams of 1000 bytes each, to the server.
    const script = `
    const dgram = require('node:dgram');
    const payload = Buffer.alloc(1000, 7);
    let left = 6;
    for (let f = 0; f < 6; f++) {
      const s = dgram.createSocket('udp4');
      s.on('error', () => {});
      let n = 0;
      const tick = () => {
        for (let i = 0; i < 20 && n < 200; i++, n++) s.send(payload, 9, process.argv[1]);
        if (n < 200) setTimeout(tick, 20); else setTimeout(() => { s.close(); if (--left === 0) process.exit(0); }, 100);
      };
      tick();
    }`;
    await bed.exec(bed.lanHosts[0]!.ns, process.execPath, ['-e', script, bed.serverAddress]);
    const tx = delta(before, await uplinkTx());
    for (const dev of ['up0', 'up1', 'up2']) {
      assert.ok((tx[dev] ?? 0) > 100_000, `${dev} sent only ${tx[dev]} bytes of UDP: ${JSON.stringify(tx)}`);
    }
  },
);

test(
  'an uplink blackholed (link stays up) leaves the rotation within 3 s; new connections succeed',
  { skip: skipReason(['conntrack', 'sysctl']) },
  async () => {
    const bed = tb as Testbed;
    await waitFor(
      'up1 online',
      8_000,
      () => state('up1'),
      (s) => s === 'online',
    );
    try {
      await blackholeAndWaitOffline(bed, 1, () => state('up1'), { withinMs: 3_000 });
      const before = await uplinkRx();
      await flows(6, 'f2.bin', 20);
      const rx = delta(before, await uplinkRx());
      assert.ok((rx.up1 ?? 0) < 64 * 1024, `the dead uplink still received ${rx.up1} bytes`);
    } finally {
      await bed.unblackhole(1);
    }
    await waitFor(
      'up1 back',
      8_000,
      () => state('up1'),
      (s) => s === 'online',
    );
  },
);

test(
  "an uplink whose probes fail while the LAN's downloads fill it stays online; idle, it goes offline",
  { skip: skipReason(['conntrack', 'sysctl']) },
  async () => {
    const bed = tb as Testbed;
    await everyUplinkOnline();
    // The gateway's own probes through up1 are dropped (output hook); forwarded LAN traffic is not:
    // the bufferbloat case, where probes queue behind the downloads and time out.
    const table = `${bed.prefix.replace(/[^a-z0-9]/gi, '')}probes`;
    const rules = `table inet ${table} {\n chain out {\n  type filter hook output priority 0; policy accept;\n  oifname "up1" tcp dport 80 drop\n }\n}\n`;
    await bed.exec(bed.clientNs, 'sh', ['-c', `printf '${rules.replace(/\n/g, '\\n')}' | nft -f -`]);
    try {
      // up1's state and received bytes every ~100 ms. "Busy" is what up1 itself received over
      // the last second: the flows are hashed over the uplinks, so up1's may end seconds before
      // the others', and from then on it is idle and may rightly go offline.
      const samples: { at: number; state: string; rx: number }[] = [];
      let done = false;
      const watch = (async () => {
        for (let i = 0; i < 300 && !done; i++) {
          const [st, rx] = await Promise.all([state('up1'), uplinkRx()]);
          samples.push({ at: performance.now(), state: st ?? 'missing', rx: rx.up1 ?? 0 });
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const before = await uplinkRx();
      try {
        await flows(6, 'f4.bin');
      } finally {
        done = true;
        await watch;
      }
      const rx = delta(before, await uplinkRx());
      assert.ok((rx.up1 ?? 0) > MiB, `up1 carried only ${rx.up1} bytes`);
      const busyOffline = samples.filter((x) => {
        if (x.state !== 'offline') return false;
        const secondBefore = samples.find((y) => y.at >= x.at - 1_000);
        // 64 KiB in a second: well above ARP and probe replies, far below one flow at 8 Mbit/s.
        return secondBefore !== undefined && x.rx - secondBefore.rx > 64 * 1024;
      });
      const states = [...new Set(samples.map((x) => x.state))].join(', ');
      assert.ok(
        samples.some((x) => x.state === 'online' || x.state === 'degraded'),
        'up1 was watched while in service',
      );
      assert.equal(
        busyOffline.length,
        0,
        `up1 went offline while it received traffic: states ${states}\n${gw?.log()}`,
      );
      // Idle now: the failed probes count, and up1 leaves within the detection bound (+ slack).
      const ms = await waitFor(
        'up1 offline once idle',
        6_000,
        () => state('up1'),
        (st) => st === 'offline',
      );
      assert.ok(ms <= 4_000, `up1 offline ${ms} ms after the downloads ended`);
    } finally {
      await bed.exec(bed.clientNs, 'nft', ['delete', 'table', 'inet', table]).catch(() => {});
    }
    await waitFor(
      'up1 back',
      8_000,
      () => state('up1'),
      (st) => st === 'online',
    );
  },
);

test(
  'after the gateway stops, the namespace is exactly as before',
  { skip: skipReason(['conntrack', 'sysctl']) },
  async () => {
    const bed = tb as Testbed;
    const dry = await bed
      .exec(bed.clientNs, process.execPath, [
        cliPath(),
        'gateway',
        '--dry-run',
        '-c',
        (gw as RunningDaemon).configPath,
      ])
      .catch((e: unknown) => ({ stdout: String(e) }));
    assert.match(dry.stdout, /table inet linkmux/);
    assert.notEqual(await kernelState(), pristine, 'the gateway installed its rules');
    await (gw as RunningDaemon).stop();
    gw = undefined;
    assert.equal(await kernelState(), pristine);
  },
);

test(
  'bad configs are refused before anything changes',
  { skip: skipReason(['conntrack', 'sysctl']) },
  async () => {
    const bed = tb as Testbed;
    // Run with the gateway stopped (the previous test), so the kernel is pristine and nothing else changes it.
    const now = await kernelState();
    assert.equal(now, pristine);
    const cases: Array<[string, RegExp]> = [
      ['gateway: { lan: [lan0], uplinks: [{ interface: up9, gateway: 198.18.1.1 }] }', /up9 does not exist/],
      [
        'gateway: { lan: [lan0], uplinks: [{ interface: up0, gateway: 203.0.113.1 }] }',
        /not on up0's subnet/,
      ],
      ['gateway: { lan: [lan0], uplinks: [] }', /gateway\.uplinks is empty/],
      [
        'gateway: { lan: [lan0], uplinks: [{ interface: up0 }], rules: [{ match: { port: 443 }, action: "uplink:nope" }] }',
        /no uplink is named nope/,
      ],
    ];
    for (const [yaml, why] of cases) {
      const file = `/tmp/${bed.prefix}bad-gw.yaml`;
      let r: { ok: boolean; text: string };
      try {
        await writeFile(file, `listen: { socks: false, http: false, control: false }\n${yaml}\n`);
        r = await bed
          .exec(bed.clientNs, process.execPath, [cliPath(), 'gateway', '-c', file])
          .then(() => ({ ok: true, text: '' }))
          .catch((e: unknown) => ({ ok: false, text: String(e) }));
      } finally {
        await rm(file, { force: true });
      }
      assert.equal(r.ok, false, `${yaml} was accepted`);
      assert.match(r.text, why);
      assert.equal(await kernelState(), now, `${yaml} changed the kernel`);
    }
  },
);

test(
  'exceptions: a LAN source pinned to one uplink, a bypassed destination; --cleanup after a crash',
  { skip: skipReason(['conntrack', 'sysctl']) },
  async () => {
    const bed = tb as Testbed;
    const host = bed.lanHosts[0]!;
    const withRules = (rules: string) => CONFIG(bed.serverAddress, rules);

    // Sticky per source: everything from the LAN host leaves by up2.
    const pinned = await startDaemon(
      bed,
      cliPath(),
      withRules(`{ match: { source: ${host.lanAddress}/32 }, action: "uplink:up2" }`),
      {
        args: ['gateway'],
      },
    );
    try {
      const before = await uplinkRx();
      await flows(3, 'f2.bin');
      const rx = delta(before, await uplinkRx());
      assert.ok((rx.up2 ?? 0) > 5 * MiB, `up2 carried only ${rx.up2} bytes`);
      assert.ok(
        (rx.up0 ?? 0) < 256 * 1024 && (rx.up1 ?? 0) < 256 * 1024,
        `others carried some: ${JSON.stringify(rx)}`,
      );
      // A crash: SIGKILL leaves the kernel programmed, and `--cleanup` removes exactly what linkmux added.
      pinned.child.kill('SIGKILL');
      await waitFor(
        'gateway killed',
        5_000,
        async () => pinned.child.signalCode,
        (s) => s === 'SIGKILL',
      );
      assert.notEqual(await kernelState(), pristine, 'a killed gateway leaves its rules');
      await bed.exec(bed.clientNs, process.execPath, [
        cliPath(),
        'gateway',
        '--cleanup',
        '-c',
        pinned.configPath,
      ]);
      assert.equal(await kernelState(), pristine);
    } finally {
      await pinned.stop();
    }

    // Bypass: the main table decides (its default route is up0).
    const bypass = await startDaemon(
      bed,
      cliPath(),
      withRules(`{ match: { destination: ${bed.serverAddress}/32 }, action: bypass }`),
      {
        args: ['gateway'],
      },
    );
    try {
      const before = await uplinkRx();
      await flows(3, 'f2.bin');
      const rx = delta(before, await uplinkRx());
      assert.ok((rx.up0 ?? 0) > 5 * MiB, `up0 carried only ${rx.up0} bytes`);
      assert.ok(
        (rx.up1 ?? 0) < 256 * 1024 && (rx.up2 ?? 0) < 256 * 1024,
        `others carried some: ${JSON.stringify(rx)}`,
      );
    } finally {
      await bypass.stop();
    }
    assert.equal(await kernelState(), pristine);
  },
);
