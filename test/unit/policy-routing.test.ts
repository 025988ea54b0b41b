import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planPolicyRoutes, policyOwnership, validatePolicyOptions } from '../../src/net/policy-routing.js';
import { networkOf } from '../../src/net/network-of.js';
import { cleanupChanges, diffRouting } from '../../src/routing/diff.js';
import { changeArgs } from '../../src/routing/spec.js';
import { SimKernel } from '../../src/routing/sim-kernel.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import { isLinkmuxError } from '../../src/util/errors.js';

const u1: NetInterface = {
  name: 'u1',
  up: true,
  loopback: false,
  addresses: [{ address: '198.18.1.2', family: 4, prefixLength: 24 }],
  gateway: '198.18.1.1',
  metric: 100,
};
const u2: NetInterface = {
  name: 'u2',
  up: true,
  loopback: false,
  addresses: [
    { address: '198.18.2.2', family: 4, prefixLength: 24 },
    { address: '198.18.2.77', family: 4, prefixLength: 24 },
    { address: '2001:db8:2::2', family: 6, prefixLength: 64 },
  ],
  gateway: '198.18.2.1',
  metric: 200,
};
const v6only: NetInterface = {
  name: 'wg6',
  up: true,
  loopback: false,
  addresses: [{ address: '2001:db8:6:0:a::9', family: 6, prefixLength: 56 }],
  gateway: 'fe80::1',
  metric: 1024,
};
const noGateway: NetInterface = {
  name: 'lan1',
  up: true,
  loopback: false,
  addresses: [{ address: '198.18.3.2', family: 4, prefixLength: 24 }],
};

test('plan: rendered text for two IPv4 uplinks, an IPv6 one and one without gateway', () => {
  const plan = planPolicyRoutes([u1, noGateway, u2, v6only]);
  assert.equal(
    plan.render(),
    `# u1: 198.18.1.2 via 198.18.1.1 -> table 100
ip -4 route replace 198.18.1.0/24 dev u1 src 198.18.1.2 scope link table 100
ip -4 route replace default via 198.18.1.1 dev u1 table 100
ip -4 rule add priority 10000 from 198.18.1.2/32 lookup 100
# u2: 198.18.2.2, 198.18.2.77 via 198.18.2.1 -> table 101
ip -4 route replace 198.18.2.0/24 dev u2 src 198.18.2.2 scope link table 101
ip -4 route replace default via 198.18.2.1 dev u2 table 101
ip -4 rule add priority 10001 from 198.18.2.2/32 lookup 101
ip -4 rule add priority 10001 from 198.18.2.77/32 lookup 101
# wg6: 2001:db8:6:0:a::9 via fe80::1 -> table 102
ip -6 route replace 2001:db8:6::/56 dev wg6 src 2001:db8:6:0:a::9 table 102
ip -6 route replace default via fe80::1 dev wg6 table 102
ip -6 rule add priority 10002 from 2001:db8:6:0:a::9/128 lookup 102
# lan1: skipped (no default gateway)
`,
  );
  assert.deepEqual(plan.skipped, [{ name: 'lan1', reason: 'no default gateway' }]);
  assert.equal(plan.commands.length, 10);
});

test('plan: custom bases; a /32 address gets no subnet route', () => {
  const ppp: NetInterface = {
    name: 'ppp0',
    up: true,
    loopback: false,
    addresses: [{ address: '100.64.9.9', family: 4, prefixLength: 32 }],
    gateway: '100.64.0.1',
    metric: 0,
  };
  assert.equal(
    planPolicyRoutes([ppp], { tableBase: 1000, priorityBase: 200 }).render(),
    `# ppp0: 100.64.9.9 via 100.64.0.1 -> table 1000
ip -4 route replace default via 100.64.0.1 dev ppp0 table 1000
ip -4 rule add priority 200 from 100.64.9.9/32 lookup 1000
`,
  );
});

test('plan: an IPv4 gateway with only IPv6 addresses is skipped with the reason', () => {
  const odd: NetInterface = { ...v6only, gateway: '198.18.9.1' };
  const plan = planPolicyRoutes([odd]);
  assert.equal(plan.render(), '# wg6: skipped (no IPv4 address for gateway 198.18.9.1)\n');
  assert.equal(plan.rules.length, 0);
});

const badOptions: Array<[string, { tableBase?: number; priorityBase?: number }, RegExp]> = [
  ['table 0', { tableBase: 0 }, /--table-base must be an integer/],
  ['fractional table', { tableBase: 1.5 }, /--table-base must be an integer/],
  ['range hits main/local', { tableBase: 200 }, /253-255.*at most 189, or 256/],
  ['priority past main', { priorityBase: 32760 }, /--priority-base.*32766/],
  ['priority NaN', { priorityBase: Number.NaN }, /--priority-base/],
];

for (const [name, opts, message] of badOptions) {
  test(`validatePolicyOptions rejects ${name}`, () => {
    assert.throws(
      () => validatePolicyOptions(opts),
      (err) => isLinkmuxError(err, 'LINKMUX_ERR_USAGE') && message.test(err.message),
    );
  });
}

test('validatePolicyOptions: defaults and edges', () => {
  assert.deepEqual(validatePolicyOptions(), { tableBase: 100, priorityBase: 10000 });
  assert.deepEqual(validatePolicyOptions({ tableBase: 189, priorityBase: 32702 }), {
    tableBase: 189,
    priorityBase: 32702,
  });
  assert.deepEqual(validatePolicyOptions({ tableBase: 256, priorityBase: 1 }), {
    tableBase: 256,
    priorityBase: 1,
  });
});

test('networkOf', () => {
  const cases: Array<[string, number, string]> = [
    ['198.18.1.2', 24, '198.18.1.0'],
    ['198.19.255.7', 15, '198.18.0.0'],
    ['10.1.2.3', 0, '0.0.0.0'],
    ['10.1.2.3', 32, '10.1.2.3'],
    ['2001:db8:2::2', 64, '2001:db8:2::'],
    ['2001:db8:6:0:a::9', 56, '2001:db8:6::'],
    ['2001:db8:abcd:12ff::1', 52, '2001:db8:abcd:1000::'],
    ['::1', 128, '::1'],
  ];
  for (const [addr, len, want] of cases) assert.equal(networkOf(addr, len), want, `${addr}/${len}`);
});

/** Things linkmux must never touch: the main table, another tool's tables and rules. */
function withOthers(): SimKernel {
  return new SimKernel({
    rules: [
      { family: 4, priority: 5210, from: '100.64.0.0/10', table: 52 },
      { family: 4, priority: 10050, fwmark: { mark: 0x10, mask: 0xffffffff }, table: 150 },
    ],
    routes: [
      { family: 4, table: 52, dst: 'default', dev: 'tailscale0' },
      { family: 4, table: 300, dst: 'default', dev: 'u9', gateway: '198.18.9.1' },
    ],
  });
}

test('apply installs the plan; a second apply changes nothing', async () => {
  const ip = withOthers();
  const pristine = ip.lines();
  const plan = planPolicyRoutes([u1, u2]);
  const first = await plan.apply(ip);
  // All routes first, then all rules: a rule never points at an empty table.
  assert.deepEqual(
    first.map((a) => a.join(' ')),
    [
      '-4 route replace 198.18.1.0/24 dev u1 src 198.18.1.2 scope link table 100',
      '-4 route replace default via 198.18.1.1 dev u1 table 100',
      '-4 route replace 198.18.2.0/24 dev u2 src 198.18.2.2 scope link table 101',
      '-4 route replace default via 198.18.2.1 dev u2 table 101',
      '-4 rule add priority 10000 from 198.18.1.2/32 lookup 100',
      '-4 rule add priority 10001 from 198.18.2.2/32 lookup 101',
      '-4 rule add priority 10001 from 198.18.2.77/32 lookup 101',
    ],
  );
  assert.deepEqual(
    ip.lines().filter((l) => !pristine.includes(l)),
    [
      '-4 rule 10000: from 198.18.1.2/32 lookup 100',
      '-4 rule 10001: from 198.18.2.2/32 lookup 101',
      '-4 rule 10001: from 198.18.2.77/32 lookup 101',
      '-4 route table 100: 198.18.1.0/24 dev u1 src 198.18.1.2',
      '-4 route table 100: default via 198.18.1.1 dev u1',
      '-4 route table 101: 198.18.2.0/24 dev u2 src 198.18.2.2',
      '-4 route table 101: default via 198.18.2.1 dev u2',
    ],
  );
  assert.ok(
    pristine.every((l) => ip.lines().includes(l)),
    'nothing of others changed',
  );
  const before = ip.lines();
  assert.deepEqual(await plan.apply(ip), []);
  assert.deepEqual(ip.lines(), before);
});

test('apply with fewer uplinks drops the stale rules and routes of the earlier run', async () => {
  const ip = withOthers();
  await planPolicyRoutes([u1, u2]).apply(ip);
  // u1 went away: u2 now takes table 100.
  const ran = await planPolicyRoutes([u2]).apply(ip);
  assert.deepEqual(
    ran.map((a) => a.join(' ')),
    [
      '-4 route replace 198.18.2.0/24 dev u2 src 198.18.2.2 scope link table 100',
      '-4 route replace default via 198.18.2.1 dev u2 table 100',
      '-4 rule add priority 10000 from 198.18.2.2/32 lookup 100',
      '-4 rule add priority 10000 from 198.18.2.77/32 lookup 100',
      '-4 rule del priority 10000 from 198.18.1.2/32 lookup 100',
      '-4 rule del priority 10001 from 198.18.2.2/32 lookup 101',
      '-4 rule del priority 10001 from 198.18.2.77/32 lookup 101',
      '-4 route del 198.18.1.0/24 dev u1 table 100',
      '-4 route del 198.18.2.0/24 dev u2 table 101',
      '-4 route del default via 198.18.2.1 dev u2 table 101',
    ],
  );
  assert.deepEqual(await planPolicyRoutes([u2]).apply(ip), []);
  const text = ip.lines().join('\n');
  assert.match(text, /-4 route table 100: default via 198\.18\.2\.1 dev u2/);
  assert.doesNotMatch(text, /table 101|u1/);
});

test('apply removes a duplicate of a planned rule', () => {
  const plan = planPolicyRoutes([u1]);
  const dup = { family: 4 as const, priority: 10000, from: '198.18.1.2/32', table: 100, other: [] };
  const routes = plan.routes.map((r) => ({ ...r }));
  const cmds = diffRouting(plan, { rules: [dup, dup], routes }, policyOwnership()).map(changeArgs);
  assert.deepEqual(cmds, [
    ['-4', 'rule', 'del', 'priority', '10000', 'from', '198.18.1.2/32', 'lookup', '100'],
  ]);
});

test('remove deletes only what linkmux owns, and is a no-op the second time', async () => {
  const ip = withOthers();
  const pristine = ip.lines();
  await planPolicyRoutes([u1, u2, v6only]).apply(ip);
  const ran = await planPolicyRoutes([]).remove(ip);
  assert.deepEqual(
    ran.map((a) => a.join(' ')),
    [
      '-4 rule del priority 10000 from 198.18.1.2/32 lookup 100',
      '-4 rule del priority 10001 from 198.18.2.2/32 lookup 101',
      '-4 rule del priority 10001 from 198.18.2.77/32 lookup 101',
      '-6 rule del priority 10002 from 2001:db8:6:0:a::9/128 lookup 102',
      '-4 route flush table 100',
      '-4 route flush table 101',
      '-6 route flush table 102',
    ],
  );
  assert.deepEqual(ip.lines(), pristine);
  assert.deepEqual(await planPolicyRoutes([]).remove(ip), []);
});

test('remove with other bases leaves the default-range rules alone', () => {
  const cmds = cleanupChanges(
    {
      rules: [{ family: 4, priority: 10000, from: '198.18.1.2/32', table: 100, other: [] }],
      routes: [{ family: 4, dst: 'default', dev: 'u1', table: 100, gateway: '198.18.1.1' }],
    },
    policyOwnership({ tableBase: 1000, priorityBase: 20000 }),
  );
  assert.deepEqual(cmds, []);
});
