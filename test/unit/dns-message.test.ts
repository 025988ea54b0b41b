/**
 * What a DNS response means (src/dns/message.ts `interpret`): every case is a
 * packet built with dns-packet's encoder, so the bytes are what a server sends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import packet from 'dns-packet';
import {
  DEFAULT_NEGATIVE_TTL_S,
  encodeQuery,
  encodeTcpQuery,
  interpret,
  type Interpretation,
  type Question,
} from '../../src/dns/message.js';

const ID = 0x4242;
const Q: Question = { name: 'files.test', type: 'A' };
const NXDOMAIN = 3;
const SERVFAIL = 2;
const REFUSED = 5;

function soa(ttl: number, minimum: number): packet.Answer {
  return {
    type: 'SOA',
    name: 'test',
    ttl,
    data: {
      mname: 'ns.test',
      rname: 'hostmaster.test',
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum,
    },
  };
}

function response(opts: {
  id?: number;
  flags?: number;
  question?: Question;
  answers?: packet.Answer[];
  authorities?: packet.Answer[];
  type?: 'response' | 'query';
}): Buffer {
  const q = opts.question ?? Q;
  return packet.encode({
    type: opts.type ?? 'response',
    id: opts.id ?? ID,
    flags: opts.flags ?? packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE,
    questions: [{ name: q.name, type: q.type, class: 'IN' }],
    answers: opts.answers ?? [],
    authorities: opts.authorities ?? [],
  });
}

const cases: Array<[string, Buffer, Question, Interpretation]> = [
  [
    'one A record',
    response({ answers: [{ type: 'A', name: 'files.test', ttl: 300, data: '192.0.2.1' }] }),
    Q,
    { kind: 'answer', addresses: ['192.0.2.1'], ttl: 300 },
  ],
  [
    'several A records: every address, duplicates once, the smallest TTL',
    response({
      answers: [
        { type: 'A', name: 'files.test', ttl: 300, data: '192.0.2.1' },
        { type: 'A', name: 'files.test', ttl: 60, data: '192.0.2.2' },
        { type: 'A', name: 'files.test', ttl: 120, data: '192.0.2.1' },
      ],
    }),
    Q,
    { kind: 'answer', addresses: ['192.0.2.1', '192.0.2.2'], ttl: 60 },
  ],
  [
    'a CNAME chain followed by the server: the addresses at its end, the smallest TTL of the chain',
    response({
      answers: [
        { type: 'CNAME', name: 'files.test', ttl: 20, data: 'cdn.test' },
        { type: 'CNAME', name: 'cdn.test', ttl: 600, data: 'edge.cdn.test' },
        { type: 'A', name: 'edge.cdn.test', ttl: 300, data: '192.0.2.9' },
      ],
    }),
    Q,
    { kind: 'answer', addresses: ['192.0.2.9'], ttl: 20 },
  ],
  [
    'AAAA asked: AAAA records only, A records beside them ignored',
    response({
      question: { name: 'files.test', type: 'AAAA' },
      answers: [
        { type: 'A', name: 'files.test', ttl: 5, data: '192.0.2.1' },
        { type: 'AAAA', name: 'files.test', ttl: 90, data: '2001:db8::1' },
      ],
    }),
    { name: 'files.test', type: 'AAAA' },
    { kind: 'answer', addresses: ['2001:db8::1'], ttl: 90 },
  ],
  [
    'NXDOMAIN with an SOA: RFC 2308 TTL = min(SOA TTL, SOA minimum) — minimum smaller',
    response({ flags: NXDOMAIN, authorities: [soa(3600, 45)] }),
    Q,
    { kind: 'negative', nxdomain: true, ttl: 45 },
  ],
  [
    'NXDOMAIN with an SOA: RFC 2308 TTL = min(SOA TTL, SOA minimum) — SOA TTL smaller',
    response({ flags: NXDOMAIN, authorities: [soa(12, 900)] }),
    Q,
    { kind: 'negative', nxdomain: true, ttl: 12 },
  ],
  [
    'NXDOMAIN without an SOA: the default negative TTL',
    response({ flags: NXDOMAIN }),
    Q,
    { kind: 'negative', nxdomain: true, ttl: DEFAULT_NEGATIVE_TTL_S },
  ],
  [
    'NODATA (NOERROR, no record of the type) with an SOA',
    response({ authorities: [soa(70, 80)] }),
    Q,
    { kind: 'negative', nxdomain: false, ttl: 70 },
  ],
  [
    'NODATA: only a CNAME, no address at its end',
    response({
      answers: [{ type: 'CNAME', name: 'files.test', ttl: 20, data: 'gone.test' }],
      authorities: [soa(40, 40)],
    }),
    Q,
    { kind: 'negative', nxdomain: false, ttl: 40 },
  ],
  ['SERVFAIL', response({ flags: SERVFAIL }), Q, { kind: 'server-failure', rcode: 'SERVFAIL' }],
  ['REFUSED', response({ flags: REFUSED }), Q, { kind: 'server-failure', rcode: 'REFUSED' }],
  [
    'TC bit: truncated, even with partial answers',
    response({
      flags: packet.TRUNCATED_RESPONSE,
      answers: [{ type: 'A', name: 'files.test', ttl: 300, data: '192.0.2.1' }],
    }),
    Q,
    { kind: 'truncated' },
  ],
  [
    'case-randomised question name (0x20) and a trailing dot are the same question',
    response({
      question: { name: 'FiLeS.TeSt.', type: 'A' },
      answers: [{ type: 'A', name: 'FiLeS.TeSt', ttl: 30, data: '192.0.2.3' }],
    }),
    { name: 'files.test', type: 'A' },
    { kind: 'answer', addresses: ['192.0.2.3'], ttl: 30 },
  ],
];

for (const [name, buf, q, want] of cases) {
  test(`interpret: ${name}`, () => {
    assert.deepEqual(interpret(buf, ID, q), want);
  });
}

const invalid: Array<[string, Buffer, RegExp]> = [
  [
    'wrong id',
    response({ id: ID + 1, answers: [{ type: 'A', name: 'files.test', ttl: 1, data: '6.6.6.6' }] }),
    /id/,
  ],
  [
    'wrong question name',
    response({
      question: { name: 'evil.test', type: 'A' },
      answers: [{ type: 'A', name: 'evil.test', ttl: 1, data: '6.6.6.6' }],
    }),
    /question/,
  ],
  ['wrong question type', response({ question: { name: 'files.test', type: 'AAAA' } }), /question/],
  ['a query, not a response', response({ type: 'query' }), /not a response/],
  ['garbage bytes', Buffer.from('not a dns message at all, just bytes'), /./],
  ['too short for a header', Buffer.from([0x42, 0x42, 0x81]), /undecodable/],
  ['empty datagram', Buffer.alloc(0), /undecodable/],
  ['header promising records that are missing', response({}).subarray(0, 14), /undecodable/],
];

for (const [name, buf, why] of invalid) {
  test(`interpret: ${name} is invalid (ignored, the exchange keeps waiting)`, () => {
    const got = interpret(buf, ID, Q);
    assert.equal(got.kind, 'invalid', JSON.stringify(got));
    assert.match((got as { why: string }).why, why);
  });
}

test('interpret: a response with no question section is invalid', () => {
  const buf = packet.encode({ type: 'response', id: ID, questions: [], answers: [] });
  assert.equal(interpret(buf, ID, Q).kind, 'invalid');
});

test('encodeQuery: id, one question, recursion desired; encodeTcpQuery adds the 16-bit length', () => {
  const udp = encodeQuery(ID, { name: 'files.test', type: 'AAAA' });
  const decoded = packet.decode(udp);
  assert.equal(decoded.id, ID);
  assert.equal(decoded.type, 'query');
  assert.equal(decoded.flag_rd, true);
  assert.deepEqual(decoded.questions, [{ name: 'files.test', type: 'AAAA', class: 'IN' }]);
  const tcp = encodeTcpQuery(ID, { name: 'files.test', type: 'AAAA' });
  assert.equal(tcp.readUInt16BE(0), udp.length);
  assert.deepEqual(tcp.subarray(2), udp);
});
