import assert from 'node:assert/strict';
import net from 'node:net';
import test from 'node:test';
import fc from 'fast-check';
import {
  canonicalIp,
  formatHost,
  formatHostPort,
  ipFamily,
  ipFromBytes,
  ipToBytes,
  isLoopbackHost,
  networkAddress,
  parseCidr,
  parseHostPort,
  sameHost,
  stripBrackets,
  unmapIPv4,
} from '../../src/net/address.js';

test('canonicalIp: one spelling per address; IPv4-mapped is the IPv4 address', () => {
  const table: Array<[string, string | undefined, (4 | 6)?]> = [
    ['1.2.3.4', '1.2.3.4', 4],
    ['::ffff:1.2.3.4', '1.2.3.4', 4],
    ['::FFFF:102:304', '1.2.3.4', 4],
    ['[::ffff:10.0.0.1]', '10.0.0.1', 4],
    ['0:0:0:0:0:ffff:a00:1', '10.0.0.1', 4],
    ['::1.2.3.4', '::102:304', 6], // IPv4-compatible, not mapped (ipaddr.js alone says mapped)
    ['::ffff:0:1.2.3.4', '::ffff:0:102:304', 6], // SIIT (RFC 6145), not mapped
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', 6],
    ['[2001:db8::1]', '2001:db8::1', 6],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1', 6], // longest run compressed
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', 6], // a single zero group is not
    ['fe80::1%eth0', 'fe80::1', 6], // zone dropped
    ['[fe80::1%eth0.100]', 'fe80::1', 6],
    ['::', '::', 6],
    ['::1', '::1', 6],
    ['127.1', undefined],
    ['0x7f.0.0.1', undefined],
    ['01.2.3.4', undefined],
    ['1.2.3.256', undefined],
    ['::ffff:01.2.3.4', undefined],
    ['::ffff:0x7f.0.0.1', undefined],
    [' 1.2.3.4', undefined],
    ['1::2::3', undefined],
    ['fe80::1%', undefined],
    ['fe80::1%a b', undefined],
    ['[::1', undefined],
    ['example.com', undefined],
    ['', undefined],
  ];
  for (const [input, ip, family] of table) {
    const got = canonicalIp(input);
    assert.deepEqual(got, ip === undefined ? undefined : { ip, family }, input);
  }
});

test('ipFamily agrees with net.isIP on strict literals and bad inputs', () => {
  for (const t of [
    '1.2.3.4',
    '::1',
    'fe80::1%eth0',
    '::ffff:1.2.3.4',
    '::1.2.3.4',
    '127.1',
    '[::1]',
    'x',
    '',
  ]) {
    assert.equal(ipFamily(t), net.isIP(t), t);
  }
  fc.assert(
    fc.property(
      fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string(), fc.domain()),
      (t) => ipFamily(t) === net.isIP(t),
    ),
    { numRuns: 2000 },
  );
});

test('host:port: format brackets IPv6, parse takes exactly what format writes', () => {
  assert.equal(formatHostPort({ host: '::1', port: 80 }), '[::1]:80');
  assert.equal(formatHostPort({ host: '[::1]', port: 80 }), '[::1]:80');
  assert.equal(formatHostPort({ host: 'fe80::1%eth0', port: 80 }), '[fe80::1%eth0]:80');
  assert.equal(formatHostPort({ host: '1.2.3.4', port: 80 }), '1.2.3.4:80');
  assert.equal(formatHostPort({ host: 'example.com', port: 443 }), 'example.com:443');
  assert.equal(formatHost('::1'), '[::1]');
  assert.equal(formatHost('example.com'), 'example.com');
  assert.equal(stripBrackets('[::1]'), '::1');
  assert.equal(stripBrackets('::1'), '::1');
  assert.equal(stripBrackets('[::1'), '[::1');

  const table: Array<[string, { host: string; port: number } | undefined]> = [
    ['[::1]:80', { host: '::1', port: 80 }],
    [' 127.0.0.1:9190 ', { host: '127.0.0.1', port: 9190 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['[::ffff:1.2.3.4]:1080', { host: '::ffff:1.2.3.4', port: 1080 }],
    ['::1:80', undefined], // unbracketed IPv6 is ambiguous
    ['[fe80::1%eth0]:80', undefined], // a zone names an interface of this host only
    ['[1.2.3.4]:80', undefined],
    ['[example.com]:80', undefined],
    ['1.2.3.4:65536', undefined],
    ['1.2.3.4', undefined],
    ['1.2.3.4:', undefined],
    ['a b:80', undefined],
    ['/run/x.sock', undefined],
  ];
  for (const [input, want] of table) assert.deepEqual(parseHostPort(input), want, input);
  for (const host of ['::1', '2001:db8::1', '10.0.0.1', 'example.com']) {
    assert.deepEqual(parseHostPort(formatHostPort({ host, port: 53 })), { host, port: 53 });
  }
});

test('bytes: text ↔ 4 or 16 bytes; mapped IPv6 spelled ::ffff:a.b.c.d', () => {
  const table: Array<[string, string, string]> = [
    // bytes, text from bytes, a spelling to parse
    ['01020304', '1.2.3.4', '1.2.3.4'],
    ['00000000000000000000000000000001', '::1', '0:0:0:0:0:0:0:1'],
    ['00000000000000000000ffff01020304', '::ffff:1.2.3.4', '::FFFF:102:304'],
    ['00000000000000000000000001020304', '::102:304', '::1.2.3.4'],
    ['20010db8000000000000000000000001', '2001:db8::1', '2001:DB8::1'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1', '2001:db8:0:1:0:0:0:1'],
    ['fe800000000000000000000000000001', 'fe80::1', 'FE80::1%eth0'],
    ['00000000000000000000000000000000', '::', '::'],
  ];
  for (const [hex, text, spelling] of table) {
    const buf = Buffer.from(hex, 'hex');
    assert.equal(ipFromBytes(Buffer.concat([Buffer.from([9]), buf]), 1, buf.length as 4 | 16), text, hex);
    assert.equal(ipToBytes(spelling)?.toString('hex'), hex, spelling);
    assert.equal(ipToBytes(text)?.toString('hex'), hex, text);
  }
  assert.equal(ipToBytes('example.com'), undefined);
  assert.equal(ipToBytes('[::1]'), undefined);
});

test('unmapIPv4 and sameHost follow the mapped rule', () => {
  assert.equal(unmapIPv4('::ffff:1.2.3.4'), '1.2.3.4');
  assert.equal(unmapIPv4('::ffff:102:304'), '1.2.3.4');
  assert.equal(unmapIPv4('::1'), '::1');
  assert.equal(unmapIPv4('1.2.3.4'), '1.2.3.4');
  assert.equal(unmapIPv4('example.com'), 'example.com');
  assert.equal(sameHost('[2001:DB8:0::1]', '2001:db8::1'), true);
  assert.equal(sameHost('::ffff:10.0.0.1', '10.0.0.1'), true);
  assert.equal(sameHost('10.0.0.1', '10.0.0.2'), false);
  assert.equal(sameHost('eth0', 'eth0'), true);
});

test('parseCidr is strict', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 4 });
  assert.deepEqual(parseCidr('2001:db8::/32'), { address: '2001:db8::', prefix: 32, family: 6 });
  assert.deepEqual(parseCidr('10.1.2.3'), { address: '10.1.2.3', prefix: 32, family: 4 });
  assert.deepEqual(parseCidr('::1'), { address: '::1', prefix: 128, family: 6 });
  for (const bad of [
    '10.0.0.0/',
    '10.0.0.0/33',
    '::/129',
    '10.0.0.0/8/8',
    'fe80::%eth0/64',
    '10/8',
    ' 10.0.0.0/8',
    '10.0.0.0/+8',
    '[::1]/128',
    'x/8',
  ]) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
});

test('networkAddress clears host bits and prints the canonical network', () => {
  const table: Array<[string, number, string | undefined]> = [
    ['10.1.2.3', 8, '10.0.0.0'],
    ['10.1.2.3', 32, '10.1.2.3'],
    ['10.1.2.3', 0, '0.0.0.0'],
    ['2001:DB8::1', 32, '2001:db8::'],
    ['2001:db8:0:1::1', 64, '2001:db8:0:1::'],
    ['fe80::1%eth0', 10, 'fe80::'],
    ['::ffff:10.1.2.3', 120, '::ffff:a01:200'], // IPv6 prefix arithmetic on the IPv6 form
    ['10.1.2.3', 33, undefined],
    ['example.com', 8, undefined],
  ];
  for (const [address, prefix, want] of table)
    assert.equal(networkAddress(address, prefix), want, `${address}/${prefix}`);
});

test('isLoopbackHost: 127/8 and ::1 in any spelling, and "localhost"', () => {
  for (const h of [
    'localhost',
    'LOCALHOST',
    '127.0.0.1',
    '127.9.9.9',
    '::1',
    '[::1]',
    '0:0:0:0:0:0:0:1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
  ]) {
    assert.equal(isLoopbackHost(h), true, h);
  }
  for (const h of [
    '0.0.0.0',
    '::',
    '10.0.0.1',
    '::ffff:10.0.0.1',
    'localhost.example.com',
    '128.0.0.1',
    '::2',
  ]) {
    assert.equal(isLoopbackHost(h), false, h);
  }
});

test('the dotted-quad fast path (net.isIPv4) takes exactly what ipaddr.js takes as four decimal parts', async () => {
  const { createRequire } = await import('node:module');
  const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof import('ipaddr.js');
  const fixed = [
    '0.0.0.0',
    '255.255.255.255',
    '256.1.1.1',
    '01.2.3.4',
    '1.2.3',
    '1.2.3.4.5',
    ' 1.2.3.4',
    '1.2.3.4\n',
    '1..2.3',
    '1.2.3.04',
    '0x1.2.3.4',
    '1.2.3.-4',
    '١.٢.٣.٤',
  ];
  for (const s of fixed) assert.equal(net.isIPv4(s), ipaddr.IPv4.isValidFourPartDecimal(s), s);
  const part = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.stringMatching(/^[0-9x.]{0,4}$/));
  fc.assert(
    fc.property(fc.array(part, { minLength: 1, maxLength: 6 }), (parts) => {
      const s = parts.join('.');
      assert.equal(net.isIPv4(s), ipaddr.IPv4.isValidFourPartDecimal(s), s);
      if (net.isIPv4(s)) {
        assert.deepEqual(canonicalIp(s), { ip: ipaddr.IPv4.parse(s).toString(), family: 4 });
        assert.deepEqual([...ipToBytes(s)!], ipaddr.IPv4.parse(s).toByteArray());
      }
    }),
    { numRuns: 2_000 },
  );
});
