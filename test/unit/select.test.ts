import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalLinks, selectUplinks, splitLinkRequests } from '../../src/links/select.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import type { ErrorCode } from '../../src/util/errors.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';

const lo: NetInterface = {
  name: 'lo',
  up: true,
  loopback: true,
  addresses: [
    { address: '127.0.0.1', family: 4, prefixLength: 8 },
    { address: '::1', family: 6, prefixLength: 128 },
  ],
};
const eth0: NetInterface = {
  name: 'eth0',
  up: true,
  loopback: false,
  addresses: [
    { address: '198.18.1.2', family: 4, prefixLength: 24 },
    { address: '198.18.1.3', family: 4, prefixLength: 24 },
    { address: '2001:db8:1::2', family: 6, prefixLength: 64 },
  ],
  gateway: '198.18.1.1',
  metric: 100,
};
const wlan0: NetInterface = {
  name: 'wlan0',
  up: true,
  loopback: false,
  addresses: [{ address: '198.18.2.2', family: 4, prefixLength: 24 }],
  gateway: '198.18.2.1',
  metric: 600,
};
const lan1: NetInterface = {
  name: 'lan1',
  up: true,
  loopback: false,
  addresses: [{ address: '198.18.3.2', family: 4, prefixLength: 24 }],
};
const down0: NetInterface = {
  name: 'down0',
  up: false,
  loopback: false,
  addresses: [{ address: '198.18.4.2', family: 4, prefixLength: 24 }],
};
const bare0: NetInterface = {
  name: 'bare0',
  up: true,
  loopback: false,
  addresses: [{ address: 'fe80::1', family: 6, prefixLength: 64 }],
};
/** Its default route is only in policy table 101 (`ip rule from 198.18.5.2 lookup 101`). */
const ppp1: NetInterface = {
  name: 'ppp1',
  up: true,
  loopback: false,
  addresses: [{ address: '198.18.5.2', family: 4, prefixLength: 24 }],
  gateway: '198.18.5.1',
  metric: 0,
  policyRoute: { table: 101, from: '198.18.5.2' },
};
const all = [lo, eth0, wlan0, lan1, down0, bare0];

const okCases: Array<[string, NetInterface[], string[], string[]]> = [
  ['no request: every usable uplink', all, [], ['eth0', 'wlan0']],
  ['by name, in request order', all, ['wlan0', 'eth0'], ['wlan0', 'eth0']],
  ['by address', all, ['198.18.2.2'], ['wlan0']],
  ['by IPv6 address in another spelling', all, ['[2001:DB8:1:0::2]'], ['eth0']],
  ['name and its address collapse', all, ['eth0', '198.18.1.3', 'eth0'], ['eth0']],
  ['comma-separated', all, ['eth0,wlan0', ' '], ['eth0', 'wlan0']],
  ['named without default route is allowed', all, ['lan1'], ['lan1']],
  ['loopback when named (tests)', all, ['lo'], ['lo']],
  ['no request: a policy-table default route counts', [...all, ppp1], [], ['eth0', 'wlan0', 'ppp1']],
];

for (const [name, ifaces, requested, want] of okCases) {
  test(`selectUplinks: ${name}`, () => {
    assert.deepEqual(
      selectUplinks(ifaces, requested, 'linux').map((i) => i.name),
      want,
    );
  });
}

test('selectUplinks: an address request makes that address the first (the source)', () => {
  const [got] = selectUplinks(all, ['198.18.1.3'], 'linux');
  assert.deepEqual(
    got?.addresses.map((a) => a.address),
    ['198.18.1.3', '198.18.1.2', '2001:db8:1::2'],
  );
  assert.equal(eth0.addresses[0]?.address, '198.18.1.2', 'the input is not mutated');
});

test('selectUplinks: link-local addresses are dropped from a named interface', () => {
  const mixed: NetInterface = {
    ...wlan0,
    addresses: [{ address: 'fe80::9', family: 6, prefixLength: 64 }, ...wlan0.addresses],
  };
  assert.deepEqual(
    selectUplinks([mixed], ['wlan0'], 'linux')[0]?.addresses.map((a) => a.address),
    ['198.18.2.2'],
  );
});

const errorCases: Array<[string, NetInterface[], string[], ErrorCode, RegExp]> = [
  [
    'nothing usable',
    [lo, lan1, down0],
    [],
    'LINKMUX_ERR_NO_LINKS',
    /lan1: no default route, down0: down.*name an interface or address with --link/,
  ],
  [
    'unknown name lists the names',
    all,
    ['eth7'],
    'LINKMUX_ERR_LINK_UNKNOWN',
    /eth7.*lo, eth0, wlan0, lan1, down0, bare0/,
  ],
  ['unknown address', all, ['10.9.9.9'], 'LINKMUX_ERR_LINK_UNKNOWN', /10\.9\.9\.9/],
  ['down', all, ['down0'], 'LINKMUX_ERR_LINK_DOWN', /down0 is down.*ip link set down0 up/],
  ['down, named by address', all, ['198.18.4.2'], 'LINKMUX_ERR_LINK_DOWN', /down0/],
  ['only link-local', all, ['bare0'], 'LINKMUX_ERR_LINK_NO_ADDRESS', /bare0 has no usable IP address/],
  ['one bad request spoils the lot', all, ['eth0', 'nope'], 'LINKMUX_ERR_LINK_UNKNOWN', /nope/],
];

for (const [name, ifaces, requested, code, message] of errorCases) {
  test(`selectUplinks error: ${name}`, () => {
    assert.throws(
      () => selectUplinks(ifaces, requested, 'linux'),
      (err) => isLinkmuxError(err, code) && message.test(err.message),
    );
  });
}

test('splitLinkRequests', () => {
  assert.deepEqual(splitLinkRequests(['a,b', ' c ', '', ',,d']), ['a', 'b', 'c', 'd']);
});

test('createLocalLinks: one link per interface, ids are interface names', () => {
  const links = createLocalLinks([eth0, wlan0], { mode: 'address', logger: silentLogger, platform: 'linux' });
  assert.deepEqual(
    links.map((l) => [l.id, l.mode, l.description]),
    [
      ['eth0', 'address', 'eth0 198.18.1.2 198.18.1.3 2001:db8:1::2 via 198.18.1.1 (source address)'],
      ['wlan0', 'address', 'wlan0 198.18.2.2 via 198.18.2.1 (source address)'],
    ],
  );
});
