// SOCKS5 server messages against exact hex (RFC 1928 §3/§6, RFC 1929 §2), the
// REP code chosen for each kind of dial failure, and the address codec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  REP,
  encodeAuthStatus,
  encodeErrorAnswer,
  encodeMethodSelection,
  encodeReply,
  replyCodeForDialError,
} from '../../src/socks5/socks5-replies.js';
import { ipFromBytes, ipToBytes } from '../../src/net/address.js';
import { encodeAddress } from '../../src/socks5/socks5-address.js';
import { LinkmuxError } from '../../src/util/errors.js';
import type { ErrorCode } from '../../src/util/errors.js';

const hex = (b: Buffer | undefined) => b?.toString('hex');

test('method selection and auth status bytes', () => {
  assert.equal(hex(encodeMethodSelection(0x00)), '0500');
  assert.equal(hex(encodeMethodSelection(0x02)), '0502');
  assert.equal(hex(encodeMethodSelection(0xff)), '05ff');
  assert.equal(hex(encodeAuthStatus(true)), '0100');
  assert.equal(hex(encodeAuthStatus(false)), '0101');
});

test('reply bytes: IPv4, IPv6, IPv4-mapped, and the 0.0.0.0:0 default', () => {
  assert.equal(hex(encodeReply(REP.SUCCEEDED, { host: '127.0.0.1', port: 0x1f90 })), '050000017f0000011f90');
  assert.equal(
    hex(encodeReply(REP.SUCCEEDED, { host: '2001:db8::2', port: 443 })),
    '05000004' + '20010db8000000000000000000000002' + '01bb',
  );
  assert.equal(
    hex(encodeReply(REP.SUCCEEDED, { host: '::ffff:192.0.2.1', port: 1 })),
    '05000001c00002010001',
  );
  assert.equal(hex(encodeReply(REP.CONNECTION_REFUSED)), '05050001000000000000');
  assert.equal(hex(encodeReply(REP.COMMAND_NOT_SUPPORTED)), '05070001000000000000');
  assert.equal(hex(encodeReply(REP.ADDRESS_TYPE_NOT_SUPPORTED)), '05080001000000000000');
});

test('answers to malformed input', () => {
  assert.equal(encodeErrorAnswer({ kind: 'close' }), undefined);
  assert.equal(hex(encodeErrorAnswer({ kind: 'no-acceptable-methods' })), '05ff');
  assert.equal(hex(encodeErrorAnswer({ kind: 'reply', rep: 0x01 })), '05010001000000000000');
});

const sys = (code: string) => Object.assign(new Error(`connect ${code}`), { code });
const lmx = (code: ErrorCode, cause?: unknown) => new LinkmuxError(code, 'x', { cause });

const dialCases: Array<[string, unknown, number]> = [
  ['the destination refused', lmx('LINKMUX_ERR_REFUSED', sys('ECONNREFUSED')), 0x05],
  ['a relay reports the destination refused (no cause)', lmx('LINKMUX_ERR_REFUSED'), 0x05],
  ['the link failed: no route out of it', lmx('LINKMUX_ERR_CONNECT', sys('ENETUNREACH')), 0x03],
  ['the link failed, however (the cause is not read)', lmx('LINKMUX_ERR_CONNECT', sys('EHOSTUNREACH')), 0x03],
  ['the far side cannot reach the destination', lmx('LINKMUX_ERR_UNREACHABLE'), 0x04],
  [
    'a refusal wrapped by something else is not dug out',
    lmx('LINKMUX_ERR_ALL_LINKS_FAILED', lmx('LINKMUX_ERR_REFUSED')),
    0x03,
  ],
  ['kernel timeout', lmx('LINKMUX_ERR_TIMEOUT', sys('ETIMEDOUT')), 0x04],
  ['linkmux connect timeout', lmx('LINKMUX_ERR_TIMEOUT'), 0x04],
  ['DNS', lmx('LINKMUX_ERR_DNS', sys('ENOTFOUND')), 0x04],
  ['denied by the dialer rules', lmx('LINKMUX_ERR_DENIED'), 0x02],
  ['no links', lmx('LINKMUX_ERR_NO_LINKS'), 0x03],
  ['all links failed, no errno', lmx('LINKMUX_ERR_ALL_LINKS_FAILED'), 0x03],
  ['aborted', lmx('LINKMUX_ERR_ABORTED'), 0x01],
  ['other connect failure of the link', lmx('LINKMUX_ERR_CONNECT', sys('EADDRNOTAVAIL')), 0x03],
  ['a link that cannot carry it', lmx('LINKMUX_ERR_LINK_CAPABILITY'), 0x01],
  ['bare system error', sys('ECONNREFUSED'), 0x05],
  ['not an error at all', 'boom', 0x01],
];
for (const [name, err, rep] of dialCases) {
  test(`replyCodeForDialError: ${name} -> 0x0${rep}`, () => {
    assert.equal(replyCodeForDialError(err), rep);
  });
}

test('IPv6 text is RFC 5952 and parses back to the same bytes', () => {
  const cases: Array<[string, string]> = [
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
    ['20010db8000100010001000100010001', '2001:db8:1:1:1:1:1:1'],
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    ['20010000000000010000000000000000', '2001:0:0:1::'],
    ['fe800000000000000000abcdef012345', 'fe80::abcd:ef01:2345'],
    ['00000000000000000000ffff7f000001', '::ffff:127.0.0.1'],
  ];
  for (const [bytes, text] of cases) {
    assert.equal(ipFromBytes(Buffer.from(bytes, 'hex'), 0, 16), text, bytes);
    assert.equal(ipToBytes(text)?.toString('hex'), bytes, text);
  }
  assert.equal(ipToBytes('FE80::1%eth0')?.toString('hex'), 'fe800000000000000000000000000001');
  assert.equal(ipToBytes('::1.2.3.4')?.toString('hex'), '00000000000000000000000001020304');
  assert.equal(ipToBytes('example.com'), undefined);
  assert.equal(ipToBytes('1.2.3.4')?.toString('hex'), '01020304');
});

test('encodeAddress: brackets stripped, domains length-prefixed, oversize names refused', () => {
  assert.equal(
    encodeAddress('[::1]', 80).toString('hex'),
    '04' + '00000000000000000000000000000001' + '0050',
  );
  assert.equal(encodeAddress('a.b', 1).toString('hex'), '0303612e620001');
  assert.throws(() => encodeAddress('x'.repeat(256), 1), RangeError);
});
