/**
 * A download added over the aria2 JSON-RPC of `linkmux up --rpc` on the
 * 3 × 8 Mbit/s testbed: it lands intact where dir/out said, every uplink
 * carries a share, and /jsonrpc on the control address drives the same queue.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestbed, removeLeftovers, type Testbed } from '../../src/testbed/testbed.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';
import { rpcIn, waitComplete } from '../helpers/rpc-call.js';

const MiB = 1024 * 1024;
const TOKEN = 'token:netns-secret';
let tb: Testbed | undefined;
let daemon: RunningDaemon | undefined;

before(async () => {
  if (!netnsReady()) return;
  await removeLeftovers();
  tb = await createTestbed({ links: 3, rateMbit: 8, files: [{ name: 'f6.bin', size: 6 * MiB }] });
  daemon = await startDaemon(
    tb,
    cliPath(),
    `
listen: { socks: false, http: false, control: "127.0.0.1:9190" }
health:
  targets: ["tcp://${tb.serverAddress}:80"]
rpc:
  enabled: true
  listen: 127.0.0.1:6800
  secret: netns-secret
  stateDir: /tmp/${tb.prefix}rpc-state
  dir: /tmp/${tb.prefix}rpc-dl
`,
  );
});

after(async () => {
  try {
    await daemon?.stop();
  } finally {
    if (tb)
      await tb.exec(tb.clientNs, 'rm', ['-rf', `/tmp/${tb.prefix}rpc-state`, `/tmp/${tb.prefix}rpc-dl`]);
    await tb?.destroy();
  }
});

test(
  'addUri over every uplink: intact at dir/out, each uplink carries ≥ 20 %',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const dir = `/tmp/${bed.prefix}rpc-dl/sub`;
    const before = await bed.counters();
    const add = await rpcIn(bed, bed.clientNs, '127.0.0.1:6800', 'aria2.addUri', [
      TOKEN,
      [bed.url('f6.bin')],
      { dir, out: 'renamed.bin' },
    ]);
    assert.match(String(add.result), /^[0-9a-f]{16}$/, JSON.stringify(add));
    const st = await waitComplete(bed, bed.clientNs, '127.0.0.1:6800', TOKEN, String(add.result), 60_000);
    assert.equal(st.totalLength, String(6 * MiB));
    const { stdout } = await bed.exec(bed.clientNs, 'sha256sum', [`${dir}/renamed.bin`]);
    assert.equal(stdout.split(/\s+/)[0], bed.files['f6.bin']?.sha256);
    const after = await bed.counters();
    for (const u of bed.uplinks) {
      const rx = (after[u.dev]?.rx ?? 0) - (before[u.dev]?.rx ?? 0);
      assert.ok(rx >= 0.2 * 6 * MiB, `${u.dev} received ${rx} bytes, less than 20 % of the file`);
    }
    // The control address serves the same queue (the dashboard's origin).
    const stopped = await rpcIn(bed, bed.clientNs, '127.0.0.1:9190', 'aria2.tellStopped', [
      TOKEN,
      0,
      10,
      ['gid'],
    ]);
    assert.deepEqual(stopped.result, [{ gid: add.result }]);
    const denied = await rpcIn(bed, bed.clientNs, '127.0.0.1:9190', 'aria2.tellStopped', [
      'token:wrong',
      0,
      10,
    ]);
    assert.deepEqual(denied.error, { code: 1, message: 'Unauthorized' });
  },
);
