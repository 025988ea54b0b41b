/**
 * The SOCKS5 client's wire side without sockets: what it sends (greeting,
 * RFC 1929 request, CONNECT) against exact hex, and Socks5ClientReader fed the
 * server's answers in one chunk, byte by byte and split at every offset,
 * yielding the same events and keeping the bytes after the reply; malformed
 * answers stop it at the first byte that proves them. Also the checks
 * socks5Connect makes before it touches the socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import {
  Socks5ClientReader,
  encodeAuthRequest,
  encodeConnectRequest,
  encodeGreeting,
  socks5Connect,
} from '../../src/socks5/socks5-client.js';
import type { Socks5ClientEvent } from '../../src/socks5/socks5-client.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import type { ErrorCode } from '../../src/util/errors.js';

const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const NO_AUTH = 0x00;
const USER_PASS = 0x02;

/** Feeds `bytes` cut at the given offsets; returns every event and what was left after the reply. */
function feed(offered: number, bytes: Buffer, cuts: number[] = []) {
  const reader = new Socks5ClientReader(offered);
  const events: Socks5ClientEvent[] = [];
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    events.push(...reader.push(bytes.subarray(from, to)));
    from = to;
  }
  return { events, trailing: reader.takeTrailing().toString('hex'), reader };
}

/** The same events and trailing bytes whether the input comes at once, byte by byte or split anywhere. */
function feedAllWays(offered: number, hex: string) {
  const bytes = h(hex);
  const whole = feed(offered, bytes);
  const single = feed(
    offered,
    bytes,
    Array.from({ length: bytes.length - 1 }, (_, i) => i + 1),
  );
  assert.deepEqual(single.events, whole.events, 'byte by byte');
  assert.equal(single.trailing, whole.trailing, 'byte by byte');
  for (let cut = 1; cut < bytes.length; cut++) {
    const split = feed(offered, bytes, [cut]);
    assert.deepEqual(split.events, whole.events, `split at ${cut}`);
    assert.equal(split.trailing, whole.trailing, `split at ${cut}`);
  }
  return whole;
}

test('what the client sends, byte-exact', () => {
  assert.equal(encodeGreeting(NO_AUTH).toString('hex'), '050100');
  assert.equal(encodeGreeting(USER_PASS).toString('hex'), '050102');
  assert.equal(encodeAuthRequest('linkmux', 'pw').toString('hex'), '01076c696e6b6d757802' + '7077');
  assert.equal(encodeAuthRequest('u', 'p'.repeat(255)).toString('hex'), `010175ff${'70'.repeat(255)}`);
  assert.equal(encodeConnectRequest('198.18.0.1', 443).toString('hex'), '05010001c612000101bb');
  assert.equal(encodeConnectRequest('::ffff:1.2.3.4', 80).toString('hex'), '05010001010203040050');
  assert.equal(
    encodeConnectRequest('2001:db8::1', 80).toString('hex'),
    '0501000420010db80000000000000000000000010050',
  );
  assert.equal(encodeConnectRequest('[::1]', 22).toString('hex'), `05010004${'00'.repeat(15)}010016`);
  assert.equal(
    encodeConnectRequest('example.org', 443).toString('hex'),
    '050100030b6578616d706c652e6f726701bb',
  );
});

test('RFC 1929 fields must be 1-255 bytes; the error names the field, never its content', () => {
  const secret = 's3cr3t-'.repeat(40); // 280 bytes
  assert.throws(
    () => encodeAuthRequest('linkmux', secret),
    (err: unknown) => {
      assert.ok(err instanceof RangeError);
      assert.equal(err.message, 'the SOCKS5 password must be 1-255 bytes in UTF-8, got 280');
      return true;
    },
  );
  assert.throws(() => encodeAuthRequest('', 'pw'), /the SOCKS5 username must be 1-255 bytes in UTF-8, got 0/);
  assert.throws(() => encodeAuthRequest('linkmux', ''), /password must be 1-255 bytes in UTF-8, got 0/);
});

test('no authentication: method, then reply with an IPv4 BND', () => {
  const r = feedAllWays(NO_AUTH, '0500 05000001 7f000001 1f90');
  assert.deepEqual(r.events, [
    { type: 'method', method: 0 },
    { type: 'reply', rep: 0, bnd: { host: '127.0.0.1', port: 8080 } },
  ]);
  assert.equal(r.trailing, '');
  assert.ok(r.reader.done);
});

test('username/password: method, status, reply with an IPv6 BND', () => {
  const r = feedAllWays(USER_PASS, '0502 0100 05000004 20010db8000000000000000000000001 0050');
  assert.deepEqual(r.events, [
    { type: 'method', method: 2 },
    { type: 'auth', status: 0 },
    { type: 'reply', rep: 0, bnd: { host: '2001:db8::1', port: 80 } },
  ]);
});

test('a domain BND is taken as given', () => {
  const r = feedAllWays(NO_AUTH, '0500 05000003 09 6c6f63616c686f7374 01bb');
  assert.deepEqual(r.events.at(-1), { type: 'reply', rep: 0, bnd: { host: 'localhost', port: 443 } });
});

test('bytes after the reply (the target speaking first) are kept whole, however they arrive', () => {
  const r = feedAllWays(USER_PASS, '0502 0100 05000001 c6120001 1c84 48656c6c6f0d0a 00ff');
  assert.equal(r.events.length, 3);
  assert.equal(r.trailing, '48656c6c6f0d0a00ff');
  // More input after the reply is appended, and takeTrailing empties the buffer.
  const reader = new Socks5ClientReader(NO_AUTH);
  assert.equal(reader.push(h('0500 05000001 00000000 0000 aa')).length, 2);
  assert.deepEqual(reader.push(h('bbcc')), []);
  assert.equal(reader.takeTrailing().toString('hex'), 'aabbcc');
  assert.equal(reader.takeTrailing().length, 0);
});

test('refusals stop the reader: 0xFF, a method not offered, a failed status', () => {
  const cases: Array<[number, string, Socks5ClientEvent[]]> = [
    [USER_PASS, '05ff 0100', [{ type: 'method', method: 0xff }]],
    [NO_AUTH, '05ff', [{ type: 'method', method: 0xff }]],
    [NO_AUTH, '0502 0100', [{ type: 'method', method: 2 }]],
    [USER_PASS, '0500 05000001', [{ type: 'method', method: 0 }]],
    [
      USER_PASS,
      '0502 0101 05000001',
      [
        { type: 'method', method: 2 },
        { type: 'auth', status: 1 },
      ],
    ],
  ];
  for (const [offered, hex, events] of cases) {
    const r = feedAllWays(offered, hex);
    assert.deepEqual(r.events, events, hex);
    assert.ok(r.reader.stopped, hex);
    assert.equal(r.trailing, '', hex);
    assert.deepEqual(r.reader.push(h('05')), [], 'ignored once stopped');
  }
});

test('failure replies are events like success: the caller maps REP', () => {
  for (const rep of [1, 2, 3, 4, 5, 6, 7, 8, 0x42]) {
    const r = feedAllWays(NO_AUTH, `0500 05${rep.toString(16).padStart(2, '0')}0001 00000000 0000`);
    assert.deepEqual(r.events.at(-1), { type: 'reply', rep, bnd: { host: '0.0.0.0', port: 0 } });
  }
});

test('not SOCKS5: one error at the first byte that proves it', () => {
  const cases: Array<[number, string, number, RegExp]> = [
    // [offered, input, bytes needed to see the error, reason]
    [NO_AUTH, '48 5454502f312e31', 1, /^method selection VER is 0x48, not 0x05$/], // "HTTP/1.1"
    [NO_AUTH, '04 5a', 1, /^method selection VER is 0x04/],
    [USER_PASS, '0502 05 00', 3, /^authentication status VER is 0x05, not 0x01$/],
    [NO_AUTH, '0500 04 00', 3, /^reply VER is 0x04, not 0x05$/],
    [NO_AUTH, '0500 0500 01 01', 5, /^reply RSV is 0x01, not 0x00$/],
    [NO_AUTH, '0500 050000 02', 6, /^reply address type is 0x02$/],
    [NO_AUTH, '0500 050000 03 00', 7, /^reply holds an empty domain name$/],
    [NO_AUTH, '0500 050000 03 02 0a41 0050', 9, /^reply domain name holds a non-printable byte$/],
  ];
  for (const [offered, hex, needed, reason] of cases) {
    const bytes = h(hex);
    const r = feedAllWays(offered, hex);
    const error = r.events.at(-1);
    assert.ok(error?.type === 'error' && reason.test(error.reason), `${hex}: ${JSON.stringify(r.events)}`);
    assert.ok(r.reader.stopped);
    // The error comes as soon as its byte arrives, not after a whole message.
    const early = feed(offered, bytes.subarray(0, needed));
    assert.deepEqual(early.events, r.events, `${hex}: after ${needed} bytes`);
  }
});

/** A stand-in socket that fails the test if socks5Connect touches it. */
function untouchable(): Socket {
  return new Proxy({} as Socket, {
    get(_t, prop) {
      if (prop === 'destroyed' || prop === 'readableEnded') return false;
      if (prop === 'then') return undefined;
      throw new Error(`socket.${String(prop)} used`);
    },
  });
}

test('socks5Connect checks its arguments before it sends anything', async () => {
  const server = 'node office-pc (198.18.100.2:7300)';
  const cases: Array<[Parameters<typeof socks5Connect>[1], ErrorCode, RegExp]> = [
    [
      { server, dst: { host: '198.18.0.1', port: 0 } },
      'LINKMUX_ERR_CONNECT',
      /0 is not a port from 1 to 65535/,
    ],
    [{ server, dst: { host: '198.18.0.1', port: 65536 } }, 'LINKMUX_ERR_CONNECT', /65536 is not a port/],
    [{ server, dst: { host: '198.18.0.1', port: 1.5 } }, 'LINKMUX_ERR_CONNECT', /1.5 is not a port/],
    [{ server, dst: { host: 'bad name', port: 80 } }, 'LINKMUX_ERR_DNS', /is not a host name/],
    [{ server, dst: { host: 'bücher.example', port: 80 } }, 'LINKMUX_ERR_DNS', /punycode/],
    [{ server, dst: { host: 'a'.repeat(256), port: 80 } }, 'LINKMUX_ERR_DNS', /1-255 printable ASCII bytes/],
    [{ server, dst: { host: '', port: 80 } }, 'LINKMUX_ERR_DNS', /is not a host name/],
    [
      {
        server,
        dst: { host: 'example.org', port: 80 },
        auth: { username: 'linkmux', password: 'x'.repeat(300) },
      },
      'LINKMUX_ERR_NODE_AUTH',
      /^cannot log in to node office-pc \(198\.18\.100\.2:7300\): the SOCKS5 password must be 1-255 bytes/,
    ],
    [
      { server, dst: { host: 'example.org', port: 80 }, signal: AbortSignal.abort() },
      'LINKMUX_ERR_ABORTED',
      /^CONNECT example\.org:80 through node office-pc \(198\.18\.100\.2:7300\) was aborted$/,
    ],
  ];
  for (const [opts, code, message] of cases) {
    await assert.rejects(
      socks5Connect(untouchable(), opts),
      (err: unknown) => {
        assert.ok(isLinkmuxError(err, code), `${JSON.stringify(opts.dst)}: ${String(err)}`);
        assert.match(err.message, message);
        assert.ok(!err.message.includes('xxxxxxxx'), 'password content in the message');
        return true;
      },
      JSON.stringify(opts.dst),
    );
  }
});
