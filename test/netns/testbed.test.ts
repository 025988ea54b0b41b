// The netns testbed itself, as root: 3 shaped uplinks, routing by metric, failures, ECMP, clean teardown;
// then a LAN of three machines with an uplink each and a LAN host behind the client as gateway.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createTestbed, removeLeftovers, type Testbed, type Uplink } from '../../src/testbed/testbed.js';
import { ExecRunner } from '../../src/util/runner.js';
import { netnsReady } from '../helpers/netns.js';

const isRoot = netnsReady(); // says loudly why not

const MiB = 1024 * 1024;
const BIG = '3m.bin';
const SMALL = '256k.bin';
const run = promisify(execFile);

/** curl in namespace `ns`; resolves with its exit code instead of throwing. */
async function curlIn(tb: Testbed, ns: string, args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const r = await tb.exec(ns, 'curl', ['-sS', '--max-time', '10', ...args]);
    return { code: 0, stdout: r.stdout };
  } catch (err) {
    const code = (err as { cause?: { code?: unknown } }).cause?.code;
    return { code: typeof code === 'number' ? code : -1, stdout: '' };
  }
}

async function namespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

describe('netns testbed', { skip: !isRoot, timeout: 90_000 }, () => {
  let tb: Testbed | undefined;
  let out: string;
  let buildMs = 0;

  /** curl in the client ns; resolves with its exit code instead of throwing. */
  function curl(args: string[]): Promise<{ code: number; stdout: string }> {
    assert.ok(tb);
    return curlIn(tb, tb.clientNs, args);
  }

  async function rxDelta(fn: () => Promise<unknown>): Promise<Record<string, number>> {
    assert.ok(tb);
    const a = await tb.counters();
    await fn();
    const b = await tb.counters();
    return Object.fromEntries(Object.keys(b).map((dev) => [dev, (b[dev]?.rx ?? 0) - (a[dev]?.rx ?? 0)]));
  }

  before(async () => {
    out = await mkdtemp(path.join(tmpdir(), 'lmx-tb-test-'));
    const t = performance.now();
    tb = await createTestbed({
      links: 3,
      https: true,
      files: [
        { name: BIG, size: 3 * MiB },
        { name: SMALL, size: 256 * 1024 },
      ],
    });
    buildMs = performance.now() - t;
  });

  after(async () => {
    await tb?.destroy();
    await rm(out, { recursive: true, force: true });
  });

  it('builds the described topology', () => {
    assert.ok(tb);
    console.log(`testbed built in ${Math.round(buildMs)} ms`);
    assert.match(tb.prefix, new RegExp(`^lmx-${process.pid}-[0-9a-f]{4}-$`));
    assert.deepEqual(
      tb.uplinks.map((u) => [u.dev, u.address, u.gateway, u.rateMbit]),
      [
        ['up0', '198.18.1.2', '198.18.1.1', 8],
        ['up1', '198.18.2.2', '198.18.2.1', 8],
        ['up2', '198.18.3.2', '198.18.3.1', 8],
      ],
    );
    assert.equal(tb.url(BIG), 'http://198.19.0.10/files/3m.bin');
    assert.ok(tb.caFile && existsSync(tb.caFile));
  });

  it('curl --interface up1 fetches a file intact at about the shaped rate, through up1 only', async () => {
    assert.ok(tb);
    const file = path.join(out, 'up1.bin');
    let res = { code: -1, stdout: '' };
    const delta = await rxDelta(async () => {
      res = await curl([
        '--interface',
        'up1',
        '-o',
        file,
        '-w',
        '%{speed_download} %{local_ip}',
        tb!.url(BIG),
      ]);
    });
    assert.equal(res.code, 0);
    const [speed, localIp] = res.stdout.split(' ');
    assert.equal(localIp, '198.18.2.2');
    const sha = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
    assert.equal(sha, tb.files[BIG]?.sha256);
    const mbit = (Number(speed) * 8) / 1e6;
    console.log(`single uplink through TBF 8 Mbit/s: ${mbit.toFixed(2)} Mbit/s`);
    assert.ok(mbit > 0.5 * 8 && mbit < 1.2 * 8, `rate ${mbit} Mbit/s`);
    assert.ok((delta.up1 ?? 0) >= 3 * MiB, `up1 rx grew by ${delta.up1}`);
    assert.ok((delta.up0 ?? 0) < 64 * 1024, `up0 rx grew by ${delta.up0}`);
    assert.ok((delta.up2 ?? 0) < 64 * 1024, `up2 rx grew by ${delta.up2}`);
  });

  it('plain curl leaves through up0, the lowest metric', async () => {
    assert.ok(tb);
    let res = { code: -1, stdout: '' };
    const delta = await rxDelta(async () => {
      res = await curl(['-o', '/dev/null', '-w', '%{local_ip}', tb!.url(SMALL)]);
    });
    assert.deepEqual(res, { code: 0, stdout: '198.18.1.2' });
    assert.ok((delta.up0 ?? 0) >= 256 * 1024);
    assert.ok((delta.up1 ?? 0) < 64 * 1024 && (delta.up2 ?? 0) < 64 * 1024);
  });

  it('binding only the source address does not choose the uplink (the ISP drops spoofed sources)', async () => {
    assert.ok(tb);
    const r = await curl(['--max-time', '2', '--interface', '198.18.2.2', '-o', '/dev/null', tb.url(SMALL)]);
    assert.notEqual(r.code, 0);
  });

  it('serves https with the testbed CA', async () => {
    assert.ok(tb?.caFile);
    const file = path.join(out, 'tls.bin');
    const r = await curl(['--cacert', tb.caFile, '-o', file, tb.url(SMALL, 'https')]);
    assert.equal(r.code, 0);
    const sha = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
    assert.equal(sha, tb.files[SMALL]?.sha256);
  });

  it('blackhole(i) silences uplink i only; unblackhole restores it', async () => {
    assert.ok(tb);
    const via = (dev: string, max = '2') =>
      curl(['--max-time', max, '--interface', dev, '-o', '/dev/null', tb!.url(SMALL)]);
    await tb.blackhole(2);
    try {
      const [dead, alive] = await Promise.all([via('up2'), via('up0', '5')]);
      assert.equal(dead.code, 28, 'curl via the blackholed uplink times out');
      assert.equal(alive.code, 0);
      const links = await tb.exec(tb.clientNs, 'ip', ['-br', 'link', 'show', 'up2']);
      assert.match(links.stdout, /\bUP\b/, 'the link itself stays up');
    } finally {
      await tb.unblackhole(2);
    }
    assert.equal((await via('up2', '5')).code, 0);
  });

  it('linkDown/linkUp take an uplink away and bring it back with its route', async () => {
    assert.ok(tb);
    const via = (dev: string) =>
      curl(['--max-time', '2', '--interface', dev, '-o', '/dev/null', tb!.url(SMALL)]);
    await tb.linkDown(1);
    assert.notEqual((await via('up1')).code, 0);
    assert.equal((await via('up0')).code, 0);
    await tb.linkUp(1);
    assert.equal((await via('up1')).code, 0);
    const routes = await tb.exec(tb.clientNs, 'ip', ['route', 'show', 'default']);
    assert.match(routes.stdout, /default via 198\.18\.2\.1 dev up1 metric 101/);

    // Carrier loss on the default uplink: routes stay, unbound traffic has nowhere to go.
    await tb.linkDown(0, 'carrier');
    assert.notEqual((await curl(['--max-time', '2', '-o', '/dev/null', tb.url(SMALL)])).code, 0);
    await tb.linkUp(0);
    assert.equal((await curl(['-o', '/dev/null', tb.url(SMALL)])).code, 0);
  });

  it('ECMP mode spreads parallel connections over several uplinks, and turns off again', async () => {
    assert.ok(tb);
    await tb.setEcmp(true);
    try {
      const routes = await tb.exec(tb.clientNs, 'ip', ['route', 'show', 'default']);
      assert.equal(routes.stdout.match(/nexthop via/g)?.length, 3);
      const delta = await rxDelta(() =>
        Promise.all(Array.from({ length: 9 }, () => curl(['-o', '/dev/null', tb!.url(SMALL)]))),
      );
      const used = Object.values(delta).filter((rx) => rx >= 200 * 1024).length;
      console.log(`ECMP: 9 connections, rx per uplink ${JSON.stringify(delta)}`);
      assert.ok(used > 1, `only ${used} uplink carried traffic`);
    } finally {
      await tb.setEcmp(false);
    }
    const r = await curl(['-o', '/dev/null', '-w', '%{local_ip}', tb.url(SMALL)]);
    assert.equal(r.stdout, '198.18.1.2');
  });

  it('destroy() removes every namespace of the run, and may be called twice', async () => {
    assert.ok(tb);
    const t = performance.now();
    await tb.destroy();
    console.log(`testbed destroyed in ${Math.round(performance.now() - t)} ms`);
    await tb.destroy();
    const left = (await namespaces()).filter((n) => n.startsWith(tb!.prefix));
    assert.deepEqual(left, []);
    assert.equal(
      existsSync(path.dirname(tb.files[BIG]?.path ?? '/nonexistent/x')),
      false,
      'temp files removed',
    );
  });

  it('removeLeftovers() deletes namespaces of dead runs only', async () => {
    // A pid that surely ended: a child we waited for.
    const child = spawn('true');
    const deadPid = await new Promise<number>((resolve) => child.once('exit', () => resolve(child.pid ?? 0)));
    const dead = `lmx-${deadPid}-beef-c`;
    const alive = `lmx-${process.pid}-beef-c`;
    const runner = new ExecRunner();
    try {
      await runner.run('ip', ['netns', 'add', dead]);
      await runner.run('ip', ['netns', 'add', alive]);
      const removed = await removeLeftovers(runner);
      assert.ok(removed.includes(dead));
      assert.ok(!removed.includes(alive));
      const names = await namespaces();
      assert.ok(!names.includes(dead) && names.includes(alive));
    } finally {
      for (const n of [dead, alive]) await runner.run('ip', ['netns', 'del', n]).catch(() => {});
    }
  });
});

describe(
  'netns testbed LAN: node machines with their own uplinks, a LAN host behind the gateway',
  {
    skip: !isRoot,
    timeout: 60_000,
  },
  () => {
    let tb: Testbed | undefined;

    /**
     * A TCP "ping" (ping is not installed everywhere): a connect to a closed port is
     * answered by a RST from the address itself (ECONNREFUSED); silence or no route is not.
     */
    async function reach(ns: string, address: string): Promise<string> {
      assert.ok(tb);
      const script = `
      const s = require('node:net').connect({ host: process.argv[1], port: 9 });
      const done = (what) => { console.log(what); process.exit(0); };
      s.setTimeout(1500, () => done('timeout'));
      s.on('connect', () => done('open'));
      s.on('error', (e) => done(e.code));`;
      return (await tb.exec(ns, process.execPath, ['-e', script, address])).stdout.trim();
    }

    /** Packets ISP `i` dropped for a source address not its client's (BCP 38). */
    async function spoofDrops(i: number): Promise<number> {
      assert.ok(tb);
      const { stdout } = await tb.exec(tb.uplinks[i]?.ispNs ?? '', 'nft', [
        'list',
        'chain',
        'ip',
        'linkmux_isp',
        'isp_forward',
      ]);
      return Number(/counter packets (\d+)/.exec(stdout)?.[1] ?? NaN);
    }

    before(async () => {
      const t = performance.now();
      tb = await createTestbed({
        machines: [0, 1, 2],
        lanHosts: 1,
        files: [{ name: SMALL, size: 256 * 1024 }],
      });
      console.log(`LAN testbed built in ${Math.round(performance.now() - t)} ms`);
    });

    after(async () => {
      await tb?.destroy();
    });

    it('describes its machines, LAN host and uplink owners', () => {
      assert.ok(tb);
      const p = tb.prefix;
      assert.deepEqual(tb.machines, [
        { ns: `${p}c`, lanAddress: '198.18.100.1', uplinks: [0] },
        { ns: `${p}n1`, lanAddress: '198.18.100.2', uplinks: [1] },
        { ns: `${p}n2`, lanAddress: '198.18.100.3', uplinks: [2] },
      ]);
      assert.deepEqual(tb.lanHosts, [{ ns: `${p}h1`, lanAddress: '198.18.100.101' }]);
      assert.equal(tb.lanNs, `${p}l`);
      assert.deepEqual(
        tb.uplinks.map((u) => [u.dev, u.hostNs, u.address]),
        [
          ['up0', `${p}c`, '198.18.1.2'],
          ['up1', `${p}n1`, '198.18.2.2'],
          ['up2', `${p}n2`, '198.18.3.2'],
        ],
      );
    });

    it('refuses to run anything outside its own namespaces', async () => {
      assert.ok(tb);
      await assert.rejects(tb.exec('lmx-elsewhere', 'true', []), /not a namespace of testbed/);
      await assert.rejects(tb.counters('lmx-elsewhere'), /not a namespace of testbed/);
    });

    it('every machine reaches every other one over the LAN', async () => {
      assert.ok(tb);
      const machines = tb.machines;
      const pairs = machines.flatMap((a) => machines.filter((b) => b !== a).map((b) => [a, b] as const));
      const results = await Promise.all(pairs.map(([a, b]) => reach(a.ns, b.lanAddress)));
      pairs.forEach(([a, b], k) => assert.equal(results[k], 'ECONNREFUSED', `${a.ns} -> ${b.lanAddress}`));
    });

    it('every machine fetches from the server through its own uplink', async () => {
      assert.ok(tb);
      for (const m of tb.machines) {
        const own: Uplink | undefined = tb.uplinks.find((u) => u.hostNs === m.ns);
        assert.ok(own);
        const a = await tb.uplinkCounters();
        const r = await curlIn(tb, m.ns, ['-o', '/dev/null', '-w', '%{local_ip}', tb.url(SMALL)]);
        const b = await tb.uplinkCounters();
        assert.deepEqual(r, { code: 0, stdout: own.address }, m.ns);
        for (const u of tb.uplinks) {
          const rx = (b[u.dev]?.rx ?? 0) - (a[u.dev]?.rx ?? 0);
          if (u === own) assert.ok(rx >= 256 * 1024, `${m.ns}: ${u.dev} rx grew by ${rx}`);
          else assert.ok(rx < 64 * 1024, `${m.ns}: ${u.dev} of ${u.hostNs} rx grew by ${rx}`);
        }
        const mine = await tb.counters(m.ns);
        assert.deepEqual(Object.keys(mine).sort(), [own.dev, 'lan0'].sort());
      }
    });

    it('the LAN host reaches the client’s LAN address', async () => {
      assert.ok(tb?.lanHosts[0] && tb.machines[0]);
      assert.equal(await reach(tb.lanHosts[0].ns, tb.machines[0].lanAddress), 'ECONNREFUSED');
    });

    it('the LAN host reaches the server through the gateway only with gatewayMasquerade on (BCP 38)', async () => {
      assert.ok(tb?.lanHosts[0]);
      const host = tb.lanHosts[0].ns;
      const fetch = (maxTime: string) =>
        curlIn(tb!, host, [
          '--max-time',
          maxTime,
          '-o',
          '/dev/null',
          '-w',
          '%{size_download}',
          tb!.url(SMALL),
        ]);

      const drops = await spoofDrops(0);
      assert.notEqual((await fetch('2')).code, 0, 'un-NATed LAN source');
      assert.ok((await spoofDrops(0)) > drops, 'ISP 0 dropped the LAN source');

      await tb.gatewayMasquerade(true);
      await tb.gatewayMasquerade(true); // idempotent
      try {
        const a = await tb.counters();
        const r = await fetch('10');
        const b = await tb.counters();
        assert.deepEqual(r, { code: 0, stdout: String(256 * 1024) });
        const rx = (b.up0?.rx ?? 0) - (a.up0?.rx ?? 0);
        const lanTx = (b.lan0?.tx ?? 0) - (a.lan0?.tx ?? 0);
        assert.ok(rx >= 256 * 1024 && lanTx >= 256 * 1024, `up0 rx +${rx}, lan0 tx +${lanTx}`);
      } finally {
        await tb.gatewayMasquerade(false);
      }
      assert.notEqual((await fetch('2')).code, 0, 'masquerade removed');
    });

    it('destroy() leaves no namespace of the run', async () => {
      assert.ok(tb);
      await tb.destroy();
      const left = (await namespaces()).filter((n) => n.startsWith(tb!.prefix));
      assert.deepEqual(left, []);
    });
  },
);
