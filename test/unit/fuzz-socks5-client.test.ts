// Fuzzing the client side of SOCKS5 (what linkmux reads from a node or an
// upstream): Socks5ClientReader against a whole-buffer reference decoder of
// the method selection, RFC 1929 status and reply, and socks5Connect over an
// in-memory stream fed the same bytes in random pieces. Valid answers cut at
// every byte give the unsplit events; mutated and random answers give only
// what the reference accepts; socks5Connect settles (never hangs) with the
// BND address or a LinkmuxError of the code the answer calls for, hands back
// every byte after the reply, and never quotes the password.
// Runs: LINKMUX_FUZZ_RUNS / LINKMUX_FUZZ_SEED (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import fc from 'fast-check';
import { Socks5ClientReader, socks5Connect } from '../../src/socks5/socks5-client.js';
import type { Socks5ClientEvent } from '../../src/socks5/socks5-client.js';
import { encodeReply } from '../../src/socks5/socks5-replies.js';
import type { Socks5ReplyCode } from '../../src/socks5/socks5-replies.js';
import { ERROR_CODES, isLinkmuxError } from '../../src/util/errors.js';
import type { ErrorCode } from '../../src/util/errors.js';
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

type Stripped = Exclude<Socks5ClientEvent, { type: 'error' }> | { type: 'error' };

function strip(events: readonly Socks5ClientEvent[]): Stripped[] {
  return events.map((e) => {
    if (e.type !== 'error') return e;
    assert.ok(e.reason.length > 0);
    return { type: 'error' };
  });
}

function ipv6Text(b: Buffer): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${[...b.subarray(12)].join('.')}`;
  }
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(2 * i).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

/** What the reader must yield for the server's bytes fed whole; `after`: what follows the reply. */
function reference(input: Buffer, offered: number): { events: Stripped[]; after: Buffer | undefined } {
  const events: Stripped[] = [];
  let i = 0;
  const has = (n: number) => i + n <= input.length;
  const byte = () => input[i++] as number;
  const waiting = { events, after: undefined };
  const fail = () => {
    events.push({ type: 'error' });
    return waiting;
  };
  if (!has(1)) return waiting;
  if (byte() !== 5) return fail();
  if (!has(1)) return waiting;
  const method = byte();
  events.push({ type: 'method', method });
  if (method !== offered) return waiting;
  if (method === 2) {
    if (!has(1)) return waiting;
    if (byte() !== 1) return fail();
    if (!has(1)) return waiting;
    const status = byte();
    events.push({ type: 'auth', status });
    if (status !== 0) return waiting;
  }
  if (!has(1)) return waiting;
  if (byte() !== 5) return fail();
  if (!has(1)) return waiting;
  const rep = byte();
  if (!has(1)) return waiting;
  if (byte() !== 0) return fail();
  if (!has(1)) return waiting;
  const atyp = byte();
  let len: number;
  if (atyp === 1) len = 4;
  else if (atyp === 4) len = 16;
  else if (atyp === 3) {
    if (!has(1)) return waiting;
    len = byte();
    if (len === 0) return fail();
  } else return fail();
  if (!has(len)) return waiting;
  const addr = input.subarray(i, i + len);
  i += len;
  if (atyp === 3 && !addr.every((b) => b >= 0x21 && b <= 0x7e)) return fail();
  if (!has(2)) return waiting;
  const port = input.readUInt16BE(i);
  i += 2;
  const host = atyp === 1 ? [...addr].join('.') : atyp === 4 ? ipv6Text(addr) : addr.toString('latin1');
  events.push({ type: 'reply', rep, bnd: { host, port } });
  return { events, after: input.subarray(i) };
}

function feed(pieces: readonly Buffer[], offered: number) {
  const reader = new Socks5ClientReader(offered);
  const events: Socks5ClientEvent[] = [];
  for (const p of pieces) events.push(...reader.push(p));
  return { events, reader };
}

function checkReader(input: Buffer, pieces: readonly Buffer[], offered: number): Stripped[] {
  const { events, reader } = timed('Socks5ClientReader.push', () => feed(pieces, offered));
  const errors = events.filter((e) => e.type === 'error').length;
  assert.ok(errors <= 1 && (errors === 0 || events.at(-1)?.type === 'error'), 'one error at most, and last');
  if (errors === 1) assert.ok(reader.stopped);
  const want = reference(input, offered);
  assert.deepEqual(strip(events), want.events);
  for (const e of events) {
    if (e.type !== 'reply') continue;
    assert.ok(reader.done);
    const h = e.bnd.host;
    assert.ok(net.isIP(h) !== 0 || /^[\x21-\x7e]{1,255}$/.test(h), h);
  }
  if (want.after !== undefined) assert.deepEqual(reader.takeTrailing(), Buffer.from(want.after));
  return want.events;
}

// ---------------------------------------------------------------------------
// Generators

const offeredArb = fc.constantFrom(0x00, 0x02);

/** Usually `valid`, sometimes any byte (biased to the protocol's constants). */
const wild = (valid: fc.Arbitrary<number>, oddsWrong: number) =>
  fc.oneof({ weight: oddsWrong - 1, arbitrary: valid }, { weight: 1, arbitrary: byteArb });

/**
 * A server's answers to a CONNECT with `offered`, then the target's first
 * bytes; with `oddsWrong`, one field in about that many is any byte instead
 * (VER, METHOD, the status's version and value, RSV, ATYP, the name's length).
 */
function makeAnswersArb(offered: number, oddsWrong = Infinity): fc.Arbitrary<Buffer> {
  const field = (valid: fc.Arbitrary<number>) => (oddsWrong === Infinity ? valid : wild(valid, oddsWrong));
  return fc
    .record({
      ver: field(fc.constant(5)),
      method: fc.oneof({ weight: 6, arbitrary: fc.constant(offered) }, { weight: 1, arbitrary: byteArb }),
      authVer: field(fc.constant(1)),
      status: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: byteArb }),
      replyVer: field(fc.constant(5)),
      rep: fc.oneof(
        { weight: 3, arbitrary: fc.constant(0) },
        { weight: 2, arbitrary: fc.integer({ min: 1, max: 8 }) },
        { weight: 1, arbitrary: byteArb },
      ),
      rsv: field(fc.constant(0)),
      atypDelta: field(fc.constant(0)),
      lenDelta: field(fc.constant(0)),
      bnd: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain(), fc.constant('x'.repeat(255))),
      port: fc.integer({ min: 0, max: 65535 }),
      after: fc.uint8Array({ maxLength: 32 }),
    })
    .map((a) => {
      const parts: Buffer[] = [Buffer.from([a.ver, a.method])];
      if (a.method === 2) parts.push(Buffer.from([a.authVer, a.status]));
      const reply = encodeReply(a.rep as Socks5ReplyCode, { host: a.bnd, port: a.port });
      reply[0] = a.replyVer;
      reply[2] = a.rsv;
      reply[3] = ((reply[3] as number) + a.atypDelta) & 0xff;
      if (a.atypDelta === 0 && reply[3] === 3) reply[4] = ((reply[4] as number) + a.lenDelta) & 0xff;
      parts.push(reply, Buffer.from(a.after));
      return Buffer.concat(parts);
    });
}

/** Built once per offered method: chain() would otherwise rebuild them for every case. */
const ANSWERS = new Map([0x00, 0x02].map((m) => [m, makeAnswersArb(m)] as const));
const WILD_ANSWERS = new Map([0x00, 0x02].map((m) => [m, makeAnswersArb(m, 6)] as const));
const answersArb = (offered: number) => ANSWERS.get(offered) as fc.Arbitrary<Buffer>;

const answerCaseArb = offeredArb.chain((offered) =>
  fc
    .oneof(
      { weight: 2, arbitrary: answersArb(offered) },
      { weight: 3, arbitrary: WILD_ANSWERS.get(offered) as fc.Arbitrary<Buffer> },
      {
        weight: 2,
        arbitrary: fc
          .tuple(answersArb(offered), fc.array(mutationArb, { minLength: 1, maxLength: 3 }))
          .map(([b, ms]) => mutate(b, ms)),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom([], [5], [5, offered], [5, 2, 1, 0]), fc.uint8Array({ maxLength: 80 }))
          .map(([pre, rest]) => Buffer.concat([Buffer.from(pre), rest])),
      },
    )
    .map((bytes) => ({ offered, bytes })),
);

// ---------------------------------------------------------------------------
// The reader

test(
  'fuzz socks5 client reader: valid answers give their events whole and cut at every byte',
  { timeout: testTimeout(300) },
  () => {
    fc.assert(
      fc.property(
        offeredArb.chain((offered) => answersArb(offered).map((bytes) => ({ offered, bytes }))),
        ({ offered, bytes }) => {
          const want = checkReader(bytes, [bytes], offered);
          for (let k = 0; k <= bytes.length; k++)
            checkReader(bytes, [bytes.subarray(0, k), bytes.subarray(k)], offered);
          checkReader(
            bytes,
            [...bytes].map((b) => Buffer.from([b])),
            offered,
          );
          assert.ok(
            want.every((e) => e.type !== 'error'),
            'a well-formed answer is never an error',
          );
        },
      ),
      fuzzParams(300),
    );
  },
);

test(
  'fuzz socks5 client reader: mutated and random answers give only what the reference accepts',
  { timeout: testTimeout(500) },
  () => {
    fc.assert(
      fc.property(
        answerCaseArb.chain((c) => cutsOf(c.bytes.length).map((cuts) => ({ ...c, cuts }))),
        ({ offered, bytes, cuts }) => {
          checkReader(bytes, [bytes], offered);
          checkReader(bytes, cut(bytes, cuts), offered);
        },
      ),
      fuzzParams(500),
    );
  },
);

// ---------------------------------------------------------------------------
// socks5Connect over a stream

/** The code socks5Connect must fail with for a reference trace that ends in `last` (undefined: success). */
function expectedCode(events: readonly Stripped[], offered: number): ErrorCode | undefined {
  const last = events.at(-1);
  if (last === undefined) return 'LINKMUX_ERR_CONNECT'; // closed before an answer
  switch (last.type) {
    case 'error':
      return 'LINKMUX_ERR_BAD_RESPONSE';
    case 'method':
      return last.method === offered ? 'LINKMUX_ERR_CONNECT' : 'LINKMUX_ERR_NODE_AUTH';
    case 'auth':
      return last.status === 0 ? 'LINKMUX_ERR_CONNECT' : 'LINKMUX_ERR_NODE_AUTH';
    case 'reply':
      if (last.rep === 0) return undefined;
      switch (last.rep) {
        case 2:
          return 'LINKMUX_ERR_DENIED';
        case 3:
        case 4:
          return 'LINKMUX_ERR_UNREACHABLE';
        case 5:
          return 'LINKMUX_ERR_REFUSED';
        case 6:
          return 'LINKMUX_ERR_TIMEOUT';
        default:
          return 'LINKMUX_ERR_CONNECT';
      }
  }
}

/** An in-memory socket: records what the client writes, plays `pieces` as the server's bytes, then ends. */
function fakeSocket(pieces: readonly Buffer[]): { socket: Socket; stream: Duplex } {
  const stream = new Duplex({
    read() {},
    write(_chunk, _enc, cb) {
      cb();
    },
  });
  let k = 0;
  const next = () => {
    if (k < pieces.length) {
      stream.push(pieces[k++]);
      setImmediate(next);
    } else stream.push(null);
  };
  setImmediate(next);
  return { socket: stream as unknown as Socket, stream };
}

const PASSWORD = 'fuzz-secret-Zq8pW3';

test(
  'fuzz socks5Connect: settles with the BND address or the documented error, and loses no byte',
  { timeout: testTimeout(300) },
  async () => {
    await fc.assert(
      fc.asyncProperty(
        answerCaseArb.chain((c) => cutsOf(c.bytes.length).map((cuts) => ({ ...c, cuts }))),
        async ({ offered, bytes, cuts }) => {
          const { socket, stream } = fakeSocket(cut(bytes, cuts));
          const want = reference(bytes, offered);
          const code = expectedCode(want.events, offered);
          const auth = offered === 2 ? { auth: { username: 'lmx', password: PASSWORD } } : {};
          try {
            const bnd = await socks5Connect(socket, {
              dst: { host: 'example.org', port: 443 },
              server: 'fuzz-node',
              timeoutMs: 60_000,
              ...auth,
            });
            assert.equal(code, undefined, `resolved, but the answer calls for ${code}`);
            const reply = want.events.at(-1);
            assert.ok(reply?.type === 'reply');
            assert.deepEqual(bnd, reply.bnd);
            // Everything after the reply is readable from the socket, in order.
            const rest: Buffer[] = [];
            await new Promise<void>((resolve) => {
              stream.on('data', (c: Buffer) => rest.push(c));
              stream.on('end', resolve);
            });
            assert.deepEqual(Buffer.concat(rest), Buffer.from(want.after ?? []));
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
            assert.ok(isLinkmuxError(err), `a LinkmuxError, not ${String(err)}`);
            assert.ok(err.code in ERROR_CODES);
            assert.equal(err.code, code, err.message);
            assert.ok(!err.message.includes(PASSWORD), 'no password in the message');
          } finally {
            stream.destroy();
          }
        },
      ),
      fuzzParams(300),
    );
  },
);
