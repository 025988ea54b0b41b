/**
 * `linkmux get` on a real topology: a client with three 8 Mbit/s uplinks (each
 * through its own ISP namespace with NAT) and ONE server address. Checks what a
 * user sees: the file arrives intact, every uplink really carries its share
 * (kernel byte counters), and a blackholed uplink does not stop the download.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createTestbed, removeLeftovers, type Testbed } from '../../src/testbed/testbed.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';

const MiB = 1024 * 1024;
let tb: Testbed | undefined;

before(async () => {
  if (!netnsReady()) return;
  await removeLeftovers();
  tb = await createTestbed({
    links: 3,
    rateMbit: 8,
    https: true,
    files: [
      { name: 'f8.bin', size: 8 * MiB },
      { name: 'f12.bin', size: 12 * MiB },
    ],
  });
});

after(async () => {
  await tb?.destroy();
});

/** Runs `linkmux get` in the client namespace; resolves with its exit code and output. */
async function get(args: string[], onStart?: (child: ReturnType<Testbed['spawn']>) => void) {
  const bed = tb as Testbed;
  const child = bed.spawn(bed.clientNs, process.execPath, [cliPath(), 'get', '--json', ...args]);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d));
  child.stderr?.on('data', (d: Buffer) => (stderr += d));
  onStart?.(child);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

async function sha256InClient(path: string): Promise<string> {
  const bed = tb as Testbed;
  const { stdout } = await bed.exec(bed.clientNs, 'sha256sum', [path]);
  return stdout.split(/\s+/)[0] ?? '';
}

test(
  '3 × 8 Mbit/s, one server address: intact, and every uplink carries at least 25 %',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    for (const scheme of ['http', 'https'] as const) {
      const before = await bed.counters();
      const out = `/tmp/${bed.prefix}get-${scheme}.bin`;
      const tls = scheme === 'https' ? ['--ca', bed.caFile as string] : [];
      const r = await get(['--overwrite', '-o', out, ...tls, bed.url('f8.bin', scheme)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256InClient(out), bed.files['f8.bin']?.sha256);
      const after = await bed.counters();
      for (const u of bed.uplinks) {
        const rx = (after[u.dev]?.rx ?? 0) - (before[u.dev]?.rx ?? 0);
        assert.ok(
          rx >= 0.25 * 8 * MiB,
          `${scheme}: ${u.dev} received ${rx} bytes, less than 25 % of the file`,
        );
      }
      await bed.exec(bed.clientNs, 'rm', ['-f', out]);
    }
  },
);

test(
  'an uplink blackholed mid-download: its ranges move and the file is intact',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const out = `/tmp/${bed.prefix}get-bh.bin`;
    let blackholed = false;
    const before = await bed.counters();
    let during: Awaited<ReturnType<Testbed['counters']>> | undefined;
    const started = performance.now();
    try {
      const r = await get(['--overwrite', '--stall-timeout', '5', '-o', out, bed.url('f12.bin')], (child) => {
        // Blackhole up1 once the download is under way.
        let seen = 0;
        child.stdout?.on('data', (d: Buffer) => {
          seen += d
            .toString()
            .split('\n')
            .filter((l) => l.includes('"progress"')).length;
          if (seen >= 1 && !blackholed) {
            blackholed = true;
            void bed.blackhole(1).then(async () => (during = await bed.counters()));
          }
        });
      });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(blackholed, 'the blackhole was applied during the download');
      // Two links need about 7 s for 12 MiB. A slot left hanging in a connect on the dead link
      // (10 s connect timeout) used to hold the end of the job back to about 16 s.
      const seconds = (performance.now() - started) / 1000;
      assert.ok(seconds < 12, `took ${seconds.toFixed(1)} s: the dead link held the job up`);
      assert.equal(await sha256InClient(out), bed.files['f12.bin']?.sha256);
      const after = await bed.counters();
      const up1 = bed.uplinks[1]?.dev as string;
      const delivered = (after[up1]?.rx ?? 0) - (during?.[up1]?.rx ?? 0);
      assert.ok(delivered < 256 * 1024, `the blackholed link still delivered ${delivered} bytes`);
      for (const u of [bed.uplinks[0], bed.uplinks[2]]) {
        const rx = (after[u?.dev as string]?.rx ?? 0) - (before[u?.dev as string]?.rx ?? 0);
        assert.ok(rx > 3 * MiB, `${u?.dev} carried only ${rx} bytes`);
      }
    } finally {
      await bed.unblackhole(1);
      await bed.exec(bed.clientNs, 'rm', ['-f', out, `${out}.part`, `${out}.linkmux`]);
    }
  },
);

test(
  'bad input in the namespace: an unknown link and a link without address',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const unknown = await get(['--link', 'nosuch0', bed.url('f8.bin')]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /LINKMUX_ERR_LINK_UNKNOWN/);
    assert.match(unknown.stderr, /up0/, 'the message lists the interfaces there are');
    // (no dummy module on these kernels: an address-less veth pair does the job)
    await bed.exec(bed.clientNs, 'ip', ['link', 'add', 'noaddr0', 'type', 'veth', 'peer', 'name', 'noaddr1']);
    await bed.exec(bed.clientNs, 'ip', ['link', 'set', 'noaddr0', 'up']);
    await bed.exec(bed.clientNs, 'ip', ['link', 'set', 'noaddr1', 'up']);
    const noAddr = await get(['--link', 'noaddr0', bed.url('f8.bin')]);
    assert.equal(noAddr.code, 1);
    assert.match(noAddr.stderr, /LINKMUX_ERR_LINK_NO_ADDRESS/);
  },
);
