/**
 * Hostile clients on a real LAN (issue 11): a client machine (uplink up0), a
 * node machine lending up1, and a LAN-only host.
 *
 * - A token holder asks the node for every address of the node's host (every
 *   interface), 0.0.0.0 and 127.0.0.1: each refused with SOCKS5 0x02 and a
 *   server bound to :: on the node host sees nothing; `--allow` of one opens
 *   just that one.
 * - A LAN client of `linkmux up` cannot reach 127.0.0.1:9190 (the control API)
 *   through the proxy, by SOCKS5 or HTTP.
 * - The daemon under `prlimit --nofile=1024`, flooded with 3 × 1024 idle
 *   connections from the LAN host: a legitimate SOCKS5 client and `linkmux
 *   status` are served throughout, no link leaves `online`, and the daemon's
 *   descriptors return to the baseline when the flood ends.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createTestbed, removeLeftovers, type Testbed } from '../../src/testbed/testbed.js';
import type { DaemonStatus } from '../../src/control/status-types.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';
import { startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon.js';

const hostile = fileURLToPath(new URL('../helpers/hostile-clients.js', import.meta.url));
let tb: Testbed | undefined;
let secret: ChildProcess | undefined;
let hits = 0;

const health = (server: string) =>
  `health: { interval: 1, timeout: 0.5, failThreshold: 3, riseThreshold: 2, targets: ["tcp://${server}:80"] }`;

before(async () => {
  if (!netnsReady()) return;
  await removeLeftovers();
  tb = await createTestbed({
    links: 2,
    machines: [0, 1],
    lanHosts: 1,
    rateMbit: 8,
    files: [{ name: 'f256k.bin', size: 256 * 1024 }],
  });
  // The lender's private web server, bound to every address of its host.
  secret = tb.spawn(tb.machines[1]!.ns, process.execPath, [
    '-e',
    "require('net').createServer((s)=>{console.log('hit');s.on('error',()=>{});s.end('secret')}).listen(8999,'::',()=>console.log('ready'))",
  ]);
  secret.stdout?.on('data', (d: Buffer) => (hits += (d.toString().match(/hit/g) ?? []).length));
  await waitFor(
    'secret server',
    5_000,
    async () => tb!.exec(tb!.machines[1]!.ns, 'ss', ['-Hltn', 'sport = :8999']),
    (r) => r.stdout.includes('8999'),
  );
});

after(async () => {
  secret?.kill();
  await tb?.destroy();
});

async function ask(
  token: string,
  hosts: string[],
): Promise<{ host: string; rep: number | string; body?: string }[]> {
  const bed = tb as Testbed;
  const targets = hosts.map((host) => ({ host, port: 8999 }));
  const { stdout } = await bed.exec(bed.clientNs, process.execPath, [
    hostile,
    'node-ask',
    JSON.stringify({ token, targets }),
  ]);
  return (JSON.parse(stdout) as { results: { host: string; rep: number | string; body?: string }[] }).results;
}

async function startNode(extra: string[]): Promise<{ node: RunningDaemon; token: string }> {
  const bed = tb as Testbed;
  const m = bed.machines[1]!;
  const flags = [
    '--listen',
    `${m.lanAddress}:7300`,
    '--state-dir',
    `/tmp/${bed.prefix}node1`,
    '--name',
    'n1',
    '--link',
    'up1',
    ...extra,
  ];
  const init = await bed.exec(m.ns, process.execPath, [cliPath(), 'node', '--init', ...flags]);
  const node = await startDaemon(
    bed,
    cliPath(),
    `listen: { control: "127.0.0.1:9190" }\n${health(bed.serverAddress)}\n`,
    {
      ns: m.ns,
      args: ['node', ...flags],
    },
  );
  return { node, token: init.stdout.trim() };
}

test(
  'a node refuses every address of its own host, 0.0.0.0 and 127.0.0.1 (0x02); --allow opens just one',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const m = bed.machines[1]!;
    const { stdout } = await bed.exec(m.ns, 'ip', ['-j', 'addr', 'show']);
    const own = (JSON.parse(stdout) as { addr_info: { local: string; scope: string }[] }[])
      .flatMap((i) => i.addr_info)
      .filter((a) => a.scope !== 'link')
      .map((a) => a.local);
    assert.ok(own.includes(m.lanAddress) && own.length >= 4, `node host addresses: ${own.join(', ')}`);
    const hosts = [...own, '0.0.0.0', '127.0.0.1', '::', `::ffff:${m.lanAddress}`];
    const uplink = own.find((a) => a !== m.lanAddress && a.startsWith('198.18.'))!;
    let { node, token } = await startNode([]);
    try {
      const results = await ask(token, hosts);
      console.log(`node host ${m.ns}: ${results.map((r) => `${r.host} → ${r.rep}`).join(', ')}`);
      for (const r of results) assert.equal(r.rep, 2, `${r.host}: ${JSON.stringify(r)}\n${node.log()}`);
      assert.equal(hits, 0, 'nothing was relayed to the node host');
      // The refusals are not a link fault: the node's link stays online.
      const s = await node.status();
      assert.ok(
        s.links.every((l) => l.state === 'online'),
        JSON.stringify(s.links),
      );
    } finally {
      await node.stop();
    }
    ({ node, token } = await startNode(['--allow', `${uplink}/32`]));
    try {
      const results = await ask(token, hosts);
      for (const r of results) {
        if (r.host === uplink) assert.deepEqual([r.rep, r.body], [0, 'secret'], JSON.stringify(r));
        else assert.equal(r.rep, 2, `${r.host} must stay refused: ${JSON.stringify(r)}`);
      }
      assert.equal(hits, 1, 'exactly the allowed address was relayed to');
    } finally {
      await node.stop();
      await rm(`/tmp/${bed.prefix}node1`, { recursive: true, force: true });
    }
  },
);

test(
  'a LAN client cannot reach the proxy host loopback; a 3×1024 idle flood under nofile=1024 leaves it serving',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const lan0 = bed.machines[0]!.lanAddress;
    const lanHost = bed.lanHosts[0]!;
    const d = await startDaemon(
      bed,
      cliPath(),
      `listen: { socks: "${lan0}:1080", http: "${lan0}:8080", control: "127.0.0.1:9190" }
auth: { username: u, password: pw-42 }
links: [up0]
${health(bed.serverAddress)}
log: debug
`,
      { wrap: ['prlimit', '--nofile=1024'] },
    );
    const pid = d.child.pid!;
    const fds = () => readdirSync(`/proc/${pid}/fd`).length;
    try {
      // The control API on the proxy host's loopback, from the LAN: refused both ways.
      const viaSocks = await bed
        .exec(lanHost.ns, 'curl', [
          '-sS',
          '--max-time',
          '5',
          '--socks5-hostname',
          `${lan0}:1080`,
          '--proxy-user',
          'u:pw-42',
          'http://127.0.0.1:9190/status',
        ])
        .catch((e: { code?: number; stdout?: string }) => e);
      assert.ok(
        !String((viaSocks as { stdout?: string }).stdout ?? '').includes('version'),
        'status leaked through SOCKS5',
      );
      const viaHttp = await bed
        .exec(lanHost.ns, 'curl', [
          '-sS',
          '--max-time',
          '5',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '-x',
          `http://u:pw-42@${lan0}:8080`,
          'http://127.0.0.1:9190/status',
        ])
        .catch((e: { stdout?: string }) => e);
      assert.equal(String((viaHttp as { stdout?: string }).stdout), '403');
      const viaName = await bed
        .exec(lanHost.ns, 'curl', [
          '-sS',
          '--max-time',
          '5',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '-x',
          `http://u:pw-42@${lan0}:8080`,
          'http://localhost:9190/status',
        ])
        .catch((e: { stdout?: string }) => e);
      assert.equal(String((viaName as { stdout?: string }).stdout), '403');
      // …while the internet is reachable through the same proxy.
      const fine = await bed.exec(lanHost.ns, 'curl', [
        '-sS',
        '--max-time',
        '10',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--socks5-hostname',
        `${lan0}:1080`,
        '--proxy-user',
        'u:pw-42',
        bed.url('f256k.bin'),
      ]);
      assert.equal(fine.stdout, '200');

      await new Promise((r) => setTimeout(r, 1_000));
      const baseline = fds();
      const flood = bed.spawn(lanHost.ns, process.execPath, [
        hostile,
        'flood',
        JSON.stringify({ host: lan0, port: 1080, count: 3072, holdMs: 20_000 }),
      ]);
      let floodOut = '';
      flood.stdout?.on('data', (b: Buffer) => (floodOut += b));
      const started = Date.now();
      const states = new Set<string>();
      let served = 0;
      let statusOk = 0;
      let peakFds = 0;
      await new Promise((r) => setTimeout(r, 3_000));
      while (Date.now() - started < 16_000) {
        peakFds = Math.max(peakFds, fds());
        const legit = await bed.exec(bed.clientNs, 'curl', [
          '-sS',
          '--max-time',
          '5',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '--socks5-hostname',
          `${lan0}:1080`,
          '--proxy-user',
          'u:pw-42',
          bed.url('f256k.bin'),
        ]);
        if (legit.stdout === '200') served++;
        const st = await bed.exec(bed.clientNs, process.execPath, [
          cliPath(),
          'status',
          '--control',
          '127.0.0.1:9190',
          '--json',
        ]);
        const s = JSON.parse(st.stdout) as DaemonStatus;
        statusOk++;
        for (const l of s.links) states.add(l.state);
      }
      await once(flood, 'exit');
      const floodResult = JSON.parse(floodOut) as Record<string, number>;
      const s = await d.status();
      const p = s.protection!;
      await waitFor(
        'descriptors back to the baseline',
        15_000,
        async () => fds(),
        (n) => n <= baseline + 8,
      );
      const after = fds();
      console.log(
        `fd flood: limit ${p.fdLimit}, caps ${p.maxConnections}/${p.maxConnectionsPerClient} per client, flood ${JSON.stringify(floodResult)}; ` +
          `fds baseline ${baseline}, peak ${peakFds}, after ${after}; shed ${JSON.stringify(p.shed)}; legit served ${served}, status ${statusOk}; link states ${[...states].join(',')}`,
      );
      assert.equal(p.fdLimit, 1024);
      assert.ok(floodResult.opened! >= 3000, 'the flood opened its connections');
      assert.ok(p.shed.perClient > 0 || p.shed.global > 0, 'the caps shed the flood');
      assert.ok(served >= 3 && statusOk === served, `legit ${served}, status ${statusOk}`);
      assert.deepEqual([...states], ['online']);
      assert.ok(peakFds < 1024, `peak ${peakFds} fds`);
      assert.ok(!/cannot bind to the link/.test(d.log()), 'EMFILE was blamed on a link');
    } finally {
      await d.stop();
    }
  },
);
