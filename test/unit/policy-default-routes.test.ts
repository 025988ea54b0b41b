/**
 * Uplinks whose default route lives only in a policy table (`ip rule from ADDR
 * lookup N`): which rules count, which tables are read, what the interface shows,
 * and that a main-table default route wins. Fixtures captured with iproute2 6.1
 * in a namespace (`ip -j -N -4 rule show`, `ip -j route show table N default`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discoverInterfaces, isUsableUplink, parseDefaultRoutes } from '../../src/net/interfaces.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import {
  attachPolicyDefaultRoutes,
  ruleFrom,
  ruleSelects,
  tableKey,
  tablesToRead,
} from '../../src/net/policy-default-routes.js';
import { parseIpRules } from '../../src/routing/reader.js';
import { linkRows, renderLinksTable } from '../../src/cli/links-command.js';
import { FakeRunner } from '../../src/util/runner.js';

// Every rule selects 198.18.1.2 (up0's address) in some way; only the plain
// source rules (1000, 1001, 1005, 1011) send ALL its packets to their table.
// Table 4201 is named "isp1" in rt_tables: -N prints its number.
const RULES_V4_N = JSON.stringify([
  { priority: 0, src: 'all', table: '255' },
  { priority: 1000, src: '198.18.1.2', table: '101' },
  { priority: 1001, src: '198.18.1.0', srclen: 24, table: '102' },
  { priority: 1002, src: '198.18.1.2', fwmark: '0x10', fwmask: '0xff', table: '103' },
  { priority: 1003, src: '198.18.1.2', iif: 'up0', iif_detached: null, table: '104' },
  { priority: 1004, not: null, src: '198.18.1.2', table: '105' },
  { priority: 1005, src: 'all', table: '106' },
  { priority: 1006, src: '198.18.1.2', table: '254', suppress_prefixlen: 0 },
  { priority: 1007, src: '198.18.1.2', action: '7' },
  { priority: 1008, src: '198.18.1.2', goto: 1009 },
  { priority: 1009, src: '198.18.1.2', ipproto: 'ipproto-17', table: '107' },
  { priority: 1010, src: '198.18.1.2', uid_start: 1, uid_end: 2, table: '108' },
  { priority: 1011, src: '198.18.2.2', table: '4201' },
  { priority: 32766, src: 'all', table: '254' },
  { priority: 32767, src: 'all', table: '253' },
]);
/** The same machine's rule 1011 without -N: the name hides the table. */
const RULES_V4_NAMED = JSON.stringify([
  { priority: 1011, src: '198.18.2.2', table: 'isp1' },
  { priority: 32766, src: 'all', table: 'main' },
]);
const RULES_V6_N = JSON.stringify([
  { priority: 0, src: 'all', table: '255' },
  { priority: 1000, src: '2001:db8:3::2', table: '301' },
  { priority: 32766, src: 'all', table: '254' },
]);

const GW = (gateway: string, dev: string, metric?: number) => ({
  dst: 'default',
  gateway,
  dev,
  ...(metric !== undefined ? { metric } : {}),
  flags: [],
});
/** Default routes per table, as `ip -j [-6] route show table N default` prints them. */
const TABLE_JSON: Record<string, string> = {
  '4/101': JSON.stringify([GW('198.18.1.1', 'up0')]),
  '4/102': JSON.stringify([GW('198.18.1.1', 'up0', 5)]),
  '4/103': JSON.stringify([GW('198.18.1.1', 'up9')]),
  '4/104': JSON.stringify([GW('198.18.1.1', 'up9')]),
  '4/105': JSON.stringify([GW('198.18.1.1', 'up9')]),
  '4/106': JSON.stringify([{ type: 'unreachable', dst: 'default', flags: [] }]),
  '4/107': JSON.stringify([GW('198.18.1.1', 'up9')]),
  '4/108': JSON.stringify([GW('198.18.1.1', 'up9')]),
  '4/4201': JSON.stringify([
    {
      dst: 'default',
      flags: [],
      nexthops: [
        { gateway: '198.18.2.1', dev: 'up1', weight: 1, flags: [] },
        { gateway: '198.18.2.3', dev: 'up1', weight: 2, flags: [] },
      ],
    },
  ]),
  '6/301': JSON.stringify([{ ...GW('2001:db8:3::1', 'up2'), metric: 1024, pref: 'medium' }]),
};

const iface = (name: string, ...addresses: string[]): NetInterface => ({
  name,
  up: true,
  loopback: false,
  addresses: addresses.map((a) => ({
    address: a,
    family: a.includes(':') ? 6 : 4,
    prefixLength: a.includes(':') ? 64 : 24,
  })),
});

const RULES = [...parseIpRules(RULES_V4_N, 4), ...parseIpRules(RULES_V6_N, 6)];
const rule = (priority: number, family: 4 | 6 = 4) => {
  const r = RULES.find((x) => x.priority === priority && x.family === family);
  assert.ok(r, `rule ${priority}`);
  return r;
};
const tables = (keys: string[]) =>
  new Map(keys.map((k) => [k, parseDefaultRoutes(TABLE_JSON[k] ?? '[]', k.startsWith('6') ? 6 : 4)]));

const selects: Array<[string, number, string, boolean]> = [
  ['a /32 rule for the address', 1000, '198.18.1.2', true],
  ['a /32 rule for another address', 1000, '198.18.1.3', false],
  ['a /24 rule covering the address', 1001, '198.18.1.77', true],
  ['a /24 rule not covering it', 1001, '198.18.2.2', false],
  ['fwmark: only marked packets', 1002, '198.18.1.2', false],
  ['iif: only forwarded packets', 1003, '198.18.1.2', false],
  ['not from: the opposite', 1004, '198.18.1.2', false],
  ['from all', 1005, '198.18.9.9', true],
  ['lookup main suppress_prefixlength 0: main, and it hides default routes', 1006, '198.18.1.2', false],
  ['ipproto: only one protocol', 1009, '198.18.1.2', false],
  ['uidrange: only some users', 1010, '198.18.1.2', false],
  ['a numbered (once named) table', 1011, '198.18.2.2', true],
  ['main at 32766: read on its own', 32766, '198.18.1.2', false],
  ['local at 0', 0, '198.18.1.2', false],
];
for (const [name, priority, address, want] of selects) {
  test(`ruleSelects: ${name}`, () => {
    assert.equal(ruleSelects(rule(priority), address, 4), want);
  });
}

test('parseIpRules: unreachable and goto rules look up no table, so they select nothing', () => {
  const noTable = parseIpRules(RULES_V4_N, 4).filter((r) => r.priority === 1007 || r.priority === 1008);
  assert.deepEqual(
    noTable.map((r) => r.table),
    [undefined, undefined],
  );
  assert.ok(noTable.every((r) => !ruleSelects(r, '198.18.1.2', 4)));
});

test('ruleSelects: an IPv6 rule selects only IPv6 addresses', () => {
  assert.equal(ruleSelects(rule(1000, 6), '2001:db8:3::2', 6), true);
  assert.equal(ruleSelects(rule(1000, 6), '2001:db8:3::2', 4), false);
  assert.equal(ruleSelects(rule(1000, 4), '2001:db8:3::2', 6), false);
});

test('ruleFrom spells the source as ip rule does', () => {
  assert.deepEqual(
    [1000, 1001, 1005].map((p) => ruleFrom(rule(p))),
    ['198.18.1.2', '198.18.1.0/24', 'all'],
  );
});

test('without -N a named table is invisible: why discovery reads rules with -N', () => {
  assert.equal(parseIpRules(RULES_V4_NAMED, 4).find((r) => r.priority === 1011)?.table, undefined);
  assert.deepEqual(
    parseIpRules(RULES_V4_N, 4)
      .filter((r) => r.priority === 1011)
      .map((r) => r.table),
    [4201],
  );
});

test('tablesToRead: only tables of counting rules for interfaces lacking a main default route', () => {
  const withMain: NetInterface = { ...iface('up3', '198.18.4.2'), gateway: '198.18.4.1', metric: 100 };
  const down: NetInterface = { ...iface('up4', '198.18.5.2'), up: false };
  const got = tablesToRead([iface('up0', '198.18.1.2'), withMain, down], RULES).map(tableKey);
  // 101 and 102 select 198.18.1.2 by source; 106 and the kernel's own "default"
  // table 253 (priority 32767) are "from all"; the rest never count.
  assert.deepEqual(got, ['4/101', '4/102', '4/106', '4/253']);
  assert.deepEqual(tablesToRead([withMain, down], RULES), []);
});

test('attachPolicyDefaultRoutes: the lowest-priority counting rule with a route through the interface wins', () => {
  const [up0, up1, up2, lan] = attachPolicyDefaultRoutes(
    [
      iface('up0', '198.18.1.2'),
      iface('up1', '198.18.2.2'),
      iface('up2', '2001:db8:3::2'),
      iface('lan', '198.18.100.1'),
    ],
    RULES,
    tables(Object.keys(TABLE_JSON)),
  );
  assert.deepEqual(up0, {
    ...iface('up0', '198.18.1.2'),
    gateway: '198.18.1.1',
    metric: 0,
    policyRoute: { table: 101, from: '198.18.1.2' },
  });
  // Multipath: the first next hop's gateway, the route's metric.
  assert.deepEqual(
    [up1?.gateway, up1?.metric, up1?.policyRoute],
    ['198.18.2.1', 0, { table: 4201, from: '198.18.2.2' }],
  );
  assert.deepEqual(
    [up2?.gateway, up2?.metric, up2?.policyRoute],
    ['2001:db8:3::1', 1024, { table: 301, from: '2001:db8:3::2' }],
  );
  // "from all" selects lan's address too, but table 106 holds only an unreachable route.
  assert.deepEqual(lan, iface('lan', '198.18.100.1'));
  assert.equal(isUsableUplink(lan as NetInterface, 'linux'), false);
  assert.equal(isUsableUplink(up0 as NetInterface, 'linux'), true);
});

test('attachPolicyDefaultRoutes: a table whose default route goes through another device is skipped', () => {
  // Table 101 is missing: the next counting rule (1001, table 102, metric 5) serves.
  const [up0] = attachPolicyDefaultRoutes([iface('up0', '198.18.1.2')], RULES, tables(['4/102']));
  assert.deepEqual(up0?.policyRoute, { table: 102, from: '198.18.1.0/24' });
  assert.equal(up0?.metric, 5);
  // Only tables whose default route leaves through up9: nothing for up0.
  const [none] = attachPolicyDefaultRoutes(
    [iface('up0', '198.18.1.2')],
    RULES,
    tables(['4/103', '4/104', '4/105', '4/107', '4/108']),
  );
  assert.equal(none?.metric, undefined);
});

test('attachPolicyDefaultRoutes: "from all" counts for the device its default route leaves through', () => {
  const allTable = new Map([['4/106', parseDefaultRoutes(JSON.stringify([GW('198.18.7.1', 'up7', 3)]), 4)]]);
  const [up7] = attachPolicyDefaultRoutes([iface('up7', '198.18.7.2')], RULES, allTable);
  assert.deepEqual(up7?.policyRoute, { table: 106, from: 'all' });
  assert.equal(up7?.gateway, '198.18.7.1');
});

test('attachPolicyDefaultRoutes: a main-table default route wins over a policy one', () => {
  const main: NetInterface = { ...iface('up0', '198.18.1.2'), gateway: '198.18.1.254', metric: 100 };
  const [got] = attachPolicyDefaultRoutes([main], RULES, tables(['4/101']));
  assert.deepEqual(got, main);
});

test('discoverInterfaces: reads rules with -N and the selected tables, then attaches; main wins', async () => {
  const link = (ifname: string, local: string, prefixlen = 24) => ({
    ifname,
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    operstate: 'UP',
    addr_info: [{ family: local.includes(':') ? 'inet6' : 'inet', local, prefixlen, scope: 'global' }],
  });
  const runner = new FakeRunner({
    'ip -j addr show': JSON.stringify([
      link('up0', '198.18.1.2'),
      link('up1', '198.18.2.2'),
      link('up2', '2001:db8:3::2', 64),
      // Both a main default route and rule 1005's "from all" table: main wins, 106 is not read for it.
      link('eth0', '198.18.8.2'),
    ]),
    'ip -j route show default': JSON.stringify([GW('198.18.8.1', 'eth0', 50)]),
    'ip -j -6 route show default': '[]',
    'ip -j -N -4 rule show': RULES_V4_N,
    'ip -j -N -6 rule show': RULES_V6_N,
    'ip -j route show table 101 default': TABLE_JSON['4/101'] as string,
    // Table 102 does not exist: ip fails, the table contributes nothing.
    'ip -j route show table 102 default': new Error('Error: ipv4: FIB table does not exist.'),
    'ip -j route show table 106 default': TABLE_JSON['4/106'] as string,
    'ip -j route show table 4201 default': TABLE_JSON['4/4201'] as string,
    'ip -j -6 route show table 301 default': TABLE_JSON['6/301'] as string,
  });
  const got = await discoverInterfaces(runner, 'linux');
  assert.deepEqual(runner.calls.slice(3), [
    'ip -j -N -4 rule show',
    'ip -j -N -6 rule show',
    'ip -j route show table 101 default',
    'ip -j route show table 102 default',
    'ip -j route show table 106 default',
    'ip -j route show table 253 default',
    'ip -j route show table 4201 default',
    'ip -j -6 route show table 301 default',
  ]);
  assert.deepEqual(
    got.map((i) => [i.name, i.gateway, i.metric, i.policyRoute?.table, isUsableUplink(i, 'linux')]),
    [
      ['up0', '198.18.1.1', 0, 101, true],
      ['up1', '198.18.2.1', 0, 4201, true],
      ['up2', '2001:db8:3::1', 1024, 301, true],
      ['eth0', '198.18.8.1', 50, undefined, true],
    ],
  );
});

test('discoverInterfaces: no rule is read when every interface has a main default route', async () => {
  const runner = new FakeRunner({
    'ip -j addr show': JSON.stringify([
      {
        ifname: 'eth0',
        flags: ['UP'],
        operstate: 'UP',
        addr_info: [{ family: 'inet', local: '198.18.8.2', prefixlen: 24 }],
      },
    ]),
    'ip -j route show default': JSON.stringify([GW('198.18.8.1', 'eth0')]),
  });
  await discoverInterfaces(runner, 'linux');
  assert.equal(runner.calls.length, 3);
});

test('linkRows and the table say why a policy-table uplink counts', () => {
  const [up0] = attachPolicyDefaultRoutes([iface('up0', '198.18.1.2')], RULES, tables(['4/101']));
  const rows = linkRows([up0 as NetInterface], { all: false, platform: 'linux' });
  assert.deepEqual(rows, [
    {
      name: 'up0',
      state: 'up',
      loopback: false,
      addresses: ['198.18.1.2/24'],
      gateway: '198.18.1.1',
      metric: 0,
      table: 101,
      route: 'default route in table 101 (rule from 198.18.1.2)',
      usable: true,
    },
  ]);
  assert.equal(
    renderLinksTable(rows),
    'INTERFACE  STATE  ADDRESSES      GATEWAY     METRIC  USABLE\n' +
      'up0        up     198.18.1.2/24  198.18.1.1  0       yes, default route in table 101 (rule from 198.18.1.2)\n',
  );
});
