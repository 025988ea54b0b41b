/**
 * `up --server`'s MPTCP paths in `linkmux status` (a block under the links) and
 * in /metrics (per-uplink gauges), from a fixed status.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderStatus } from '../../src/cli/status-command.js';
import { createMetricsRegistry } from '../../src/control/metrics.js';
import type { DaemonStatus } from '../../src/control/status-types.js';
import { threeLinkStatus } from '../helpers/daemon-status.js';

function withPaths(): DaemonStatus {
  return {
    ...threeLinkStatus(),
    mptcp: {
      server: 'server',
      uplinks: [
        {
          dev: 'up0',
          address: '198.18.1.2',
          inService: true,
          endpoint: true,
          subflows: 1,
          bytesIn: 5 * 1024 ** 2,
          bytesOut: 2048,
        },
        {
          dev: 'up1',
          address: '198.18.2.2',
          inService: true,
          endpoint: true,
          subflows: 2,
          bytesIn: 3 * 1024 ** 2,
          bytesOut: 512,
        },
        {
          dev: 'up2',
          address: '198.18.3.2',
          inService: false,
          endpoint: false,
          subflows: 0,
          bytesIn: 0,
          bytesOut: 0,
        },
      ],
    },
  };
}

test('renderStatus: the MPTCP paths under the links, one aligned row per uplink', () => {
  const text = renderStatus(withPaths());
  const tail = text.split('\n').slice(-6).join('\n');
  assert.equal(
    tail,
    [
      'MPTCP paths to server link server:',
      'UPLINK  ADDRESS     ENDPOINT             SUBFLOWS  BYTES IN  BYTES OUT',
      'up0     198.18.1.2  yes                         1   5.0 MiB    2.0 KiB',
      'up1     198.18.2.2  yes                         2   3.0 MiB      512 B',
      'up2     198.18.3.2  no (out of service)         0       0 B        0 B',
      '',
    ].join('\n'),
  );
  // The links table is unchanged above it, followed by one blank line.
  assert.ok(text.startsWith(renderStatus(threeLinkStatus()).trimEnd() + '\n\nMPTCP paths'));
});

test('renderStatus: no mptcp section, no block; an empty one says so', () => {
  assert.ok(!renderStatus(threeLinkStatus()).includes('MPTCP'));
  const s = withPaths();
  s.mptcp = { server: 'server', uplinks: [] };
  assert.ok(renderStatus(s).endsWith('MPTCP paths to server link server:\nno uplink with an address\n'));
});

test('/metrics: per-uplink endpoint, subflows and bytes gauges; absent without mptcp', async () => {
  let status = withPaths();
  const registry = createMetricsRegistry(() => status);
  const text = await registry.metrics();
  for (const line of [
    'linkmux_mptcp_endpoint{uplink="up0"} 1',
    'linkmux_mptcp_endpoint{uplink="up2"} 0',
    'linkmux_mptcp_subflows{uplink="up1"} 2',
    'linkmux_mptcp_subflow_bytes{uplink="up0",direction="in"} 5242880',
    'linkmux_mptcp_subflow_bytes{uplink="up1",direction="out"} 512',
  ]) {
    assert.ok(text.includes(line), `missing ${line}`);
  }
  assert.ok(text.includes('# TYPE linkmux_mptcp_subflows gauge'));
  status = threeLinkStatus();
  const without = await registry.metrics();
  assert.ok(!/^linkmux_mptcp_\w+\{/m.test(without), 'no series without the mptcp section');
});
