// Where a node listens and what its join token carries: "lan" keeps only the
// private (RFC 1918, ULA) addresses of up, non-loopback interfaces and never a
// public, CGNAT or link-local one; tcp passes through; --advertise overrides
// host (and port) and is validated; a wildcard listen needs --advertise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advertisedAddress, nodeListenPoints } from '../../src/relay/node-address.js';
import type { ListenPoint } from '../../src/relay/node-address.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import { isLinkmuxError } from '../../src/util/errors.js';

function iface(name: string, addresses: string[], extra: Partial<NetInterface> = {}): NetInterface {
  return {
    name,
    up: true,
    loopback: false,
    addresses: addresses.map((address) => ({
      address,
      family: address.includes(':') ? 6 : 4,
      prefixLength: address.includes(':') ? 64 : 24,
    })),
    ...extra,
  };
}

const lo = iface('lo', ['127.0.0.1', '::1', '10.9.9.9'], { loopback: true });
const eth0 = iface('eth0', ['192.168.1.20', '203.0.113.7', 'fd12:3456::20', '2001:db8::20', 'fe80::20'], {
  gateway: '192.168.1.1',
  metric: 100,
});
const wwan0 = iface('wwan0', ['100.64.3.4', '198.51.100.9']);
const wg0 = iface('wg0', ['10.0.0.2', '172.16.5.5', '172.31.255.254']);
const down0 = iface('down0', ['192.168.50.1'], { up: false });
const edges = iface('edges', [
  '172.15.255.255',
  '172.32.0.1',
  '11.0.0.1',
  '192.169.0.1',
  'fbff::1',
  'fe00::1',
]);

function usage(fn: () => unknown): string {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  assert.ok(isLinkmuxError(thrown, 'LINKMUX_ERR_USAGE'), `expected LINKMUX_ERR_USAGE, got ${String(thrown)}`);
  return thrown.message;
}

test('lan: every private address of up, non-loopback interfaces, in interface order, on the given port', () => {
  const points = nodeListenPoints({ kind: 'lan', port: 7443 }, [lo, eth0, wwan0, wg0, down0, edges]);
  assert.deepEqual(points, [
    { host: '192.168.1.20', port: 7443 },
    { host: 'fd12:3456::20', port: 7443 },
    { host: '10.0.0.2', port: 7443 },
    { host: '172.16.5.5', port: 7443 },
    { host: '172.31.255.254', port: 7443 },
  ]);
});

test('lan: range edges just outside RFC 1918 and ULA are not private', () => {
  assert.equal(usage(() => nodeListenPoints({ kind: 'lan', port: 1 }, [edges])).includes('--listen'), true);
  // fc00::/7 includes fc00:: as well as fd..; fe80 (link-local) is not in it.
  assert.deepEqual(
    nodeListenPoints({ kind: 'lan', port: 9 }, [iface('x', ['fc00::1', 'fe80::1', 'fdff:ffff::1'])]),
    [
      { host: 'fc00::1', port: 9 },
      { host: 'fdff:ffff::1', port: 9 },
    ],
  );
});

test('lan with no private address: LINKMUX_ERR_USAGE pointing at --listen', () => {
  for (const interfaces of [[], [lo], [lo, down0], [wwan0], [iface('pub', ['203.0.113.1', '2001:db8::1'])]]) {
    const msg = usage(() => nodeListenPoints({ kind: 'lan', port: 7443 }, interfaces));
    assert.match(msg, /--listen HOST:PORT/);
    assert.match(msg, /private address/);
  }
});

test('tcp passes through whatever the interfaces hold', () => {
  for (const interfaces of [[], [eth0, wg0]]) {
    assert.deepEqual(nodeListenPoints({ kind: 'tcp', host: '0.0.0.0', port: 8443 }, interfaces), [
      { host: '0.0.0.0', port: 8443 },
    ]);
  }
  assert.deepEqual(nodeListenPoints({ kind: 'tcp', host: '203.0.113.7', port: 1 }, [eth0]), [
    { host: '203.0.113.7', port: 1 },
  ]);
});

const points: ListenPoint[] = [
  { host: '192.168.1.20', port: 7443 },
  { host: '10.0.0.2', port: 7443 },
];

test('advertisedAddress: without --advertise the first listen point', () => {
  assert.deepEqual(advertisedAddress(points, undefined), { host: '192.168.1.20', port: 7443 });
  assert.deepEqual(advertisedAddress([{ host: 'fd00::1', port: 9 }], undefined), {
    host: 'fd00::1',
    port: 9,
  });
});

test('advertisedAddress: HOST keeps the listen port, HOST:PORT and [v6]:PORT replace it', () => {
  const cases: Array<[string, ListenPoint]> = [
    ['node.example.org', { host: 'node.example.org', port: 7443 }],
    ['198.51.100.9', { host: '198.51.100.9', port: 7443 }],
    ['node.example.org:443', { host: 'node.example.org', port: 443 }],
    ['198.51.100.9:1', { host: '198.51.100.9', port: 1 }],
    ['198.51.100.9:65535', { host: '198.51.100.9', port: 65535 }],
    ['[2001:db8::9]:8443', { host: '2001:db8::9', port: 8443 }],
    ['[2001:db8::9]', { host: '2001:db8::9', port: 7443 }],
    ['2001:db8::9', { host: '2001:db8::9', port: 7443 }],
  ];
  for (const [advertise, want] of cases)
    assert.deepEqual(advertisedAddress(points, advertise), want, advertise);
});

test('advertisedAddress: a malformed --advertise is LINKMUX_ERR_USAGE quoting it', () => {
  for (const advertise of [
    '',
    'host:0',
    'host:65536',
    'host:123456',
    'host:',
    'host:port',
    '[2001:db8::9',
    '[2001:db8::9]:',
    '[]:80',
    'http://host:80',
  ]) {
    const msg = usage(() => advertisedAddress(points, advertise));
    assert.ok(msg.includes(`--advertise ${advertise}:`), msg);
    assert.match(msg, /HOST or HOST:PORT/);
  }
});

test('advertisedAddress: --advertise must be an address other machines can dial', () => {
  const accepted = [':8443', 'a:b:c', 'a b', 'exa_mple!', '0.0.0.0', '::', '[::]:8443'].flatMap(
    (advertise) => {
      try {
        return [`${advertise} → ${JSON.stringify(advertisedAddress(points, advertise))}`];
      } catch (err) {
        return isLinkmuxError(err, 'LINKMUX_ERR_USAGE') && err.message.includes('--advertise')
          ? []
          : [String(err)];
      }
    },
  );
  assert.deepEqual(accepted, []);
});

test('advertisedAddress: HOST alone needs a listen port to borrow', () => {
  assert.deepEqual(advertisedAddress([], 'h:80'), { host: 'h', port: 80 });
  assert.match(
    usage(() => advertisedAddress([], 'h')),
    /--advertise h:/,
  );
});

test('advertisedAddress: a wildcard listen without --advertise is LINKMUX_ERR_USAGE naming --advertise', () => {
  for (const host of ['0.0.0.0', '::']) {
    const msg = usage(() => advertisedAddress([{ host, port: 7443 }], undefined));
    assert.match(msg, /--advertise HOST/);
    assert.ok(msg.includes(host), msg);
  }
  // With --advertise the wildcard is fine.
  assert.deepEqual(advertisedAddress([{ host: '0.0.0.0', port: 7443 }], '192.168.1.20'), {
    host: '192.168.1.20',
    port: 7443,
  });
  assert.match(
    usage(() => advertisedAddress([], undefined)),
    /no address to listen on/,
  );
});
