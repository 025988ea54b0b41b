// Fuzzing the server-side SOCKS5 parser (greeting, RFC 1929 login, request)
// and the UDP request header against a whole-buffer reference decoder written
// here from RFC 1928/1929: valid sessions cut at every byte give the events of
// the unsplit input; mutated sessions and random bytes give exactly the events
// the reference gives (so nothing malformed is accepted), only the documented
// error answers, at most one error and nothing after it, and never a throw.
// Runs: LINKMUX_FUZZ_RUNS / LINKMUX_FUZZ_SEED (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { Socks5Parser, encodeUdpDatagram, parseUdpDatagram } from '../../src/socks5/socks5-parser.js';
import type {
  Socks5ErrorAnswer,
  Socks5Event,
  Socks5ParserOptions,
  Socks5Phase,
} from '../../src/socks5/socks5-parser.js';
import { ipToBytes } from '../../src/net/address.js';
import {
  byteArb,
  cut,
  cutsOf,
  fuzzParams,
  mutate,
  mutationArb,
  testTimeout,
  timed,
} from '../helpers/fuzz.js';

type Policy = 'no-auth' | 'auth' | 'either';
interface Opts {
  policy: Policy;
  strict: boolean;
  /** undefined: the parser's default (256 KiB). */
  maxTrailing: number | undefined;
}

const SELECT: Record<Policy, (m: readonly number[]) => 0 | 2 | 0xff> = {
  'no-auth': (m) => (m.includes(0) ? 0 : 0xff),
  auth: (m) => (m.includes(2) ? 2 : 0xff),
  either: (m) => (m.includes(2) ? 2 : m.includes(0) ? 0 : 0xff),
};

function parserOptions(o: Opts): Socks5ParserOptions {
  return {
    ...(o.policy === 'no-auth' ? {} : { selectMethod: SELECT[o.policy] }),
    strictReserved: o.strict,
    ...(o.maxTrailing === undefined ? {} : { maxTrailingBytes: o.maxTrailing }),
  };
}

/** Events without the log text of errors (checked separately). */
type Stripped =
  Exclude<Socks5Event, { type: 'error' }> | Omit<Extract<Socks5Event, { type: 'error' }>, 'reason'>;

function strip(events: readonly Socks5Event[]): Stripped[] {
  return events.map((e) => {
    if (e.type !== 'error') return e;
    assert.ok(typeof e.reason === 'string' && e.reason.length > 0, 'an error has a reason');
    return { type: e.type, phase: e.phase, answer: e.answer };
  });
}

/** RFC 5952 text of 16 bytes, by the WHATWG URL serializer (IPv4-mapped ones dotted, as the parser documents). */
function ipv6Text(b: Buffer): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${[...b.subarray(12)].join('.')}`;
  }
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(2 * i).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

/**
 * What the parser must yield for `input` fed whole, field by field as RFC 1928
 * and 1929 lay it out; `trailing` is what follows the request when it is done.
 */
function reference(input: Buffer, o: Opts): { events: Stripped[]; trailing: Buffer | undefined } {
  const events: Stripped[] = [];
  let i = 0;
  const has = (n: number) => i + n <= input.length;
  const byte = () => input[i++] as number;
  const waiting = { events, trailing: undefined };
  const fail = (phase: Socks5Phase, answer: Socks5ErrorAnswer) => {
    events.push({ type: 'error', phase, answer });
    return waiting;
  };
  const reply = (rep: 0x01 | 0x07 | 0x08): Socks5ErrorAnswer => ({ kind: 'reply', rep });

  if (!has(1)) return waiting;
  if (byte() !== 5) return fail('greeting', { kind: 'close' });
  if (!has(1)) return waiting;
  const n = byte();
  if (n === 0) return fail('greeting', { kind: 'no-acceptable-methods' });
  if (!has(n)) return waiting;
  const methods = [...input.subarray(i, i + n)];
  i += n;
  const method = SELECT[o.policy](methods);
  events.push({ type: 'greeting', methods, method });
  if (method === 0xff) return waiting;
  if (method === 2) {
    if (!has(1)) return waiting;
    if (byte() !== 1) return fail('auth', { kind: 'close' });
    if (!has(1)) return waiting;
    const ulen = byte();
    if (!has(ulen)) return waiting;
    const username = Buffer.from(input.subarray(i, i + ulen));
    i += ulen;
    if (!has(1)) return waiting;
    const plen = byte();
    if (!has(plen)) return waiting;
    const password = Buffer.from(input.subarray(i, i + plen));
    i += plen;
    events.push({ type: 'auth', username, password });
  }
  if (!has(1)) return waiting;
  if (byte() !== 5) return fail('request', { kind: 'close' });
  if (!has(1)) return waiting;
  const cmd = byte();
  const command = ({ 1: 'connect', 2: 'bind', 3: 'udp-associate' } as const)[cmd as 1 | 2 | 3];
  if (command === undefined) return fail('request', reply(0x07));
  if (!has(1)) return waiting;
  if (byte() !== 0 && o.strict) return fail('request', reply(0x01));
  if (!has(1)) return waiting;
  const atyp = byte();
  let len: number;
  if (atyp === 1) len = 4;
  else if (atyp === 4) len = 16;
  else if (atyp === 3) {
    if (!has(1)) return waiting;
    len = byte();
    if (len === 0) return fail('request', reply(0x01));
  } else return fail('request', reply(0x08));
  if (!has(len)) return waiting;
  const addr = input.subarray(i, i + len);
  i += len;
  if (atyp === 3 && !addr.every((b) => b >= 0x21 && b <= 0x7e)) return fail('request', reply(0x01));
  if (!has(2)) return waiting;
  const port = input.readUInt16BE(i);
  i += 2;
  const [type, host] =
    atyp === 1
      ? (['ipv4', [...addr].join('.')] as const)
      : atyp === 4
        ? (['ipv6', ipv6Text(addr)] as const)
        : (['domain', addr.toString('latin1')] as const);
  events.push({ type: 'request', command, address: { type, host, port } });
  const trailing = input.subarray(i);
  if (trailing.length > (o.maxTrailing ?? 256 * 1024)) {
    fail('data', reply(0x01));
    return waiting;
  }
  return { events, trailing };
}

/** The documented shape of any event sequence: one greeting first, at most one error and only last. */
function checkTrace(events: readonly Socks5Event[], parser: Socks5Parser): void {
  const errors = events.filter((e) => e.type === 'error');
  assert.ok(errors.length <= 1, 'at most one error');
  if (errors.length === 1) {
    assert.equal(events.at(-1)?.type, 'error', 'nothing after an error');
    assert.ok(parser.stopped, 'stopped after an error');
    const e = errors[0] as Extract<Socks5Event, { type: 'error' }>;
    const a = e.answer;
    assert.ok(
      a.kind === 'close' ||
        a.kind === 'no-acceptable-methods' ||
        (a.kind === 'reply' && [1, 7, 8].includes(a.rep)),
      `documented answer: ${JSON.stringify(a)}`,
    );
  }
  events.forEach((e, k) => {
    if (e.type === 'greeting') assert.equal(k, 0, 'the greeting comes first');
    if (e.type === 'request') {
      assert.ok(parser.done || parser.stopped, 'done after the request');
      const { type, host, port } = e.address;
      assert.ok(Number.isInteger(port) && port >= 0 && port <= 65535);
      if (type === 'ipv4') assert.ok(net.isIPv4(host), host);
      if (type === 'ipv6') assert.ok(net.isIPv6(host) && ipToBytes(host)?.length === 16, host);
      if (type === 'domain') assert.match(host, /^[\x21-\x7e]{1,255}$/);
    }
  });
}

function feed(pieces: readonly Buffer[], o: Opts): { events: Socks5Event[]; parser: Socks5Parser } {
  const parser = new Socks5Parser(parserOptions(o));
  const events: Socks5Event[] = [];
  for (const p of pieces) events.push(...parser.push(p));
  return { events, parser };
}

/** Feeds `pieces`, checks the trace and the reference, and the trailing bytes when done. */
function checkAgainstReference(input: Buffer, pieces: readonly Buffer[], o: Opts): Stripped[] {
  const { events, parser } = timed('Socks5Parser.push', () => feed(pieces, o));
  checkTrace(events, parser);
  const want = reference(input, o);
  assert.deepEqual(strip(events), want.events);
  if (want.trailing !== undefined) {
    assert.ok(parser.done);
    assert.deepEqual(parser.takeTrailing(), Buffer.from(want.trailing));
  }
  return want.events;
}

// ---------------------------------------------------------------------------
// Generators

const optsArb: fc.Arbitrary<Opts> = fc.record({
  policy: fc.constantFrom<Policy>('no-auth', 'auth', 'either'),
  strict: fc.boolean(),
  maxTrailing: fc.option(fc.integer({ min: 0, max: 48 }), { nil: undefined }),
});

const bytes = (minLength: number, maxLength: number) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ minLength, maxLength: Math.min(maxLength, 24) }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength, maxLength }) },
  );
const printable = (minLength: number, maxLength: number) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.array(fc.integer({ min: 0x21, max: 0x7e }), { minLength, maxLength: 24 }) },
    { weight: 1, arbitrary: fc.array(fc.integer({ min: 0x21, max: 0x7e }), { minLength, maxLength }) },
  );

/** A whole valid session for `o`: greeting, login when the policy picks 0x02, request, then payload. */
function sessionArb(o: Opts): fc.Arbitrary<{ bytes: Buffer; expected: Stripped[] }> {
  const wanted = o.policy === 'no-auth' ? [0] : o.policy === 'auth' ? [2] : [0, 2];
  return fc
    .record({
      extra: fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 12 }),
      must: fc.constantFrom(...wanted),
      user: bytes(0, 255),
      pass: bytes(0, 255),
      cmd: fc.integer({ min: 1, max: 3 }),
      rsv: o.strict ? fc.constant(0) : fc.integer({ min: 0, max: 255 }),
      addr: fc.oneof(
        fc.uint8Array({ minLength: 4, maxLength: 4 }).map((a) => ({ atyp: 1, a: Buffer.from(a) })),
        fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => ({ atyp: 4, a: Buffer.from(a) })),
        printable(1, 255).map((a) => ({ atyp: 3, a: Buffer.from(a) })),
      ),
      port: fc.integer({ min: 0, max: 65535 }),
      payload: fc.uint8Array({ maxLength: 40 }),
    })
    .map((s) => {
      const methods = [...new Set([...s.extra, s.must])].slice(-255);
      const method = SELECT[o.policy](methods);
      const greeting = Buffer.from([5, methods.length, ...methods]);
      const login =
        method === 2 ? Buffer.from([1, s.user.length, ...s.user, s.pass.length, ...s.pass]) : Buffer.alloc(0);
      const addr = s.addr.atyp === 3 ? Buffer.from([s.addr.a.length, ...s.addr.a]) : s.addr.a;
      const port = Buffer.from([s.port >> 8, s.port & 0xff]);
      const request = Buffer.concat([Buffer.from([5, s.cmd, s.rsv, s.addr.atyp]), addr, port]);
      const host =
        s.addr.atyp === 1
          ? [...s.addr.a].join('.')
          : s.addr.atyp === 4
            ? ipv6Text(s.addr.a)
            : s.addr.a.toString();
      const type = s.addr.atyp === 1 ? 'ipv4' : s.addr.atyp === 4 ? 'ipv6' : 'domain';
      const command = (['connect', 'bind', 'udp-associate'] as const)[s.cmd - 1]!;
      const expected: Stripped[] = [
        { type: 'greeting', methods, method },
        ...(method === 2
          ? [{ type: 'auth' as const, username: Buffer.from(s.user), password: Buffer.from(s.pass) }]
          : []),
        { type: 'request', command, address: { type, host, port: s.port } },
      ];
      if (s.payload.length > (o.maxTrailing ?? 256 * 1024)) {
        expected.push({ type: 'error', phase: 'data', answer: { kind: 'reply', rep: 1 } });
      }
      return { bytes: Buffer.concat([greeting, login, request, Buffer.from(s.payload)]), expected };
    });
}

/** Usually `valid`, sometimes any byte (biased to the protocol's constants): field-level fuzzing. */
const wildByte = (valid: fc.Arbitrary<number>, oddsWrong = 6) =>
  fc.oneof({ weight: oddsWrong - 1, arbitrary: valid }, { weight: 1, arbitrary: byteArb });

/**
 * A session built field by field where any field may be wrong: VER, NMETHODS
 * against the methods that follow, the login's version and lengths, CMD, RSV,
 * ATYP, the name's length and bytes. The reference alone says what it means.
 */
const wildSessionArb: fc.Arbitrary<Buffer> = fc
  .record({
    ver: wildByte(fc.constant(5), 12),
    methods: fc.array(wildByte(fc.constantFrom(0, 2), 12), { minLength: 1, maxLength: 4 }),
    nmethodsDelta: wildByte(fc.constant(0), 12),
    login: fc.record({
      ver: wildByte(fc.constant(1), 12),
      user: fc.array(byteArb, { maxLength: 8 }),
      pass: fc.array(byteArb, { maxLength: 8 }),
      ulenDelta: wildByte(fc.constant(0), 12),
    }),
    reqVer: wildByte(fc.constant(5)),
    cmd: wildByte(fc.integer({ min: 1, max: 3 })),
    rsv: wildByte(fc.constant(0)),
    atyp: wildByte(fc.constantFrom(1, 3, 3, 4)),
    name: fc.array(wildByte(fc.integer({ min: 0x21, max: 0x7e }), 4), { minLength: 1, maxLength: 20 }),
    addrLenDelta: wildByte(fc.constant(0)),
    tail: fc.uint8Array({ maxLength: 24 }),
  })
  .map((s) => {
    const n = (s.methods.length + s.nmethodsDelta) & 0xff;
    const login = [s.login.ver, (s.login.user.length + s.login.ulenDelta) & 0xff, ...s.login.user];
    login.push(s.login.pass.length, ...s.login.pass);
    const addrLen = s.atyp === 1 ? 4 : s.atyp === 4 ? 16 : s.name.length;
    const addr = s.atyp === 3 ? [(addrLen + s.addrLenDelta) & 0xff, ...s.name] : s.name.slice(0, addrLen);
    while (s.atyp !== 3 && addr.length < addrLen) addr.push(addr.length);
    const request = [s.reqVer, s.cmd, s.rsv, s.atyp, ...addr, 0x01, 0xbb];
    return Buffer.concat([
      Buffer.from([s.ver, n, ...s.methods]),
      Buffer.from(s.methods.includes(2) ? login : []),
      Buffer.from(request),
      s.tail,
    ]);
  });

const caseArb = optsArb.chain((o) => sessionArb(o).map((s) => ({ o, ...s })));

// ---------------------------------------------------------------------------
// Properties

test(
  'fuzz socks5 parser: a valid session gives its events whole, cut at every byte, and in random pieces',
  { timeout: testTimeout(300) },
  () => {
    fc.assert(
      fc.property(
        caseArb.chain((c) => cutsOf(c.bytes.length).map((cuts) => ({ ...c, cuts }))),
        ({ o, bytes, expected, cuts }) => {
          assert.deepEqual(checkAgainstReference(bytes, [bytes], o), expected, 'the reference agrees');
          for (let k = 0; k <= bytes.length; k++) {
            checkAgainstReference(bytes, [bytes.subarray(0, k), bytes.subarray(k)], o);
          }
          checkAgainstReference(
            bytes,
            [...bytes].map((b) => Buffer.from([b])),
            o,
          );
          checkAgainstReference(bytes, cut(bytes, cuts), o);
        },
      ),
      fuzzParams(300),
    );
  },
);

test(
  'fuzz socks5 parser: mutated sessions (flip, set, insert, delete, truncate, duplicate) give only what the reference accepts',
  { timeout: testTimeout(500) },
  () => {
    fc.assert(
      fc.property(
        caseArb.chain((c) =>
          fc
            .array(mutationArb, { minLength: 1, maxLength: 3 })
            .map((ms) => mutate(c.bytes, ms))
            .chain((m) => cutsOf(m.length).map((cuts) => ({ o: c.o, m, cuts }))),
        ),
        ({ o, m, cuts }) => {
          checkAgainstReference(m, [m], o);
          checkAgainstReference(m, cut(m, cuts), o);
        },
      ),
      fuzzParams(500),
    );
  },
);

test(
  'fuzz socks5 parser: sessions with any field wrong give only what the reference accepts',
  { timeout: testTimeout(500) },
  () => {
    fc.assert(
      fc.property(
        optsArb,
        wildSessionArb.chain((m) => cutsOf(m.length).map((cuts) => ({ m, cuts }))),
        (o, { m, cuts }) => {
          checkAgainstReference(m, [m], o);
          checkAgainstReference(m, cut(m, cuts), o);
        },
      ),
      fuzzParams(500),
    );
  },
);

test(
  'fuzz socks5 parser: random bytes, bare or behind a valid prefix, never throw and match the reference',
  { timeout: testTimeout(500) },
  () => {
    const prefix = fc.constantFrom(
      [],
      [5],
      [5, 1, 0],
      [5, 1, 2, 1],
      [5, 1, 0, 5, 1, 0],
      [5, 2, 0, 2, 5, 1, 0, 3],
    );
    fc.assert(
      fc.property(optsArb, prefix, fc.uint8Array({ maxLength: 300 }), fc.nat(), (o, pre, rest, c) => {
        const input = Buffer.concat([Buffer.from(pre), rest]);
        const at = c % (input.length + 1);
        checkAgainstReference(input, [input], o);
        checkAgainstReference(input, [input.subarray(0, at), input.subarray(at)], o);
      }),
      fuzzParams(500),
    );
  },
);

test(
  'fuzz socks5 parser: input after an error or a refused method is ignored',
  { timeout: testTimeout(200) },
  () => {
    fc.assert(
      fc.property(
        optsArb,
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        (o, a, b) => {
          const parser = new Socks5Parser(parserOptions(o));
          parser.push(a);
          if (!parser.stopped) return;
          assert.deepEqual(parser.push(b), []);
          assert.ok(parser.stopped && !parser.done);
          assert.equal(parser.takeTrailing().length, 0);
        },
      ),
      fuzzParams(200),
    );
  },
);

// ---------------------------------------------------------------------------
// UDP request header

test(
  'fuzz socks5 UDP header: random and mutated datagrams are dropped with a reason or decode to what re-encodes',
  { timeout: testTimeout(500) },
  () => {
    const valid = fc
      .record({
        host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
        port: fc.integer({ min: 0, max: 65535 }),
        data: fc.uint8Array({ maxLength: 32 }),
      })
      .map(({ host, port, data }) => encodeUdpDatagram(host, port, data));
    const named = fc
      .tuple(fc.array(byteArb, { maxLength: 3 }), fc.array(byteArb, { minLength: 1, maxLength: 12 }))
      .map(([head, name]) => Buffer.from([0, 0, 0, 3, name.length, ...name, 0, 53, ...head]));
    const datagram = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      named,
      fc.tuple(valid, fc.array(mutationArb, { maxLength: 3 })).map(([v, ms]) => mutate(v, ms)),
    );
    fc.assert(
      fc.property(datagram, (d) => {
        const r = timed('parseUdpDatagram', () => parseUdpDatagram(d));
        if (!r.ok) {
          assert.ok(
            ['short', 'fragmented', 'atyp', 'domain-empty', 'domain-bytes'].includes(r.reason),
            r.reason,
          );
          return;
        }
        assert.equal(d[2], 0, 'FRAG 0 only');
        const { type, host, port } = r.address;
        if (type === 'ipv4') assert.ok(net.isIPv4(host));
        if (type === 'ipv6') assert.ok(net.isIPv6(host));
        if (type === 'domain') assert.match(host, /^[\x21-\x7e]{1,255}$/);
        assert.ok(port >= 0 && port <= 65535);
        assert.ok(d.subarray(d.length - r.data.length).equals(r.data), 'the payload is the tail');
        const again = parseUdpDatagram(encodeUdpDatagram(host, port, r.data));
        assert.ok(again.ok);
        assert.equal(again.address.port, port);
        assert.ok(again.data.equals(r.data));
      }),
      fuzzParams(500),
    );
  },
);
