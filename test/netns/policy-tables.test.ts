/**
 * Uplinks whose default route lives only in a policy table (testbed option
 * `policyTables`: no main-table default route; per uplink `ip rule from ADDR
 * lookup TABLE` and `default via GW dev upN table TABLE`):
 * - `linkmux links --json` counts every uplink, saying which table and rule;
 * - SOCKS5 UDP ASSOCIATE through `linkmux up` pinned to each uplink in turn gets
 *   every datagram echoed, and that uplink's byte counters carried them (without
 *   the source-address bind of the link's UDP socket, the kernel finds no route
 *   for an unbound source and ARPs for the server on the uplink: no echo).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createTestbed, removeLeftovers, type Testbed } from '../../src/testbed/testbed.js';
import { policyTableOf } from '../../src/testbed/policy-tables.js';
import type { LinkRow } from '../../src/cli/links-command.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';
import { startDaemon, waitFor } from '../helpers/daemon.js';

const COUNT = 40;
const SIZE = 1000;
let tb: Testbed | undefined;

before(async () => {
  if (!netnsReady()) return;
  await removeLeftovers();
  tb = await createTestbed({ links: 3, policyTables: true, files: [] });
});

after(async () => {
  await tb?.destroy();
});

test(
  'the client has no main-table default route; linkmux links counts every uplink',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const main = await bed.exec(bed.clientNs, 'ip', ['-j', 'route', 'show', 'default']);
    assert.deepEqual(JSON.parse(main.stdout || '[]'), [], 'the testbed variant has no main default route');
    const { stdout } = await bed.exec(bed.clientNs, process.execPath, [cliPath(), 'links', '--json']);
    const rows = JSON.parse(stdout) as LinkRow[];
    for (const u of bed.uplinks) {
      const row = rows.find((r) => r.name === u.dev);
      const table = policyTableOf(u.index);
      assert.deepEqual(
        row && { usable: row.usable, gateway: row.gateway, table: row.table, route: row.route },
        {
          usable: true,
          gateway: u.gateway,
          table,
          route: `default route in table ${table} (rule from ${u.address})`,
        },
        `${u.dev}: ${JSON.stringify(row)}`,
      );
    }
  },
);

test(
  'SOCKS5 UDP ASSOCIATE through each uplink gets its echoes, carried by that uplink',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const client = fileURLToPath(new URL('../helpers/socks5-udp-echo-main.js', import.meta.url));
    for (const u of bed.uplinks) {
      const daemon = await startDaemon(
        bed,
        cliPath(),
        `
links: ["${u.dev}"]
listen: { socks: "127.0.0.1:1080", http: "127.0.0.1:8080", control: "127.0.0.1:9190" }
health:
  interval: 1
  timeout: 0.5
  failThreshold: 3
  riseThreshold: 1
  targets: ["tcp://${bed.serverAddress}:80"]
`,
      );
      try {
        const state = async () => (await daemon.status()).links.find((l) => l.id === u.dev)?.state;
        await waitFor(`${u.dev} online`, 5_000, state, (s) => s === 'online');
        const before = await bed.counters();
        const { stdout } = await bed.exec(bed.clientNs, process.execPath, [
          client,
          daemon.socks,
          `${bed.serverAddress}:${bed.udpEchoPort}`,
          String(COUNT),
          String(SIZE),
        ]);
        const after = await bed.counters();
        assert.deepEqual(
          JSON.parse(stdout),
          { sent: COUNT, echoed: COUNT },
          `${u.dev}: every datagram echoed`,
        );
        for (const other of bed.uplinks) {
          const tx = (after[other.dev]?.tx ?? 0) - (before[other.dev]?.tx ?? 0);
          const rx = (after[other.dev]?.rx ?? 0) - (before[other.dev]?.rx ?? 0);
          if (other.dev === u.dev) {
            assert.ok(
              tx >= COUNT * SIZE && rx >= COUNT * SIZE,
              `${u.dev} carried only tx ${tx} / rx ${rx} bytes`,
            );
          } else {
            // Only the daemon's health probes and ARP may move; never the datagrams.
            assert.ok(tx < (COUNT * SIZE) / 4, `${other.dev} sent ${tx} bytes while ${u.dev} was pinned`);
          }
        }
      } finally {
        await daemon.stop();
      }
    }
  },
);
