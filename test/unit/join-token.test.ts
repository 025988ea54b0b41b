/**
 * Join tokens: the byte layout against hand-made hex, round trips, and every
 * way a pasted token goes wrong (empty, not a token, another version, a stray
 * character, cut short by any number of characters, one character changed,
 * two swapped, well-formed bytes holding bad fields) each told apart by its
 * message, with quotes, spaces and wrapped lines forgiven, and the secret in
 * no message at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  TOKEN_PREFIX,
  decodeJoinToken,
  encodeJoinToken,
  newTokenSecret,
  normalizeFingerprint,
} from '../../src/links/join-token.js';
import type { JoinToken } from '../../src/links/join-token.js';
import { isLinkmuxError } from '../../src/util/errors.js';

const FINGERPRINT = '3f2a9c41d0e8b7aa00112233445566778899aabbccddeeff0123456789abcdef';
// 32 bytes 0x00..0x1f: recognisable in hex, and a valid canonical secret.
const SECRET = Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64url');

const TOKEN: JoinToken = {
  name: 'office-pc',
  host: '198.18.100.2',
  port: 7300,
  fingerprint: FINGERPRINT,
  secret: SECRET,
  links: ['eth0', 'wlan0'],
};

const MESSAGES = {
  empty: /^the join token is empty: paste the whole line `linkmux node` printed$/,
  notToken:
    /^not a linkmux join token: it should start with lmx1_; copy the whole line `linkmux node` printed$/,
  version:
    /^this join token has format version \d+ \(lmx\d+_\), which this linkmux does not read: update linkmux/,
  badChar: /^the join token holds ".+" at character \d+, which no token holds/,
  damaged: /^the join token is damaged or truncated: copy it again/,
  malformed: /^the join token is malformed \(/,
  badFields: /^the join token holds bad fields: /,
};

/** Asserts decode fails with LINKMUX_ERR_TOKEN, a message matching `message`, and no secret in it. */
function rejects(text: string, message: RegExp, secret = SECRET): string {
  let caught: unknown;
  try {
    decodeJoinToken(text);
  } catch (err) {
    caught = err;
  }
  assert.ok(isLinkmuxError(caught, 'LINKMUX_ERR_TOKEN'), `${JSON.stringify(text)}: ${String(caught)}`);
  assert.match(caught.message, message, JSON.stringify(text));
  assert.ok(!caught.message.includes(secret), `secret in: ${caught.message}`);
  return caught.message;
}

/** A token from raw payload bytes with a correct checksum: how a buggy or hostile writer makes one. */
function rawToken(payload: Buffer): string {
  const sum = createHash('sha256').update(payload).digest().subarray(0, 4);
  return TOKEN_PREFIX + Buffer.concat([payload, sum]).toString('base64url');
}

/** The version 1 payload, field by field, for crafting bad ones. */
function payload(
  fields: { port?: number; name?: string; host?: string; links?: string[]; tail?: number[] } = {},
) {
  const text = (s: string) =>
    Buffer.concat([Buffer.from([Buffer.byteLength(s, 'latin1')]), Buffer.from(s, 'latin1')]);
  const port = Buffer.alloc(2);
  port.writeUInt16BE(fields.port ?? 7300);
  const links = fields.links ?? [];
  return Buffer.concat([
    Buffer.from(FINGERPRINT, 'hex'),
    Buffer.from(SECRET, 'base64url'),
    port,
    text(fields.name ?? 'office-pc'),
    text(fields.host ?? '198.18.100.2'),
    Buffer.from([links.length]),
    ...links.map(text),
    Buffer.from(fields.tail ?? []),
  ]);
}

test('the layout is byte-exact: fingerprint, secret, port, name, host, links, 4-byte SHA-256 checksum', () => {
  const expected = Buffer.from(
    [
      FINGERPRINT,
      '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', // secret
      '1c84', // 7300
      '09 6f66666963652d7063', // "office-pc"
      '0c 3139382e31382e3130302e32', // "198.18.100.2"
      '02 04 65746830 05 776c616e30', // 2 links: "eth0", "wlan0"
    ]
      .join('')
      .replace(/\s+/g, ''),
    'hex',
  );
  const sum = createHash('sha256').update(expected).digest().subarray(0, 4);
  const token = encodeJoinToken(TOKEN);
  assert.ok(token.startsWith('lmx1_'));
  assert.equal(
    Buffer.from(token.slice(5), 'base64url').toString('hex'),
    Buffer.concat([expected, sum]).toString('hex'),
  );
  assert.equal(token, rawToken(payload({ links: ['eth0', 'wlan0'] })));
  // One line in any terminal: well under 160 characters for a typical node.
  assert.ok(token.length < 160, `${token.length} characters`);
  assert.match(token, /^lmx1_[A-Za-z0-9_-]+$/);
});

test('round trip: IPv4, IPv6 and name hosts, no links or several, field extremes', () => {
  const cases: JoinToken[] = [
    TOKEN,
    { ...TOKEN, links: [] },
    { ...TOKEN, host: '2001:db8::7', port: 1 },
    { ...TOKEN, host: 'office-pc.lan', port: 65535 },
    { ...TOKEN, host: 'node.example.org.' },
    { ...TOKEN, name: 'a' },
    { ...TOKEN, name: 'N_.-'.repeat(8) }, // 32 characters
    { ...TOKEN, host: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}` }, // 253
    { ...TOKEN, links: Array.from({ length: 16 }, (_, i) => `veth${i}`) },
    { ...TOKEN, links: ['enp3s0.100', 'wg+0', 'usb@1', 'x'.repeat(32)] },
    { ...TOKEN, secret: newTokenSecret(), fingerprint: 'f'.repeat(64) },
  ];
  for (const t of cases) {
    const token = encodeJoinToken(t);
    assert.deepEqual(decodeJoinToken(token), t, JSON.stringify(t));
  }
  assert.match(newTokenSecret(), /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(newTokenSecret(), newTokenSecret());
});

test('quotes, surrounding whitespace and line breaks inside are forgiven', () => {
  const token = encodeJoinToken(TOKEN);
  const wrapped = `${token.slice(0, 40)}\n${token.slice(40, 80)}\r\n  ${token.slice(80)}`;
  for (const text of [
    `  ${token}  `,
    `${token}\n`,
    `\t"${token}"\n`,
    `'${token}'`,
    `\`${token}\``,
    `" ${token} "`,
    wrapped,
    `"${wrapped}"`,
  ]) {
    assert.deepEqual(decodeJoinToken(text), TOKEN, JSON.stringify(text));
  }
});

test('empty: nothing, spaces, or empty quotes', () => {
  for (const text of ['', '   ', '\n\t', '""', "''", '" "']) rejects(text, MESSAGES.empty);
});

test('not a token: anything not starting with lmx1_, the secret pasted alone included', () => {
  const token = encodeJoinToken(TOKEN);
  for (const text of [
    'hello',
    SECRET, // the password by itself: refused without quoting it
    `${SECRET}${token}`,
    'lmx1',
    `lmx1${token.slice(5)}`,
    `lmx_${token.slice(5)}`,
    `LMX1_${token.slice(5)}`, // base64url is case-sensitive: an upper-cased token is not this token
    `x${token}`,
    `"${token}`, // an unmatched quote is kept, so the prefix is wrong
    'linkmux node --token',
  ]) {
    rejects(text, MESSAGES.notToken);
  }
});

test('another format version is told apart from garbage', () => {
  const body = encodeJoinToken(TOKEN).slice(5);
  const message = rejects(`lmx2_${body}`, MESSAGES.version);
  assert.match(message, /version 2 \(lmx2_\)/);
  rejects(`lmx10_${body}`, /version 10 \(lmx10_\)/);
  rejects(`lmx0_${body}`, MESSAGES.version);
});

test('a character no token holds is named with its position', () => {
  const token = encodeJoinToken(TOKEN);
  const cases: Array<[string, string, number]> = [
    [`${token.slice(0, 20)}+${token.slice(21)}`, '+', 21],
    [`${token.slice(0, 30)}/${token.slice(31)}`, '/', 31],
    [`${token}=`, '=', token.length + 1],
    [`${token.slice(0, 9)}é${token.slice(10)}`, 'é', 10],
    [`${token.slice(0, 12)}"${token.slice(12)}`, '"', 13],
  ];
  for (const [text, char, position] of cases) {
    const message = rejects(text, MESSAGES.badChar);
    assert.ok(message.includes(`${JSON.stringify(char)} at character ${position},`), message);
  }
});

test('cut short by any number of characters: damaged or truncated, never a crash or a wrong token', () => {
  const token = encodeJoinToken(TOKEN);
  for (let n = 1; n <= token.length - TOKEN_PREFIX.length; n++) {
    rejects(token.slice(0, token.length - n), MESSAGES.damaged);
  }
  // Cut at the front, after the prefix, too.
  for (let n = 1; n < 10; n++) rejects(TOKEN_PREFIX + token.slice(TOKEN_PREFIX.length + n), MESSAGES.damaged);
  // One character too many.
  rejects(`${token}A`, MESSAGES.damaged);
  rejects(`${token}AAAA`, MESSAGES.damaged);
});

test('one character changed anywhere, or two swapped: damaged (spare bits of the last one included)', () => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  // 105, 94 and 98 bytes: the last character carries 0, 4 and 2 spare bits.
  for (const t of [TOKEN, { ...TOKEN, links: [] }, { ...TOKEN, links: ['eth'] }]) {
    const token = encodeJoinToken(t);
    for (let i = TOKEN_PREFIX.length; i < token.length; i++) {
      const at = token[i] as string;
      // Every other character at the last position (where spare bits hide), a few elsewhere.
      const others =
        i === token.length - 1 ? [...alphabet] : [alphabet[(alphabet.indexOf(at) + 1) % 64]!, 'x', '0'];
      for (const c of others) {
        if (c === at) continue;
        rejects(token.slice(0, i) + c + token.slice(i + 1), MESSAGES.damaged);
      }
    }
    for (let i = TOKEN_PREFIX.length; i < token.length - 1; i++) {
      if (token[i] === token[i + 1]) continue;
      rejects(token.slice(0, i) + token[i + 1] + token[i] + token.slice(i + 2), MESSAGES.damaged);
    }
  }
});

test('bad fields behind a good checksum are each named', () => {
  const cases: Array<[Parameters<typeof payload>[0], RegExp]> = [
    [{ port: 0 }, /port: 0 is not a port from 1 to 65535/],
    [{ name: 'office pc' }, /name: "office pc" is not 1-32 characters/],
    [{ name: 'x'.repeat(33) }, /name: "x{33}" is not 1-32 characters/],
    [{ name: '' }, /name: "" is not/],
    [{ name: 'caf\u00e9' }, /name: "café" is not/],
    [{ host: '' }, /host: "" is neither an IP address nor a host name/],
    [{ host: 'bad host' }, /host: "bad host" is neither/],
    [{ host: '10.0.0.256' }, /host: "10.0.0.256" is neither/],
    [{ host: '-lead.example' }, /host: "-lead.example" is neither/],
    [{ host: 'fe80::1%eth0' }, /host: "fe80::1%eth0" is neither/],
    [{ host: '[2001:db8::1]' }, /host: "\[2001:db8::1\]" is neither/],
    [{ links: ['eth0', 'eth0'] }, /links\[1\]: "eth0" is listed twice/],
    [{ links: ['eth/0'] }, /links\[0\]: "eth\/0" is not a link id/],
    [{ links: [''] }, /links\[0\]: "" is not a link id/],
  ];
  for (const [fields, message] of cases) {
    const text = rejects(rawToken(payload(fields)), MESSAGES.badFields);
    assert.match(text, message, JSON.stringify(fields));
    assert.match(text, /get a new one with `linkmux node --token` on that machine$/);
  }
  // Several at once: all of them, in layout order.
  const text = rejects(rawToken(payload({ port: 0, name: 'a b', host: 'x y' })), MESSAGES.badFields);
  assert.match(text, /port: .*; name: .*; host: /);
});

test('a layout that does not add up behind a good checksum is malformed', () => {
  const cases: Array<[Buffer, RegExp]> = [
    [payload({ tail: [0] }), /1 bytes follow the last field/],
    [payload({ tail: [1, 2, 3] }), /3 bytes follow the last field/],
    [payload().subarray(0, 10), /it ends inside the fingerprint/],
    [payload().subarray(0, 40), /it ends inside the secret/],
    [payload().subarray(0, 65), /it ends inside the port/],
    [payload().subarray(0, 70), /it ends inside the name/],
    [payload().subarray(0, payload().length - 1), /it ends inside the link count/],
    [Buffer.concat([payload().subarray(0, -1), Buffer.from([17])]), /17 links, at most 16/],
    [Buffer.concat([payload().subarray(0, -1), Buffer.from([2, 4, 0x65])]), /it ends inside link 1/],
    [Buffer.from([1]), /it ends inside the fingerprint/],
  ];
  for (const [bytes, message] of cases) {
    const text = rejects(rawToken(bytes), MESSAGES.malformed);
    assert.match(text, message);
  }
});

test('encode refuses bad fields, naming each and never quoting the secret', () => {
  const cases: Array<[Partial<JoinToken>, RegExp]> = [
    [{ name: 'has space' }, /name: "has space"/],
    [{ host: 'a b' }, /host: "a b"/],
    [{ port: 0 }, /port: 0/],
    [{ port: 70000 }, /port: 70000/],
    [{ port: 80.5 }, /port: 80.5/],
    [{ fingerprint: FINGERPRINT.toUpperCase() }, /fingerprint: must be 64 lowercase hex digits/],
    [{ fingerprint: 'ab:cd' }, /fingerprint: /],
    [{ secret: 'hunter2' }, /secret: must be 43 base64url characters/],
    [{ secret: `${SECRET.slice(0, 42)}B` }, /secret: /], // spare bits set: not canonical
    [{ links: ['a', 'a'] }, /links\[1\]: "a" is listed twice/],
    [{ links: Array.from({ length: 17 }, (_, i) => `l${i}`) }, /links: must be a list of at most 16/],
  ];
  for (const [fields, message] of cases) {
    const t = { ...TOKEN, ...fields };
    assert.throws(
      () => encodeJoinToken(t),
      (err: unknown) => {
        assert.ok(isLinkmuxError(err, 'LINKMUX_ERR_TOKEN'), String(err));
        assert.match(err.message, /^cannot make a join token: /);
        assert.match(err.message, message);
        assert.ok(!err.message.includes(t.secret), err.message);
        return true;
      },
      JSON.stringify(fields),
    );
  }
});

test('normalizeFingerprint: bare hex or colon pairs, any case, openssl prefix; anything else is TOKEN', () => {
  const pairs = FINGERPRINT.toUpperCase().match(/../g)!.join(':');
  for (const text of [
    FINGERPRINT,
    FINGERPRINT.toUpperCase(),
    pairs,
    pairs.toLowerCase(),
    ` ${pairs}\n`,
    `sha256 Fingerprint=${pairs}`,
    `SHA256 Fingerprint=${pairs}`,
    `SHA256:${FINGERPRINT}`,
    `sha-256: ${pairs}`,
  ]) {
    assert.equal(normalizeFingerprint(text), FINGERPRINT, text);
  }
  for (const text of [
    '',
    FINGERPRINT.slice(1),
    `${FINGERPRINT}0`,
    `${FINGERPRINT.slice(1)}g`,
    pairs.slice(3), // 31 pairs
    `${pairs.slice(0, 5)}${pairs.slice(6)}`, // a colon missing
    `${pairs}:`,
    'a'.repeat(40), // SHA-1 sized
    createHash('sha1').update('x').digest('hex').match(/../g)!.join(':'),
  ]) {
    assert.throws(
      () => normalizeFingerprint(text),
      (err: unknown) =>
        isLinkmuxError(err, 'LINKMUX_ERR_TOKEN') &&
        /is not a SHA-256 certificate fingerprint/.test(err.message),
      text,
    );
  }
});
test('kind: a node token is byte for byte what it was; a server token carries one more byte and decodes as a server', () => {
  const node = encodeJoinToken(TOKEN);
  assert.equal(encodeJoinToken({ ...TOKEN, kind: 'node' }), node, 'kind node changes nothing');
  assert.equal(decodeJoinToken(node).kind, undefined, 'an old token decodes as before (a node)');
  const server = encodeJoinToken({ ...TOKEN, links: [], port: 7400, kind: 'server' });
  const back = decodeJoinToken(server);
  assert.equal(back.kind, 'server');
  assert.equal(back.port, 7400);
  assert.equal(back.name, 'office-pc');
  // An unknown kind byte is refused as malformed (checksum intact).
  const payload = Buffer.from(server.slice(TOKEN_PREFIX.length), 'base64url').subarray(0, -4);
  payload[payload.length - 1] = 9;
  const sum = createHash('sha256').update(payload).digest().subarray(0, 4);
  const forged = TOKEN_PREFIX + Buffer.concat([payload, sum]).toString('base64url');
  assert.throws(
    () => decodeJoinToken(forged),
    (e) => isLinkmuxError(e, 'LINKMUX_ERR_TOKEN') && /1 bytes follow/.test(e.message),
  );
});
