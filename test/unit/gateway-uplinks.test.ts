/**
 * From the config's uplink entries to planned uplinks: every entry that cannot
 * be used is reported, each with the fix that applies to it — a missing
 * interface is a wrong name (not a missing gateway), an interface without a
 * default route needs `gateway:`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveUplinks } from '../../src/gateway/uplinks.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';

const IFACES: NetInterface[] = [
  {
    name: 'up0',
    up: true,
    loopback: false,
    gateway: '198.18.1.1',
    addresses: [{ address: '198.18.1.2', family: 4, prefixLength: 24 }],
  },
  {
    name: 'up1',
    up: true,
    loopback: false,
    addresses: [{ address: '198.18.2.2', family: 4, prefixLength: 24 }],
  },
];

test('every unusable uplink is reported at once, each with its own hint', () => {
  const { uplinks, problems } = resolveUplinks(
    [
      { interface: 'up0' },
      { interface: 'up9' },
      { interface: 'up1' },
      { interface: 'up8', gateway: '10.0.0.1' },
    ],
    IFACES,
  );
  assert.deepEqual(uplinks, [{ name: 'up0', dev: 'up0', gateway: '198.18.1.1', address: '198.18.1.2' }]);
  assert.equal(problems.length, 3, problems.join('\n'));
  assert.match(
    problems[0]!,
    /^uplink up9: interface up9 does not exist \(interfaces here: up0, up1\): fix gateway\.uplinks\[1\]\.interface$/,
  );
  assert.match(
    problems[1]!,
    /^uplink up1: up1 has no default route, .*give it as gateway\.uplinks\[2\]\.gateway/,
  );
  assert.match(problems[2]!, /^uplink up8: interface up8 does not exist/);
  assert.ok(
    !problems[0]!.includes('gateway:') && !problems[0]!.includes('.gateway'),
    'no gateway hint for a wrong name',
  );
});

test('no uplinks declared is a problem, not an exception', () => {
  assert.match(resolveUplinks([], IFACES).problems[0] ?? '', /gateway\.uplinks is empty/);
});

test('measured weights: all uplinks or none, and probe traffic is no measurement (regression: 30:1:1 slots)', async () => {
  const { measuredWeights, MIN_MEASURED_RATE } = await import('../../src/gateway/gateway-daemon.js');
  const busy = 1_000_000; // 8 Mbit/s
  const probes = 400; // a TCP probe a second: a few hundred bytes
  assert.deepEqual(
    measuredWeights(
      new Map([
        ['a', busy],
        ['b', probes],
        ['c', probes],
      ]),
    ),
    new Map(),
    'uplinks that only carried probes keep equal weights',
  );
  assert.deepEqual(
    measuredWeights(
      new Map([
        ['a', busy],
        ['b', undefined],
        ['c', busy],
      ]),
    ),
    new Map(),
  );
  assert.deepEqual(
    measuredWeights(
      new Map([
        ['a', busy],
        ['b', busy / 2],
        ['c', MIN_MEASURED_RATE],
      ]),
    ),
    new Map([
      ['a', busy],
      ['b', busy / 2],
      ['c', MIN_MEASURED_RATE],
    ]),
  );
});
