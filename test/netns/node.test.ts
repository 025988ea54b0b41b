/**
 * `linkmux node` on a real LAN: three machines on one bridge (the client and
 * two nodes), each with its own 8 Mbit/s uplink through its own ISP, all to one
 * server address. The nodes run `linkmux node`; the client joins them with
 * their tokens. Checks what users see: `linkmux get` and parallel downloads
 * through `linkmux up` use all three uplinks (kernel counters on each
 * machine) and the files are intact; a node whose uplink is blackholed goes
 * offline within 3 s and the rest carry on; a node killed mid-download loses
 * nothing and goes offline too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { createTestbed, removeLeftovers, type Testbed } from '../../src/testbed/testbed.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';
import { startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon.js';
import { blackholeAndWaitOffline } from '../helpers/netns-run.js';

const MiB = 1024 * 1024;
let tb: Testbed | undefined;
const nodes: RunningDaemon[] = [];
const tokens: string[] = [];
let client: RunningDaemon | undefined;

const healthYaml = (server: string) => `
health:
  interval: 1
  timeout: 0.5
  failThreshold: 3
  riseThreshold: 2
  targets: ["tcp://${server}:80"]
`;

before(async () => {
  if (!netnsReady()) return;
  await removeLeftovers();
  tb = await createTestbed({
    links: 3,
    machines: [0, 1, 2],
    rateMbit: 8,
    files: [
      { name: 'f6.bin', size: 6 * MiB },
      { name: 'f12.bin', size: 12 * MiB },
    ],
  });
  for (const k of [1, 2]) {
    const m = tb.machines[k]!;
    const flags = [
      '--listen',
      `${m.lanAddress}:7300`,
      '--state-dir',
      `/tmp/${tb.prefix}node${k}`,
      '--name',
      `n${k}`,
      '--link',
      `up${k}`,
    ];
    const init = await tb.exec(m.ns, process.execPath, [cliPath(), 'node', '--init', ...flags]);
    tokens.push(init.stdout.trim());
    nodes.push(
      await startDaemon(
        tb,
        cliPath(),
        `listen: { control: "127.0.0.1:9190" }\n${healthYaml(tb.serverAddress)}`,
        {
          ns: m.ns,
          args: ['node', ...flags],
        },
      ),
    );
  }
  client = await startDaemon(
    tb,
    cliPath(),
    `
listen: { socks: "127.0.0.1:1080", http: "127.0.0.1:8080", control: "127.0.0.1:9190" }
links: [up0]
join: [${tokens.map((t) => `"${t}"`).join(', ')}]
${healthYaml(tb.serverAddress)}
log: debug`,
  );
});

after(async () => {
  try {
    await client?.stop();
    for (const n of nodes) await n.stop();
  } finally {
    if (tb) for (const k of [1, 2]) await rm(`/tmp/${tb.prefix}node${k}`, { recursive: true, force: true });
    await tb?.destroy();
  }
});

/** rx bytes of every machine's uplink (up0 on the client, up1 and up2 on the nodes). */
async function uplinkRx(): Promise<Record<string, number>> {
  const c = await (tb as Testbed).uplinkCounters();
  return Object.fromEntries(Object.entries(c).map(([dev, v]) => [dev, v.rx]));
}

function grew(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)]));
}

async function sha256In(ns: string, path: string): Promise<string> {
  const { stdout } = await (tb as Testbed).exec(ns, 'sha256sum', [path]);
  return stdout.split(/\s+/)[0] ?? '';
}

async function linkState(id: string): Promise<string | undefined> {
  return (await (client as RunningDaemon).status()).links.find((l) => l.id === id)?.state;
}

/** K downloads of `file` through the client's SOCKS5 proxy, each checked by checksum. */
async function parallel(k: number, file: string): Promise<void> {
  const bed = tb as Testbed;
  await Promise.all(
    Array.from({ length: k }, async (_, i) => {
      const out = `/tmp/${bed.prefix}par-${i}.bin`;
      await bed.exec(bed.clientNs, 'curl', [
        '-sS',
        '--fail',
        '--max-time',
        '40',
        '--socks5',
        (client as RunningDaemon).socks,
        '-o',
        out,
        bed.url(file),
      ]);
      assert.equal(await sha256In(bed.clientNs, out), bed.files[file]?.sha256, `download ${i} intact`);
      await rm(out, { force: true });
    }),
  );
}

test(
  'linkmux get over the client uplink and two nodes: intact, all three uplinks carry it',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const out = `/tmp/${bed.prefix}get-nodes.bin`;
    const before = await uplinkRx();
    const joins = tokens.flatMap((t) => ['--join', t]);
    const r = await bed.exec(bed.clientNs, process.execPath, [
      cliPath(),
      'get',
      '--quiet',
      '--overwrite',
      '--link',
      'up0',
      ...joins,
      '-o',
      out,
      bed.url('f12.bin'),
    ]);
    assert.equal(r.stderr.includes('error'), false, r.stderr);
    assert.equal(await sha256In(bed.clientNs, out), bed.files['f12.bin']?.sha256);
    await rm(out, { force: true });
    const rx = grew(before, await uplinkRx());
    for (const dev of ['up0', 'up1', 'up2']) {
      assert.ok((rx[dev] ?? 0) >= 0.2 * 12 * MiB, `${dev} received only ${rx[dev]} bytes of 12 MiB`);
    }
  },
);

test("parallel downloads through linkmux up use every machine's uplink", { skip: skipReason() }, async () => {
  await waitFor(
    'all links online',
    8_000,
    async () => (await (client as RunningDaemon).status()).links.map((l) => l.state),
    (s) => s.every((x) => x === 'online'),
  );
  const before = await uplinkRx();
  await parallel(3, 'f6.bin');
  const rx = grew(before, await uplinkRx());
  for (const dev of ['up0', 'up1', 'up2']) {
    assert.ok((rx[dev] ?? 0) > 2 * MiB, `${dev} received only ${rx[dev]} bytes`);
  }
  const st = await nodes[0]!.status();
  assert.ok((st.node?.relayed.total ?? 0) > 0, 'node 1 relayed connections');
});

test(
  'a node whose uplink is blackholed goes offline within 3 s; the others carry on',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    await waitFor(
      'n1 online',
      8_000,
      () => linkState('n1'),
      (s) => s === 'online',
    );
    try {
      await blackholeAndWaitOffline(bed, 1, () => linkState('n1'), {
        withinMs: 3_000,
        what: 'n1',
        log: () => (client as RunningDaemon).log(),
      });
      const before = await uplinkRx();
      await parallel(3, 'f6.bin');
      const rx = grew(before, await uplinkRx());
      assert.ok((rx.up1 ?? 0) < 256 * 1024, `the dead node's uplink still received ${rx.up1} bytes`);
      assert.ok(
        (rx.up0 ?? 0) > 2 * MiB && (rx.up2 ?? 0) > 2 * MiB,
        `the live uplinks carried it: ${JSON.stringify(rx)}`,
      );
    } finally {
      await bed.unblackhole(1);
    }
    await waitFor(
      'n1 back',
      8_000,
      () => linkState('n1'),
      (s) => s === 'online',
    );
  },
);

test(
  'a node killed mid-download: nothing lost, ranges move, the link goes offline within 3 s',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const out = `/tmp/${bed.prefix}get-kill.bin`;
    await waitFor(
      'n2 online',
      8_000,
      () => linkState('n2'),
      (s) => s === 'online',
    );
    const child = bed.spawn(bed.clientNs, process.execPath, [
      cliPath(),
      'get',
      '--json',
      '--overwrite',
      '--stall-timeout',
      '5',
      '--link',
      'up0',
      ...tokens.flatMap((t) => ['--join', t]),
      '-o',
      out,
      bed.url('f12.bin'),
    ]);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d));
    let killedAt: number | undefined;
    let offline: Promise<number> | undefined;
    child.stdout?.on('data', (d: Buffer) => {
      if (killedAt === undefined && d.toString().includes('"progress"')) {
        killedAt = Date.now();
        nodes[1]!.child.kill('SIGKILL');
        offline = waitFor(
          'n2 offline',
          3_000,
          () => linkState('n2'),
          (s) => s === 'offline',
        );
        offline.catch(() => {});
      }
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, stderr);
    assert.ok(killedAt !== undefined, 'the node was killed during the download');
    assert.equal(await sha256In(bed.clientNs, out), bed.files['f12.bin']?.sha256);
    await rm(out, { force: true });
    const ms = await offline;
    assert.ok(ms !== undefined && ms <= 3_000, `n2 offline ${ms} ms after the kill`);
  },
);
