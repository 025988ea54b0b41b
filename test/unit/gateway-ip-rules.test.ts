// The gateway's policy routing: planned ip rules and routes, ownership by range, and the diff against the kernel's rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_GATEWAY_NUMBERS, type GatewayNumbers } from '../../src/gateway/plan.js';
import { gatewayOwnership, isOwnedRule, planIpRules, planRoutes } from '../../src/gateway/ip-rules.js';
import { diffRouting } from '../../src/routing/diff.js';
import { parseIpRules } from '../../src/routing/reader.js';
import { routeArgs, ruleArgs, type KernelRule, type RuleSpec } from '../../src/routing/spec.js';
import { plan, planA, planB, up } from '../helpers/gateway-plans.js';

test('planIpRules / ipRuleArgs: suppress rule, then per uplink its fwmark and from rules', () => {
  assert.deepEqual(
    planIpRules(planB()).map((r) => ruleArgs('add', r)),
    [
      ['-4', 'rule', 'add', 'priority', '4200', 'lookup', 'main', 'suppress_prefixlength', '0'],
      ['-4', 'rule', 'add', 'priority', '4201', 'fwmark', '0x4c01/0xffff', 'lookup', '4201'],
      ['-4', 'rule', 'add', 'priority', '4202', 'from', '198.18.1.2', 'lookup', '4201'],
      ['-4', 'rule', 'add', 'priority', '4203', 'fwmark', '0x4c02/0xffff', 'lookup', '4202'],
      ['-4', 'rule', 'add', 'priority', '4204', 'from', '198.18.2.2', 'lookup', '4202'],
      ['-4', 'rule', 'add', 'priority', '4205', 'fwmark', '0x4c03/0xffff', 'lookup', '4203'],
    ],
  );
  assert.deepEqual(
    planRoutes(planB()).map((r) => routeArgs('replace', r)),
    [
      ['-4', 'route', 'replace', 'default', 'via', '198.18.1.1', 'dev', 'wan1', 'table', '4201'],
      ['-4', 'route', 'replace', 'default', 'via', '198.18.2.1', 'dev', 'wan2', 'table', '4202'],
      ['-4', 'route', 'replace', 'default', 'via', '198.18.3.1', 'dev', 'wan3', 'table', '4203'],
    ],
  );
});

test('planIpRules: an IPv6 uplink gets its rules and its own suppress rule under -6', () => {
  const p = plan({
    uplinks: [up(1), { name: 'v6', dev: 'wan6', gateway: 'fe80::1', address: '2001:db8:6::2' }],
  });
  assert.deepEqual(
    planIpRules(p).map((r) => ruleArgs('del', r)),
    [
      ['-4', 'rule', 'del', 'priority', '4200', 'lookup', 'main', 'suppress_prefixlength', '0'],
      ['-4', 'rule', 'del', 'priority', '4201', 'fwmark', '0x4c01/0xffff', 'lookup', '4201'],
      ['-4', 'rule', 'del', 'priority', '4202', 'from', '198.18.1.2', 'lookup', '4201'],
      ['-6', 'rule', 'del', 'priority', '4200', 'lookup', 'main', 'suppress_prefixlength', '0'],
      ['-6', 'rule', 'del', 'priority', '4203', 'fwmark', '0x4c02/0xffff', 'lookup', '4202'],
      ['-6', 'rule', 'del', 'priority', '4204', 'from', '2001:db8:6::2', 'lookup', '4202'],
    ],
  );
});

// `ip -j -4 rule show` of a router running plan (a), with the kernel's defaults and foreign rules:
// someone else's fwmark 0x4c01 rule at 100, a VPN's suppress rule at 32764, an inverted rule and an
// iif rule inside linkmux's range, and an unreachable rule.
const KERNEL_A = JSON.stringify([
  { priority: 0, src: 'all', table: 'local' },
  { priority: 100, src: 'all', fwmark: '0x4c01', table: 4201 },
  { priority: 4200, src: 'all', table: 'main', suppress_prefixlen: 0 },
  { priority: 4201, src: 'all', fwmark: '0x4c01', fwmask: '0xffff', table: 4201 },
  { priority: 4202, src: '198.18.1.2', table: 4201 },
  { priority: 4203, src: 'all', fwmark: '0x4c02', fwmask: '0xffff', table: '4202' },
  { priority: 4204, src: '198.18.2.2', table: '4202' },
  { priority: 4205, src: 'all', fwmark: '0x4c03', fwmask: '0xffff', table: '4203' },
  { priority: 4206, src: '198.18.3.2', table: '4203' },
  { priority: 4207, not: null, src: 'all', fwmark: '0x1', table: 4201 },
  { priority: 4210, src: 'all', iif: 'lan0', table: '4202' },
  { priority: 5000, src: '10.0.0.0', srclen: 8, action: 'unreachable' },
  { priority: 32764, src: 'all', table: 'main', suppress_prefixlen: 0 },
  { priority: 32766, src: 'all', table: 'main' },
  { priority: 32767, src: 'all', table: 'default' },
]);

test('isOwnedRule: ours, also from a bigger old config; never a foreign rule', () => {
  const n = DEFAULT_GATEWAY_NUMBERS;
  const owned = parseIpRules(KERNEL_A, 4).map((r) => [r.priority, isOwnedRule(r, n)]);
  assert.deepEqual(owned, [
    [0, false],
    [100, false],
    [4200, true],
    [4201, true],
    [4202, true],
    [4203, true],
    [4204, true],
    [4205, true],
    [4206, true],
    [4207, false],
    [4210, false],
    [5000, false],
    [32764, false],
    [32766, false],
    [32767, false],
  ]);
  const rule = (r: Partial<KernelRule>): KernelRule => ({
    priority: 4200,
    family: 4,
    table: 254,
    other: [],
    ...r,
  });
  // Uplink 64 (the last possible) of an old config: priorities 4327/4328, table 4264.
  assert.equal(
    isOwnedRule(rule({ priority: 4327, table: 4264, fwmark: { mark: 0x4c40, mask: 0xffff } }), n),
    true,
  );
  assert.equal(isOwnedRule(rule({ priority: 4328, table: 4264, from: '198.18.64.2/32' }), n), true);
  assert.equal(isOwnedRule(rule({ priority: 4329, table: 4264 }), n), false);
  assert.equal(isOwnedRule(rule({ priority: 4199, table: 4201 }), n), false);
  assert.equal(isOwnedRule(rule({ priority: 4201, table: 4265 }), n), false);
  assert.equal(isOwnedRule(rule({ priority: 4201, table: 4200 }), n), false);
  assert.equal(isOwnedRule(rule({ priority: 4201, table: 254, suppressPrefixLength: 0 }), n), false);
  assert.equal(isOwnedRule(rule({ priority: 4200, table: 254 }), n), false);
  assert.equal(isOwnedRule(rule({ table: 254, suppressPrefixLength: 0, from: '10.0.0.0/8' }), n), false);
  assert.equal(isOwnedRule(rule({ table: undefined }), n), false);
});

/** The rule part of the routing diff, as adds and deletes. */
function diffRules(
  current: KernelRule[],
  desired: RuleSpec[],
  numbers: GatewayNumbers,
): { add: RuleSpec[]; del: KernelRule[] } {
  const changes = diffRouting(
    { rules: desired, routes: [] },
    { rules: current, routes: [] },
    gatewayOwnership(numbers),
  );
  const add: RuleSpec[] = [];
  const del: KernelRule[] = [];
  for (const c of changes) {
    if (c.kind === 'rule' && c.op === 'add') add.push(c.rule as RuleSpec);
    else if (c.kind === 'rule' && c.op === 'del') del.push(c.rule as KernelRule);
  }
  return { add, del };
}

// A machine without linkmux: the kernel's defaults and someone else's fwmark rule.
const KERNEL_DEFAULTS = JSON.stringify([
  { priority: 0, src: 'all', table: 'local' },
  { priority: 100, src: 'all', fwmark: '0x4c01', table: 4201 },
  { priority: 32766, src: 'all', table: 'main' },
  { priority: 32767, src: 'all', table: 'default' },
]);

test('diffRules: fresh machine → every rule added, nothing deleted', () => {
  const desired = planIpRules(planA());
  const { add, del } = diffRules(parseIpRules(KERNEL_DEFAULTS, 4), desired, DEFAULT_GATEWAY_NUMBERS);
  assert.deepEqual(add, desired);
  assert.deepEqual(del, []);
});

test('diffRules: the same plan twice → empty diff', () => {
  const { add, del } = diffRules(parseIpRules(KERNEL_A, 4), planIpRules(planA()), DEFAULT_GATEWAY_NUMBERS);
  assert.deepEqual(add, []);
  assert.deepEqual(del, []);
});

test('diffRules: an uplink removed from the config → its rules deleted, foreign rules kept', () => {
  const twoUplinks = plan({ uplinks: [up(1), up(2)] });
  const { add, del } = diffRules(parseIpRules(KERNEL_A, 4), planIpRules(twoUplinks), DEFAULT_GATEWAY_NUMBERS);
  assert.deepEqual(add, []);
  assert.deepEqual(
    del.map((r) => ruleArgs('del', r)),
    [
      ['-4', 'rule', 'del', 'priority', '4205', 'fwmark', '0x4c03/0xffff', 'lookup', '4203'],
      ['-4', 'rule', 'del', 'priority', '4206', 'from', '198.18.3.2/32', 'lookup', '4203'],
    ],
  );
});

test('diffRules: gone from the config entirely → every linkmux rule deleted, no foreign one', () => {
  const { add, del } = diffRules(parseIpRules(KERNEL_A, 4), [], DEFAULT_GATEWAY_NUMBERS);
  assert.deepEqual(add, []);
  assert.deepEqual(
    del.map((r) => r.priority),
    [4200, 4201, 4202, 4203, 4204, 4205, 4206],
  );
  assert.deepEqual(ruleArgs('del', del[0]!), [
    '-4',
    'rule',
    'del',
    'priority',
    '4200',
    'lookup',
    'main',
    'suppress_prefixlength',
    '0',
  ]);
});

test('diffRules: a changed mask or address → new rule added, old one deleted; a duplicate deleted', () => {
  const current = parseIpRules(
    JSON.stringify([
      { priority: 4200, src: 'all', table: 'main', suppress_prefixlen: 0 },
      { priority: 4200, src: 'all', table: 'main', suppress_prefixlen: 0 },
      { priority: 4201, src: 'all', fwmark: '0x4c01', fwmask: '0xff00', table: 4201 },
      { priority: 4202, src: '198.18.1.99', table: 4201 },
    ]),
    4,
  );
  const { add, del } = diffRules(current, planIpRules(plan({ uplinks: [up(1)] })), DEFAULT_GATEWAY_NUMBERS);
  assert.deepEqual(
    add.map((r) => ruleArgs('add', r)),
    [
      ['-4', 'rule', 'add', 'priority', '4201', 'fwmark', '0x4c01/0xffff', 'lookup', '4201'],
      ['-4', 'rule', 'add', 'priority', '4202', 'from', '198.18.1.2', 'lookup', '4201'],
    ],
  );
  assert.deepEqual(
    del.map((r) => r.priority),
    [4200, 4201, 4202],
  );
});

test('diffRules: IPv6 addresses compare by value, not spelling', () => {
  const p = plan({ uplinks: [{ name: 'v6', dev: 'wan6', gateway: 'fe80::1', address: '2001:DB8:6:0::2' }] });
  const current = parseIpRules(
    JSON.stringify([
      { priority: 4200, src: 'all', table: 'main', suppress_prefixlen: 0 },
      { priority: 4201, src: 'all', fwmark: '0x4c01', fwmask: '0xffff', table: 4201 },
      { priority: 4202, src: '2001:db8:6::2', table: 4201 },
    ]),
    6,
  );
  assert.deepEqual(diffRules(current, planIpRules(p), DEFAULT_GATEWAY_NUMBERS), { add: [], del: [] });
});
