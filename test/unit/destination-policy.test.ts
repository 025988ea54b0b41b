/**
 * DestinationPolicy with tables: every refused class in IPv4, IPv6 and
 * IPv4-mapped spellings (dotted and hex), what stays open (the internet, and
 * the 198.18.0.0/15 benchmark range the testbed uses as one), the allow-list
 * opening exactly what it names and never crossing families, non-literals
 * refused, and bad allow entries refused with LINKMUX_ERR_CONFIG naming them.
 * Also the shared parseCidr / canonicalIp it is built on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DestinationPolicy } from '../../src/relay/destination-policy.js';
import { canonicalIp, parseCidr } from '../../src/net/address.js';
import { isLinkmuxError } from '../../src/util/errors.js';

/** [address, what the reason calls it]; each one refused by default. */
const REFUSED: Array<[string, string]> = [
  ['0.0.0.0', 'the unspecified address'],
  ['::', 'the unspecified address'],
  ['0.1.2.3', 'a "this network" address (0.0.0.0/8)'],
  ['0.255.255.255', 'a "this network" address'],
  ['127.0.0.1', 'a loopback address'],
  ['127.255.255.254', 'a loopback address'],
  ['::1', 'a loopback address'],
  ['0:0:0:0:0:0:0:1', 'a loopback address'],
  ['10.0.0.1', 'a private address (RFC 1918)'],
  ['10.255.255.255', 'a private address'],
  ['172.16.0.1', 'a private address'],
  ['172.31.255.255', 'a private address'],
  ['192.168.1.10', 'a private address'],
  ['100.64.0.1', 'a carrier-grade NAT address (100.64.0.0/10)'],
  ['100.127.255.255', 'a carrier-grade NAT address'],
  ['169.254.169.254', 'a link-local address'], // cloud metadata services live here
  ['fe80::1', 'a link-local address'],
  ['febf:ffff::1', 'a link-local address'],
  ['fc00::1', 'a unique local address (private IPv6, fc00::/7)'],
  ['fd12:3456:789a::1', 'a unique local address'],
  ['224.0.0.1', 'a multicast address'],
  ['239.255.255.250', 'a multicast address'],
  ['ff02::1', 'a multicast address'],
  ['255.255.255.255', 'the broadcast address'],
  ['240.0.0.1', 'a reserved address (240.0.0.0/4)'],
  ['::7f00:1', 'a deprecated IPv4-compatible IPv6 address (::/96)'],
  ['::10.0.0.1', 'a deprecated IPv4-compatible IPv6 address'],
];

/** IPv4-mapped spellings of refused IPv4 addresses, with the IPv4 address each stands for. */
const MAPPED: Array<[string, string, string]> = [
  ['::ffff:127.0.0.1', '127.0.0.1', 'a loopback address'],
  ['::FFFF:127.0.0.1', '127.0.0.1', 'a loopback address'],
  ['::ffff:7f00:1', '127.0.0.1', 'a loopback address'],
  ['0:0:0:0:0:ffff:7f00:1', '127.0.0.1', 'a loopback address'],
  ['::ffff:10.1.2.3', '10.1.2.3', 'a private address'],
  ['::ffff:c0a8:10a', '192.168.1.10', 'a private address'],
  ['::ffff:169.254.169.254', '169.254.169.254', 'a link-local address'],
  ['::ffff:100.64.0.1', '100.64.0.1', 'a carrier-grade NAT address'],
  ['::ffff:0.0.0.0', '0.0.0.0', 'the unspecified address'],
  ['::ffff:0.1.2.3', '0.1.2.3', 'a "this network" address'],
  ['::ffff:224.0.0.1', '224.0.0.1', 'a multicast address'],
  ['::ffff:255.255.255.255', '255.255.255.255', 'the broadcast address'],
];

/** The internet, and its neighbours just outside each refused range. */
const OPEN = [
  '198.18.0.1', // RFC 2544 benchmarking: the testbed's "internet", deliberately open
  '198.19.255.254',
  '::ffff:198.18.100.2',
  '8.8.8.8',
  '1.1.1.1',
  '203.0.113.7',
  '1.0.0.0',
  '9.255.255.255',
  '11.0.0.0',
  '100.63.255.255',
  '100.128.0.0',
  '126.255.255.255',
  '128.0.0.0',
  '169.253.255.255',
  '169.255.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '192.167.255.255',
  '192.169.0.0',
  '223.255.255.255',
  '2001:db8::1',
  '2606:4700:4700::1111',
  '::2:0:0', // just above ::/96
  'fbff:ffff::1',
  'fec0::1', // old site-local: no longer special
  'fe00::1',
  '::ffff:8.8.8.8',
  '64:ff9b::808:808',
];

test('refused by default: each special-purpose class, with a reason naming it and the fix', () => {
  const policy = new DestinationPolicy([]);
  for (const [ip, what] of REFUSED) {
    const v = policy.check(ip);
    assert.equal(v.allowed, false, ip);
    // A non-canonical spelling is followed by the canonical one: "0:0:0:0:0:0:0:1 (::1) is …".
    assert.ok(!v.allowed && v.reason.startsWith(`${ip} `), `${ip}: ${JSON.stringify(v)}`);
    assert.ok(!v.allowed && v.reason.includes(` is ${what}`), `${ip}: ${JSON.stringify(v)}`);
    assert.ok(!v.allowed && v.reason.endsWith('; add it to node.allow to open it'), ip);
  }
  assert.deepEqual(policy.check('127.0.0.1'), {
    allowed: false,
    reason: '127.0.0.1 is a loopback address; add it to node.allow to open it',
  });
});

test('IPv4-mapped IPv6, dotted or hex, is judged as the IPv4 address it stands for', () => {
  const policy = new DestinationPolicy([]);
  for (const [ip, v4, what] of MAPPED) {
    const v = policy.check(ip);
    assert.ok(!v.allowed, ip);
    assert.ok(
      !v.allowed && v.reason.startsWith(`${ip} (IPv4-mapped ${v4}) is ${what}`),
      `${ip}: ${JSON.stringify(v)}`,
    );
  }
});

test('open by default: the internet, 198.18.0.0/15, and the edges of every refused range', () => {
  const policy = new DestinationPolicy([]);
  for (const ip of OPEN) assert.deepEqual(policy.check(ip), { allowed: true }, ip);
});

test('IPv6 with a zone or in brackets is judged by its address', () => {
  const policy = new DestinationPolicy([]);
  const v = policy.check('fe80::1%eth0');
  assert.ok(
    !v.allowed && v.reason.startsWith('fe80::1%eth0 (fe80::1) is a link-local address'),
    JSON.stringify(v),
  );
  assert.equal(policy.check('[::1]').allowed, false);
  assert.deepEqual(policy.check('[2001:db8::1]'), { allowed: true });
});

test('not an IP literal: refused, telling the caller to resolve and check each address', () => {
  const policy = new DestinationPolicy(['0.0.0.0/0', '::/0']);
  for (const text of [
    'localhost',
    'example.org',
    '',
    '10.0.0.256',
    '0177.0.0.1',
    '127.1',
    '1.2.3.4/32',
    '::ffff:1.2.3',
  ]) {
    const v = policy.check(text);
    assert.deepEqual(
      v,
      {
        allowed: false,
        reason: `${JSON.stringify(text)} is not an IP address: resolve the name and check each address`,
      },
      text,
    );
  }
});

test('the allow-list opens exactly what it names, and mapped forms with it', () => {
  const policy = new DestinationPolicy([
    '192.168.1.0/24',
    '127.0.0.1',
    'fd00:1::/32',
    '::1',
    ' 10.9.0.0/16 ',
  ]);
  const cases: Array<[string, boolean]> = [
    ['192.168.1.1', true],
    ['192.168.1.255', true],
    ['::ffff:192.168.1.7', true],
    ['::ffff:c0a8:107', true],
    ['192.168.2.1', false],
    ['127.0.0.1', true],
    ['::ffff:127.0.0.1', true],
    ['127.0.0.2', false],
    ['fd00:1::5', true],
    ['fd00:1:ffff::5', true],
    ['fd00:2::5', false],
    ['::1', true],
    ['10.9.1.1', true],
    ['10.8.1.1', false],
    ['8.8.8.8', true], // open anyway
    ['169.254.1.1', false],
  ];
  for (const [ip, allowed] of cases) assert.equal(policy.check(ip).allowed, allowed, ip);
});

test('allow-list entries never cross families, except IPv4-mapped networks standing for IPv4 ones', () => {
  // ::/0 is every IPv6 address, but IPv4 destinations are not IPv6 ones in disguise.
  const v6all = new DestinationPolicy(['::/0']);
  assert.equal(v6all.check('::1').allowed, true);
  assert.equal(v6all.check('fd00::1').allowed, true);
  assert.equal(v6all.check('127.0.0.1').allowed, false);
  assert.equal(v6all.check('::ffff:127.0.0.1').allowed, false);
  const v4all = new DestinationPolicy(['0.0.0.0/0']);
  assert.equal(v4all.check('10.0.0.1').allowed, true);
  assert.equal(v4all.check('::ffff:10.0.0.1').allowed, true);
  assert.equal(v4all.check('::1').allowed, false);
  assert.equal(v4all.check('fe80::1').allowed, false);
  // ::ffff:10.0.0.0/104 is 10.0.0.0/8 written as IPv6.
  const mapped = new DestinationPolicy(['::ffff:10.0.0.0/104']);
  assert.equal(mapped.check('10.1.2.3').allowed, true);
  assert.equal(mapped.check('::ffff:10.1.2.3').allowed, true);
  assert.equal(mapped.check('11.0.0.1').allowed, true); // public anyway
  assert.equal(mapped.check('192.168.0.1').allowed, false);
});

test('a bad allow-list entry is LINKMUX_ERR_CONFIG naming node.allow[i] and the entry', () => {
  const bad = [
    '10.0.0.0/33',
    '2001:db8::/129',
    '10.0.0.0/',
    '10.0.0.0/8/16',
    '10.0.0.0/-1',
    '10.0.0.0/8.5',
    'example.org/8',
    'localhost',
    '',
    'fe80::%eth0/64',
    '10.0.0.256/8',
  ];
  for (const entry of bad) {
    assert.throws(
      () => new DestinationPolicy(['192.168.1.0/24', entry]),
      (err: unknown) => {
        assert.ok(isLinkmuxError(err, 'LINKMUX_ERR_CONFIG'), String(err));
        assert.equal(
          err.message,
          `node.allow[1]: ${JSON.stringify(entry)} is not a network like 192.168.1.0/24 or fd00::/8`,
        );
        return true;
      },
      entry,
    );
  }
  for (const good of ['0.0.0.0/0', '::/0', '10.0.0.0/32', '2001:db8::1', '192.168.1.77/24']) {
    assert.doesNotThrow(() => new DestinationPolicy([good]), good);
  }
});

test('parseCidr and canonicalIp', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 4 });
  assert.deepEqual(parseCidr('2001:db8::/32'), { address: '2001:db8::', prefix: 32, family: 6 });
  assert.deepEqual(parseCidr('203.0.113.7'), { address: '203.0.113.7', prefix: 32, family: 4 });
  assert.deepEqual(parseCidr('::1'), { address: '::1', prefix: 128, family: 6 });
  for (const bad of ['', '/8', '10.0.0.0/', ' 10.0.0.0/8', '10.0.0.0/0008', 'fe80::1%eth0']) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
  const cases: Array<[string, string | undefined]> = [
    ['10.0.0.1', '10.0.0.1'],
    ['::ffff:a00:1', '10.0.0.1'],
    ['::FFFF:10.0.0.1', '10.0.0.1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['::', '::'],
    ['example.org', undefined],
    ['10.0.0.256', undefined],
  ];
  for (const [text, ip] of cases) assert.equal(canonicalIp(text)?.ip, ip, text);
});
