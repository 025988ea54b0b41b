import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attachDefaultRoutes,
  discoverInterfaces,
  fromNodeInterfaces,
  isUsableUplink,
  parseDefaultRoutes,
  parseIpAddr,
  uplinkProblem,
} from '../../src/net/interfaces.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import { isLinkLocal } from '../../src/net/link-local.js';
import { FakeRunner } from '../../src/util/runner.js';
import { isLinkmuxError } from '../../src/util/errors.js';

// Captured with iproute2 6.1 in a namespace: lo, two veth uplinks (u2 with a global
// IPv6 and a tentative link-local), u3 DOWN without address, u4 UP but NO-CARRIER.
const IP_ADDR = JSON.stringify([
  {
    ifindex: 1,
    ifname: 'lo',
    flags: ['LOOPBACK', 'UP', 'LOWER_UP'],
    mtu: 65536,
    qdisc: 'noqueue',
    operstate: 'UNKNOWN',
    group: 'default',
    txqlen: 1000,
    link_type: 'loopback',
    address: '00:00:00:00:00:00',
    broadcast: '00:00:00:00:00:00',
    addr_info: [
      {
        family: 'inet',
        local: '127.0.0.1',
        prefixlen: 8,
        scope: 'host',
        label: 'lo',
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
      {
        family: 'inet6',
        local: '::1',
        prefixlen: 128,
        scope: 'host',
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
    ],
  },
  {
    ifindex: 2,
    link_index: 2,
    ifname: 'u1',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1500,
    qdisc: 'noqueue',
    operstate: 'UP',
    group: 'default',
    txqlen: 1000,
    link_type: 'ether',
    address: '7e:e7:c5:af:72:5b',
    broadcast: 'ff:ff:ff:ff:ff:ff',
    link_netnsid: 0,
    addr_info: [
      {
        family: 'inet',
        local: '198.18.1.2',
        prefixlen: 24,
        scope: 'global',
        label: 'u1',
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
      {
        family: 'inet6',
        local: 'fe80::7ce7:c5ff:feaf:725b',
        prefixlen: 64,
        scope: 'link',
        tentative: true,
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
    ],
  },
  {
    ifindex: 3,
    link_index: 3,
    ifname: 'u2',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1500,
    qdisc: 'noqueue',
    operstate: 'UP',
    group: 'default',
    txqlen: 1000,
    link_type: 'ether',
    address: '82:4d:ec:28:a6:3f',
    broadcast: 'ff:ff:ff:ff:ff:ff',
    link_netnsid: 0,
    addr_info: [
      {
        family: 'inet',
        local: '198.18.2.2',
        prefixlen: 24,
        scope: 'global',
        label: 'u2',
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
      {
        family: 'inet6',
        local: '2001:db8:2::2',
        prefixlen: 64,
        scope: 'global',
        nodad: true,
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
      {
        family: 'inet6',
        local: 'fe80::804d:ecff:fe28:a63f',
        prefixlen: 64,
        scope: 'link',
        tentative: true,
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
    ],
  },
  {
    ifindex: 4,
    link_index: 4,
    ifname: 'u3',
    flags: ['BROADCAST', 'MULTICAST'],
    mtu: 1500,
    qdisc: 'noop',
    operstate: 'DOWN',
    group: 'default',
    txqlen: 1000,
    link_type: 'ether',
    address: 'c6:14:5c:cf:1f:40',
    broadcast: 'ff:ff:ff:ff:ff:ff',
    link_netnsid: 0,
    addr_info: [],
  },
  {
    ifindex: 5,
    link_index: 5,
    ifname: 'u4',
    flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'],
    mtu: 1500,
    qdisc: 'noqueue',
    operstate: 'DOWN',
    group: 'default',
    txqlen: 1000,
    link_type: 'ether',
    address: 'f6:cf:33:d8:8e:ad',
    broadcast: 'ff:ff:ff:ff:ff:ff',
    link_netnsid: 0,
    addr_info: [
      {
        family: 'inet',
        local: '198.18.4.2',
        prefixlen: 24,
        scope: 'global',
        label: 'u4',
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
    ],
  },
]);

// Captured: two default routes with different metrics (the lower one wins in the main table).
const ROUTES_V4 =
  '[{"dst":"default","gateway":"198.18.1.1","dev":"u1","metric":100,"flags":[]},{"dst":"default","gateway":"198.18.2.1","dev":"u2","metric":200,"flags":[]}]';
const ROUTES_V6 =
  '[{"dst":"default","gateway":"2001:db8:2::1","dev":"u2","metric":1024,"flags":[],"pref":"medium"}]';
// Captured: a multipath default and a point-to-point default without gateway.
const ROUTES_MULTIPATH =
  '[{"dst":"default","metric":50,"flags":[],"nexthops":[{"gateway":"198.18.1.1","dev":"u1","weight":1,"flags":[]},{"gateway":"198.18.2.1","dev":"u2","weight":2,"flags":[]}]},{"dst":"default","dev":"u2","scope":"link","metric":300,"flags":[]}]';
// A NetworkManager laptop: wired and WiFi by DHCP, metric 0 omitted on a static route, a blackhole.
const ROUTES_LAPTOP =
  '[{"dst":"default","gateway":"192.168.1.1","dev":"enp0s31f6","protocol":"dhcp","prefsrc":"192.168.1.20","metric":100,"flags":[]},' +
  '{"dst":"default","gateway":"10.0.0.1","dev":"wlp2s0","protocol":"dhcp","prefsrc":"10.0.0.57","metric":600,"flags":[]},' +
  '{"dst":"default","gateway":"172.16.0.1","dev":"eth9","protocol":"static","flags":["onlink"]},' +
  '{"type":"blackhole","dst":"default","protocol":"static","metric":4000,"flags":[]}]';

test('parseIpAddr: addresses, state, loopback; link-local IPv6 dropped', () => {
  const got = parseIpAddr(IP_ADDR);
  assert.deepEqual(got, [
    {
      name: 'lo',
      up: true,
      loopback: true,
      addresses: [
        { address: '127.0.0.1', family: 4, prefixLength: 8 },
        { address: '::1', family: 6, prefixLength: 128 },
      ],
    },
    {
      name: 'u1',
      up: true,
      loopback: false,
      addresses: [{ address: '198.18.1.2', family: 4, prefixLength: 24 }],
    },
    {
      name: 'u2',
      up: true,
      loopback: false,
      addresses: [
        { address: '198.18.2.2', family: 4, prefixLength: 24 },
        { address: '2001:db8:2::2', family: 6, prefixLength: 64 },
      ],
    },
    { name: 'u3', up: false, loopback: false, addresses: [] },
    {
      name: 'u4',
      up: false,
      loopback: false,
      addresses: [{ address: '198.18.4.2', family: 4, prefixLength: 24 }],
    },
  ]);
});

test('parseIpAddr: link-local by prefix even without scope, dadfailed, junk entries', () => {
  const json = JSON.stringify([
    {
      ifname: 'wlan0',
      flags: ['UP', 'LOWER_UP'],
      operstate: 'DORMANT',
      addr_info: [
        { family: 'inet', local: '169.254.7.9', prefixlen: 16, scope: 'global' },
        { family: 'inet6', local: 'febf::1', prefixlen: 64, scope: 'global' },
        { family: 'inet6', local: '2001:db8::9', prefixlen: 64, scope: 'global', dadfailed: true },
        { family: 'inet6', local: 'fe8::1', prefixlen: 64, scope: 'global' },
        { family: 'packet' },
      ],
    },
    { ifname: 'tun0', flags: ['POINTOPOINT', 'UP', 'LOWER_UP'], operstate: 'UNKNOWN', addr_info: [] },
    { nonsense: true },
  ]);
  assert.deepEqual(parseIpAddr(json), [
    // DORMANT (WiFi not associated) is not up; fe8::1 is 0fe8::1, not link-local.
    {
      name: 'wlan0',
      up: false,
      loopback: false,
      addresses: [{ address: 'fe8::1', family: 6, prefixLength: 64 }],
    },
    { name: 'tun0', up: true, loopback: false, addresses: [] },
  ]);
});

test('parseIpAddr: output that is not JSON is a COMMAND_FAILED error with a fix', () => {
  for (const bad of ['1: lo: <LOOPBACK,UP>', '{"ifname":"lo"}']) {
    assert.throws(
      () => parseIpAddr(bad),
      (err) => isLinkmuxError(err, 'LINKMUX_ERR_COMMAND_FAILED') && /iproute2/.test(err.message),
    );
  }
  assert.deepEqual(parseIpAddr(''), []);
});

const routeCases: Array<{
  name: string;
  json: string;
  family?: 4 | 6;
  want: ReturnType<typeof parseDefaultRoutes>;
}> = [
  {
    name: 'two defaults with metrics',
    json: ROUTES_V4,
    family: 4,
    want: [
      { dev: 'u1', family: 4, gateway: '198.18.1.1', metric: 100 },
      { dev: 'u2', family: 4, gateway: '198.18.2.1', metric: 200 },
    ],
  },
  {
    name: 'IPv6',
    json: ROUTES_V6,
    family: 6,
    want: [{ dev: 'u2', family: 6, gateway: '2001:db8:2::1', metric: 1024 }],
  },
  {
    name: 'multipath and gateway-less',
    json: ROUTES_MULTIPATH,
    want: [
      { dev: 'u1', family: 4, gateway: '198.18.1.1', metric: 50 },
      { dev: 'u2', family: 4, gateway: '198.18.2.1', metric: 50 },
      { dev: 'u2', family: 4, metric: 300 },
    ],
  },
  {
    name: 'laptop: metric omitted means 0, blackhole dropped',
    json: ROUTES_LAPTOP,
    family: 4,
    want: [
      { dev: 'enp0s31f6', family: 4, gateway: '192.168.1.1', metric: 100 },
      { dev: 'wlp2s0', family: 4, gateway: '10.0.0.1', metric: 600 },
      { dev: 'eth9', family: 4, gateway: '172.16.0.1', metric: 0 },
    ],
  },
  { name: 'no default route', json: '[]', want: [] },
  { name: 'empty output', json: '', want: [] },
];

for (const c of routeCases) {
  test(`parseDefaultRoutes: ${c.name}`, () => {
    assert.deepEqual(parseDefaultRoutes(c.json, c.family), c.want);
  });
}

test('attachDefaultRoutes: IPv4 before IPv6, lowest metric first, untouched without a route', () => {
  const ifaces = parseIpAddr(IP_ADDR);
  const routes = [...parseDefaultRoutes(ROUTES_MULTIPATH), ...parseDefaultRoutes(ROUTES_V6, 6)];
  const byName = new Map(attachDefaultRoutes(ifaces, routes).map((i) => [i.name, i]));
  assert.equal(byName.get('u1')?.gateway, '198.18.1.1');
  assert.equal(byName.get('u1')?.metric, 50);
  assert.equal(byName.get('u2')?.gateway, '198.18.2.1');
  assert.equal(byName.get('u2')?.metric, 50);
  assert.equal(byName.get('u3')?.metric, undefined);
  assert.equal('gateway' in (byName.get('u3') ?? {}), false);
});

test('attachDefaultRoutes: a gateway-less default route still marks the interface', () => {
  const [ppp] = attachDefaultRoutes(
    [
      {
        name: 'ppp0',
        up: true,
        loopback: false,
        addresses: [{ address: '100.64.0.5', family: 4, prefixLength: 32 }],
      },
    ],
    [{ dev: 'ppp0', family: 4, metric: 0 }],
  );
  assert.deepEqual(ppp, {
    name: 'ppp0',
    up: true,
    loopback: false,
    addresses: [{ address: '100.64.0.5', family: 4, prefixLength: 32 }],
    metric: 0,
  });
  assert.equal(isUsableUplink(ppp!, 'linux'), true);
});

test('discoverInterfaces on Linux runs ip three times and merges', async () => {
  const runner = new FakeRunner({
    'ip -j addr show': IP_ADDR,
    'ip -j route show default': ROUTES_V4,
    'ip -j -6 route show default': ROUTES_V6,
  });
  const got = await discoverInterfaces(runner, 'linux');
  assert.deepEqual(runner.calls, [
    'ip -j addr show',
    'ip -j route show default',
    'ip -j -6 route show default',
  ]);
  assert.deepEqual(
    got.filter((i) => isUsableUplink(i, 'linux')).map((i) => [i.name, i.gateway, i.metric]),
    [
      ['u1', '198.18.1.1', 100],
      ['u2', '198.18.2.1', 200],
    ],
  );
});

test('discoverInterfaces: IPv6 disabled (the -6 query fails) means no IPv6 routes', async () => {
  const runner = new FakeRunner({
    'ip -j addr show': IP_ADDR,
    'ip -j route show default': ROUTES_V4,
    'ip -j -6 route show default': new Error('RTNETLINK answers: Address family not supported'),
  });
  const got = await discoverInterfaces(runner, 'linux');
  assert.equal(got.find((i) => i.name === 'u2')?.gateway, '198.18.2.1');
});

test('discoverInterfaces elsewhere uses os.networkInterfaces and runs nothing', async () => {
  const runner = new FakeRunner();
  const got = await discoverInterfaces(runner, 'darwin');
  assert.deepEqual(runner.calls, []);
  assert.ok(got.some((i) => i.loopback));
});

test('fromNodeInterfaces: families, prefix from cidr, link-local dropped, internal = loopback', () => {
  const got = fromNodeInterfaces({
    lo0: [
      {
        address: '127.0.0.1',
        netmask: '255.0.0.0',
        family: 'IPv4',
        mac: '',
        internal: true,
        cidr: '127.0.0.1/8',
      },
    ],
    en0: [
      {
        address: '192.168.1.5',
        netmask: '255.255.255.0',
        family: 'IPv4',
        mac: 'aa',
        internal: false,
        cidr: '192.168.1.5/24',
      },
      {
        address: 'fe80::1',
        netmask: 'ffff:ffff:ffff:ffff::',
        family: 'IPv6',
        mac: 'aa',
        internal: false,
        cidr: 'fe80::1/64',
        scopeid: 4,
      },
      {
        address: '2001:db8::5',
        netmask: 'ffff:ffff:ffff:ffff::',
        family: 'IPv6',
        mac: 'aa',
        internal: false,
        cidr: '2001:db8::5/64',
        scopeid: 0,
      },
    ],
  });
  assert.deepEqual(got, [
    {
      name: 'lo0',
      up: true,
      loopback: true,
      addresses: [{ address: '127.0.0.1', family: 4, prefixLength: 8 }],
    },
    {
      name: 'en0',
      up: true,
      loopback: false,
      addresses: [
        { address: '192.168.1.5', family: 4, prefixLength: 24 },
        { address: '2001:db8::5', family: 6, prefixLength: 64 },
      ],
    },
  ]);
  assert.equal(isUsableUplink(got[1]!, 'darwin'), true);
  assert.equal(isUsableUplink(got[1]!, 'linux'), false, 'Linux insists on a default route');
});

const A4 = { address: '198.18.1.2', family: 4 as const, prefixLength: 24 };
const usableCases: Array<[string, NetInterface, NodeJS.Platform, string | undefined]> = [
  [
    'uplink',
    { name: 'e', up: true, loopback: false, addresses: [A4], gateway: '198.18.1.1', metric: 100 },
    'linux',
    undefined,
  ],
  ['loopback', { name: 'lo', up: true, loopback: true, addresses: [A4], metric: 0 }, 'linux', 'loopback'],
  ['down', { name: 'e', up: false, loopback: false, addresses: [A4], metric: 0 }, 'linux', 'down'],
  ['no address', { name: 'e', up: true, loopback: false, addresses: [], metric: 0 }, 'linux', 'no address'],
  [
    'only link-local',
    {
      name: 'e',
      up: true,
      loopback: false,
      addresses: [{ address: 'fe80::1', family: 6, prefixLength: 64 }],
      metric: 0,
    },
    'linux',
    'no address',
  ],
  [
    'no default route (Linux)',
    { name: 'e', up: true, loopback: false, addresses: [A4] },
    'linux',
    'no default route',
  ],
  ['no route known (Windows)', { name: 'e', up: true, loopback: false, addresses: [A4] }, 'win32', undefined],
];

for (const [name, iface, platform, want] of usableCases) {
  test(`uplinkProblem: ${name}`, () => {
    assert.equal(uplinkProblem(iface, platform), want);
    assert.equal(isUsableUplink(iface, platform), want === undefined);
  });
}

test('isLinkLocal', () => {
  for (const a of ['fe80::1', 'FE80::1', 'febf:1::1', '169.254.1.1']) assert.equal(isLinkLocal(a), true, a);
  for (const a of ['fec0::1', 'fe8::1', '2001:db8::1', '169.25.1.1', '10.0.0.1', '::1'])
    assert.equal(isLinkLocal(a), false, a);
});
