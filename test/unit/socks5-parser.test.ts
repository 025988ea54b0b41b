// The SOCKS5 handshake parser fed exact hex: each message whole, byte by byte,
// and cut at every pair of offsets (three pieces), which must all give the same
// events; pipelined messages; malformed input answered as RFC 1928/1929 say;
// and the UDP request header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Socks5Parser, encodeUdpDatagram, parseUdpDatagram } from '../../src/socks5/socks5-parser.js';
import type { Socks5Event, Socks5ParserOptions } from '../../src/socks5/socks5-parser.js';

const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex');
const withAuth: Socks5ParserOptions = { selectMethod: (m) => (m.includes(2) ? 2 : 0xff) };
const either: Socks5ParserOptions = { selectMethod: (m) => (m.includes(2) ? 2 : m.includes(0) ? 0 : 0xff) };

function feed(pieces: Buffer[], opts?: Socks5ParserOptions): { events: Socks5Event[]; parser: Socks5Parser } {
  const parser = new Socks5Parser(opts);
  const events: Socks5Event[] = [];
  for (const p of pieces) events.push(...parser.push(p));
  return { events, parser };
}

/** Every way to feed `input` gives `want`: whole, byte by byte, and cut at any two offsets. */
function assertAllSplits(input: Buffer, want: Socks5Event[], opts?: Socks5ParserOptions): void {
  assert.deepEqual(feed([input], opts).events, want, 'whole');
  assert.deepEqual(
    feed(
      [...input].map((b) => Buffer.from([b])),
      opts,
    ).events,
    want,
    'byte by byte',
  );
  for (let i = 0; i <= input.length; i++) {
    for (let j = i; j <= input.length; j++) {
      const pieces = [input.subarray(0, i), input.subarray(i, j), input.subarray(j)];
      assert.deepEqual(feed(pieces, opts).events, want, `cut at ${i} and ${j}`);
    }
  }
}

const GREETING_NOAUTH = '05 01 00';
const CONNECT_V4 = '05 01 00 01 7f000001 0050';
const CONNECT_V6 = '05 01 00 04 00000000000000000000000000000001 1f90';
const CONNECT_DOMAIN = `05 01 00 03 0b ${ascii('example.com')} 01bb`;

const cases: Array<[string, string, Socks5Event[], Socks5ParserOptions?]> = [
  ['greeting with no-auth', GREETING_NOAUTH, [{ type: 'greeting', methods: [0], method: 0 }]],
  [
    'greeting offering 00 and 02 picks no-auth by default',
    '05 02 00 02',
    [{ type: 'greeting', methods: [0, 2], method: 0 }],
  ],
  [
    'greeting + CONNECT IPv4 pipelined',
    GREETING_NOAUTH + CONNECT_V4,
    [
      { type: 'greeting', methods: [0], method: 0 },
      { type: 'request', command: 'connect', address: { type: 'ipv4', host: '127.0.0.1', port: 80 } },
    ],
  ],
  [
    'greeting + CONNECT IPv6',
    GREETING_NOAUTH + CONNECT_V6,
    [
      { type: 'greeting', methods: [0], method: 0 },
      { type: 'request', command: 'connect', address: { type: 'ipv6', host: '::1', port: 8080 } },
    ],
  ],
  [
    'greeting + username/password + CONNECT domain, all pipelined',
    `05 02 00 02  01 04 ${ascii('user')} 06 ${ascii('s3cr3t')}` + CONNECT_DOMAIN,
    [
      { type: 'greeting', methods: [0, 2], method: 2 },
      { type: 'auth', username: Buffer.from('user'), password: Buffer.from('s3cr3t') },
      { type: 'request', command: 'connect', address: { type: 'domain', host: 'example.com', port: 443 } },
    ],
    withAuth,
  ],
  [
    'empty username and password are parsed (they just fail to match)',
    `05 01 02  01 00 00` + CONNECT_V4,
    [
      { type: 'greeting', methods: [2], method: 2 },
      { type: 'auth', username: Buffer.alloc(0), password: Buffer.alloc(0) },
      { type: 'request', command: 'connect', address: { type: 'ipv4', host: '127.0.0.1', port: 80 } },
    ],
    withAuth,
  ],
  [
    'UDP ASSOCIATE with 0.0.0.0:0',
    GREETING_NOAUTH + '05 03 00 01 00000000 0000',
    [
      { type: 'greeting', methods: [0], method: 0 },
      { type: 'request', command: 'udp-associate', address: { type: 'ipv4', host: '0.0.0.0', port: 0 } },
    ],
  ],
  [
    'BIND is parsed (the server refuses it)',
    GREETING_NOAUTH + '05 02 00 01 0a000001 1388',
    [
      { type: 'greeting', methods: [0], method: 0 },
      { type: 'request', command: 'bind', address: { type: 'ipv4', host: '10.0.0.1', port: 5000 } },
    ],
  ],
  [
    'IPv6 text is canonical: longest zero run compressed, lower case',
    GREETING_NOAUTH + '05 01 00 04 20010db8000000000001000000000001 0016',
    [
      { type: 'greeting', methods: [0], method: 0 },
      { type: 'request', command: 'connect', address: { type: 'ipv6', host: '2001:db8::1:0:0:1', port: 22 } },
    ],
  ],
  [
    'RSV other than 0 is ignored by default',
    GREETING_NOAUTH + '05 01 7f 01 7f000001 0050',
    [
      { type: 'greeting', methods: [0], method: 0 },
      { type: 'request', command: 'connect', address: { type: 'ipv4', host: '127.0.0.1', port: 80 } },
    ],
  ],
  // Malformed input: one error event, then silence.
  [
    'bad VER in the greeting closes silently',
    '04 01 00 00 50 7f000001 00',
    [err('greeting', { kind: 'close' })],
  ],
  [
    'HTTP sent to the SOCKS port closes silently',
    ascii('GET / HTTP/1.1\r\n\r\n'),
    [err('greeting', { kind: 'close' })],
  ],
  ['NMETHODS 0 is answered 0xFF', '05 00 05 01 00', [err('greeting', { kind: 'no-acceptable-methods' })]],
  [
    'no acceptable method: greeting with 0xFF, later bytes ignored',
    '05 01 01' + CONNECT_V4,
    [{ type: 'greeting', methods: [1], method: 0xff }],
  ],
  [
    'bad username/password version closes silently',
    `05 01 02  05 01 00` + CONNECT_V4,
    [{ type: 'greeting', methods: [2], method: 2 }, err('auth', { kind: 'close' })],
    withAuth,
  ],
  [
    'bad VER in the request closes silently',
    GREETING_NOAUTH + '04 01 00 01 7f000001 0050',
    [{ type: 'greeting', methods: [0], method: 0 }, err('request', { kind: 'close' })],
  ],
  [
    'unknown command is 0x07',
    GREETING_NOAUTH + '05 09 00 01 7f000001 0050',
    [{ type: 'greeting', methods: [0], method: 0 }, err('request', { kind: 'reply', rep: 0x07 })],
  ],
  [
    'unknown address type is 0x08',
    GREETING_NOAUTH + '05 01 00 02 7f000001 0050',
    [{ type: 'greeting', methods: [0], method: 0 }, err('request', { kind: 'reply', rep: 0x08 })],
  ],
  [
    'domain length 0 is 0x01',
    GREETING_NOAUTH + '05 01 00 03 00 0050',
    [{ type: 'greeting', methods: [0], method: 0 }, err('request', { kind: 'reply', rep: 0x01 })],
  ],
  [
    'a NUL byte in a domain name is 0x01',
    GREETING_NOAUTH + `05 01 00 03 05 ${ascii('a\0b.c')} 0050`,
    [{ type: 'greeting', methods: [0], method: 0 }, err('request', { kind: 'reply', rep: 0x01 })],
  ],
  [
    'RSV other than 0 with strictReserved is 0x01',
    GREETING_NOAUTH + '05 01 01 01 7f000001 0050',
    [{ type: 'greeting', methods: [0], method: 0 }, err('request', { kind: 'reply', rep: 0x01 })],
    { strictReserved: true },
  ],
];

function err(phase: string, answer: object): Socks5Event {
  return { type: 'error', phase, answer } as unknown as Socks5Event;
}

/** Error events compared without their free-text reason. */
function stripReasons(events: Socks5Event[]): Socks5Event[] {
  return events.map((e) => {
    if (e.type !== 'error') return e;
    assert.ok(e.reason.length > 0, 'an error says why');
    const { reason: _reason, ...rest } = e;
    return rest as Socks5Event;
  });
}

for (const [name, hex, want, opts] of cases) {
  test(`parser: ${name}`, () => {
    const input = h(hex);
    const { events } = feed([input], opts);
    assert.deepEqual(stripReasons(events), want);
    // Same events however the bytes arrive (reasons included).
    assertAllSplits(input, events, opts);
  });
}

test('parser: errors are raised at the first byte that proves them', () => {
  const p = new Socks5Parser();
  assert.deepEqual(stripReasons(p.push(h('04'))), [err('greeting', { kind: 'close' })]);
  assert.equal(p.stopped, true);
  assert.deepEqual(p.push(h('05 01 00')), []);

  const q = new Socks5Parser();
  q.push(h(GREETING_NOAUTH + '05'));
  assert.deepEqual(stripReasons(q.push(h('04'))), [err('request', { kind: 'reply', rep: 0x07 })]);
});

test('parser: truncated input that never completes waits and never throws', () => {
  const prefixes = [
    '05',
    '05 03 00 01',
    GREETING_NOAUTH + '05 01 00 03 0a 6162',
    GREETING_NOAUTH + '05 01 00 04 0000',
    GREETING_NOAUTH + '05 01 00 01 7f000001 00',
    '05 01 02 01 05 7573',
  ];
  for (const hex of prefixes) {
    const bytes = h(hex);
    const whole = feed([bytes], either);
    const events = whole.events.filter((e) => e.type !== 'greeting');
    assert.deepEqual(events, [], hex);
    assert.equal(whole.parser.done, false, hex);
    assert.equal(whole.parser.stopped, false, hex);
    assert.deepEqual(whole.parser.takeTrailing(), Buffer.alloc(0));
    for (let i = 0; i < bytes.length; i++) feed([bytes.subarray(0, i), bytes.subarray(i)], either);
  }
});

test('parser: bytes after the request are kept as payload, across pushes', () => {
  const p = new Socks5Parser();
  const events = p.push(h(GREETING_NOAUTH + CONNECT_V4 + ascii('GET ')));
  assert.equal(events.length, 2);
  assert.equal(p.done, true);
  assert.deepEqual(p.push(Buffer.from('/ HTTP/1.1\r\n')), []);
  assert.equal(p.takeTrailing().toString(), 'GET / HTTP/1.1\r\n');
  assert.equal(p.takeTrailing().length, 0);
});

test('parser: payload beyond maxTrailingBytes is an error answered 0x01', () => {
  const p = new Socks5Parser({ maxTrailingBytes: 4 });
  assert.equal(p.push(h(GREETING_NOAUTH + CONNECT_V4 + '01020304')).length, 2);
  assert.deepEqual(stripReasons(p.push(h('05'))), [err('data', { kind: 'reply', rep: 0x01 })]);
  assert.equal(p.stopped, true);
});

test('parser: plain Uint8Array chunks and views into a larger buffer are read at their offset', () => {
  const big = h('ffff' + GREETING_NOAUTH + CONNECT_DOMAIN + 'ffff');
  const view = new Uint8Array(big.buffer, big.byteOffset + 2, big.length - 4);
  const p = new Socks5Parser();
  assert.deepEqual(p.push(view.subarray(0, 5)), [{ type: 'greeting', methods: [0], method: 0 }]);
  assert.deepEqual(p.push(view.subarray(5)), [
    { type: 'request', command: 'connect', address: { type: 'domain', host: 'example.com', port: 443 } },
  ]);
});

// --- UDP request header -------------------------------------------------------

test('udp: parse IPv4, IPv6 and domain headers; data shares the datagram', () => {
  const v4 = parseUdpDatagram(h(`0000 00 01 7f000001 0035 ${ascii('hello')}`));
  assert.deepEqual(v4, {
    ok: true,
    address: { type: 'ipv4', host: '127.0.0.1', port: 53 },
    data: Buffer.from('hello'),
  });
  const v6 = parseUdpDatagram(h('0000 00 04 00000000000000000000000000000001 0035 ff'));
  assert.deepEqual(v6, { ok: true, address: { type: 'ipv6', host: '::1', port: 53 }, data: h('ff') });
  const name = parseUdpDatagram(h(`0000 00 03 09 ${ascii('localhost')} 1234`));
  assert.deepEqual(name, {
    ok: true,
    address: { type: 'domain', host: 'localhost', port: 0x1234 },
    data: Buffer.alloc(0),
  });
});

test('udp: fragments and malformed headers are dropped with a reason', () => {
  const drops: Array<[string, string]> = [
    ['0000 01 01 7f000001 0035 00', 'fragmented'],
    ['0000 80 01 7f000001 0035 00', 'fragmented'],
    ['0000 00', 'short'],
    ['0000 00 01 7f0000', 'short'],
    ['0000 00 04 0000', 'short'],
    ['0000 00 05 7f000001 0035', 'atyp'],
    ['0000 00 03 00 0035', 'domain-empty'],
    [`0000 00 03 02 ${ascii('a ')} 0035`, 'domain-bytes'],
  ];
  for (const [hex, reason] of drops) assert.deepEqual(parseUdpDatagram(h(hex)), { ok: false, reason }, hex);
});

test('udp: serialise exact bytes, and parse(serialise(x)) is x', () => {
  assert.equal(
    encodeUdpDatagram('127.0.0.1', 53, Buffer.from('hi')).toString('hex'),
    '000000017f0000010035' + ascii('hi'),
  );
  assert.equal(
    encodeUdpDatagram('::1', 8080, Buffer.alloc(0)).toString('hex'),
    '00000004' + '00000000000000000000000000000001' + '1f90',
  );
  // Node reports IPv4 peers of dual-stack sockets as ::ffff:a.b.c.d: sent as IPv4.
  assert.equal(
    encodeUdpDatagram('::ffff:10.1.2.3', 1, Buffer.alloc(0)).toString('hex'),
    '000000010a0102030001',
  );
  assert.equal(
    encodeUdpDatagram('ab.c', 2, Buffer.alloc(0)).toString('hex'),
    '0000000304' + ascii('ab.c') + '0002',
  );
  for (const [host, type] of [
    ['192.0.2.7', 'ipv4'],
    ['2001:db8::7', 'ipv6'],
    ['example.org', 'domain'],
  ] as const) {
    const parsed = parseUdpDatagram(encodeUdpDatagram(host, 65535, Buffer.from('x')));
    assert.deepEqual(parsed, { ok: true, address: { type, host, port: 65535 }, data: Buffer.from('x') });
  }
});
