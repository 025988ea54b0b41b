/**
 * The testbed facts the DNS and health tests stand on, checked as root:
 * - the client's default routes: one per uplink, metrics 100, 101, 102 (up0 main);
 * - 1.1.1.1 and 8.8.8.8 (the default health targets) time out silently through
 *   every uplink: curl's exit code is 28 (timeout), not 7 (unreachable/refused);
 * - the testbed DNS answers through every uplink (a query forced out of up<i>
 *   arrives from ISP i's address), over UDP and TCP;
 * - the system resolver in the client ns uses it through up0 only, and dies when
 *   up0 is blackholed: the "today" failure of issue 10, reproduced;
 * - destroy() removes the /etc/netns directories; removeLeftovers() removes those of
 *   dead runs only.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import {
  createTestbed,
  FILES_NAME,
  removeLeftovers,
  V6_ONLY_ADDRESS,
  V6_ONLY_NAME,
  type Testbed,
} from '../../src/testbed/testbed.js';
import { waitFor } from '../helpers/daemon.js';
import { netnsReady, skipReason } from '../helpers/netns.js';
import { runIn } from '../helpers/netns-run.js';

let tb: Testbed | undefined;
const viaDevice = fileURLToPath(new URL('../helpers/dns-via-device-main.js', import.meta.url));
const ispAddress = (i: number) => `198.19.0.${i + 1}`;

before(async () => {
  if (!netnsReady()) return;
  await removeLeftovers();
  tb = await createTestbed({ links: 3, dns: true, files: [{ name: 'k64.bin', size: 64 * 1024 }] });
});

after(async () => {
  const dirs = tb ? [tb.clientNs].map((ns) => `/etc/netns/${ns}`) : [];
  await tb?.destroy();
  for (const d of dirs) assert.equal(existsSync(d), false, `destroy() removed ${d}`);
});

test(
  'the client has one default route per uplink, metrics 100, 101, 102',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const { stdout } = await bed.exec(bed.clientNs, 'ip', ['-j', 'route', 'show', 'default']);
    const routes = (JSON.parse(stdout) as { dev: string; metric?: number }[])
      .map((r) => `${r.dev}:${r.metric}`)
      .sort();
    assert.deepEqual(routes, ['up0:100', 'up1:101', 'up2:102']);
  },
);

test('1.1.1.1 and 8.8.8.8 time out silently through every uplink', { skip: skipReason() }, async () => {
  const bed = tb as Testbed;
  const tries = bed.uplinks.flatMap((u) =>
    ['1.1.1.1', '8.8.8.8'].map(async (ip) => {
      const args = ['-sS', '--interface', u.dev, '--connect-timeout', '1.5', `http://${ip}:443/`];
      const r = await runIn(bed, bed.clientNs, 'curl', args, 6_000);
      return `${u.dev} ${ip}: exit ${r.code} after ${r.ms >= 1400 ? '≥1.4 s' : `${Math.round(r.ms)} ms`}`;
    }),
  );
  const seen = await Promise.all(tries);
  assert.deepEqual(
    seen,
    bed.uplinks.flatMap((u) => ['1.1.1.1', '8.8.8.8'].map((ip) => `${u.dev} ${ip}: exit 28 after ≥1.4 s`)),
  );
});

test('the testbed DNS answers through every uplink, over UDP', { skip: skipReason() }, async () => {
  const bed = tb as Testbed;
  bed.resetDnsQueries();
  for (const u of bed.uplinks) {
    const r = await runIn(
      bed,
      bed.clientNs,
      process.execPath,
      [viaDevice, u.dev, bed.serverAddress, FILES_NAME],
      5_000,
    );
    assert.equal(r.code, 0, `through ${u.dev}: ${r.stderr}`);
    assert.equal(r.stdout.trim(), bed.serverAddress);
  }
  await waitFor(
    'three queries logged',
    2_000,
    async () => bed.dnsQueries(),
    (q) => q.length >= 3,
  );
  assert.deepEqual(
    bed.dnsQueries().map((q) => `${q.proto} ${q.from} ${q.name} ${q.type} ${q.rcode}`),
    bed.uplinks.map((u) => `udp ${ispAddress(u.index)} ${FILES_NAME} A NOERROR`),
  );
});

test(
  'the system resolver in the client ns asks it through up0, also over TCP',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    bed.resetDnsQueries();
    const v4 = await bed.exec(bed.clientNs, 'getent', ['ahostsv4', FILES_NAME]);
    assert.match(v4.stdout, new RegExp(`^${bed.serverAddress.replace(/\./g, '\\.')}\\s`));
    const v6 = await bed.exec(bed.clientNs, 'getent', ['ahostsv6', V6_ONLY_NAME]);
    assert.match(v6.stdout, new RegExp(`^${V6_ONLY_ADDRESS}\\s`));
    // glibc's use-vc option forces TCP.
    const tcp = await runIn(
      bed,
      bed.clientNs,
      'sh',
      ['-c', `RES_OPTIONS=use-vc getent ahostsv4 ${FILES_NAME}`],
      5_000,
    );
    assert.equal(tcp.code, 0, tcp.stderr);
    await waitFor(
      'queries logged',
      2_000,
      async () => bed.dnsQueries(),
      (q) => q.some((r) => r.proto === 'tcp'),
    );
    const froms = new Set(bed.dnsQueries().map((q) => q.from));
    assert.deepEqual([...froms], [ispAddress(0)], 'every system-resolver query came through up0');
  },
);

test('with up0 blackholed, the system resolver fails (issue 10 today)', { skip: skipReason() }, async () => {
  const bed = tb as Testbed;
  await bed.blackhole(0);
  try {
    const r = await runIn(bed, bed.clientNs, 'getent', ['ahostsv4', FILES_NAME], 15_000);
    assert.notEqual(r.code, 0, 'getent failed');
    assert.equal(r.stdout, '');
    // The data path is fine: the same server by address through up1.
    const ok = await runIn(
      bed,
      bed.clientNs,
      'curl',
      ['-sS', '--fail', '--max-time', '5', '--interface', 'up1', '-o', '/dev/null', bed.url('k64.bin')],
      8_000,
    );
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await bed.unblackhole(0);
  }
});

test(
  'removeLeftovers() removes /etc/netns directories of dead runs only',
  { skip: skipReason() },
  async () => {
    const child = spawn('true');
    const deadPid = await new Promise<number>((resolve) => child.once('exit', () => resolve(child.pid ?? 0)));
    const dead = `/etc/netns/lmx-${deadPid}-beef-c`;
    const alive = `/etc/netns/lmx-${process.pid}-beef-c`;
    try {
      for (const d of [dead, alive]) await mkdir(d, { recursive: true });
      const removed = await removeLeftovers();
      assert.ok(removed.includes(dead), `removed ${removed.join(' ')}`);
      assert.equal(existsSync(dead), false);
      assert.equal(existsSync(alive), true);
      assert.equal(existsSync(`/etc/netns/${(tb as Testbed).clientNs}`), true, 'this live run kept its own');
    } finally {
      for (const d of [dead, alive]) await rm(d, { recursive: true, force: true });
    }
  },
);
