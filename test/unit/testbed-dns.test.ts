// The testbed's DNS answers fed raw packets, its resolv.conf plan, and which
// leftovers count as a dead run's: pure parts, no sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import packet from 'dns-packet';
import { answerQuery, type DnsZone } from '../../src/testbed/dns-server.js';
import { deadRunNames } from '../../src/testbed/leftovers.js';
import { etcDirs, resolvConfFiles } from '../../src/testbed/netns-etc.js';
import { defaultZone, FILES_NAME, V6_ONLY_ADDRESS, V6_ONLY_NAME } from '../../src/testbed/testbed-dns.js';

const zone: DnsZone = defaultZone('198.19.0.10');
const query = (
  name: string,
  type: packet.RecordType = 'A',
  id = 0x1234,
  extra: Partial<packet.Packet> = {},
) =>
  packet.encode({
    type: 'query',
    id,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    ...extra,
  });

const rcodeOf = (response: Buffer) => response.readUInt16BE(2) & 0x000f;

function ask(q: Buffer, z = zone, proto: 'udp' | 'tcp' = 'udp') {
  const a = answerQuery(q, z, proto);
  assert.ok(a, 'an answer');
  return { decoded: packet.decode(a.response), record: a.record, raw: a.response };
}

test('A of files.test: the server address, authoritative, TTL from the zone, id and RD echoed', () => {
  const { decoded, record } = ask(query(FILES_NAME));
  assert.equal(decoded.id, 0x1234);
  assert.equal(decoded.flag_qr, true);
  assert.equal(decoded.flag_aa, true);
  assert.equal(decoded.flag_rd, true);
  assert.equal(decoded.flag_tc, false);
  assert.deepEqual(
    decoded.answers?.map((a) => [
      a.type,
      a.name,
      'ttl' in a ? a.ttl : undefined,
      'data' in a ? a.data : undefined,
    ]),
    [['A', FILES_NAME, 1, '198.19.0.10']],
  );
  assert.deepEqual(record, { name: FILES_NAME, type: 'A', rcode: 'NOERROR', answers: 1 });
});

test('the question comes back as asked (0x20 case), the lookup ignores case and a trailing dot', () => {
  const { decoded, record } = ask(query('FiLeS.TeSt.'));
  assert.equal(decoded.questions?.[0]?.name, 'FiLeS.TeSt');
  assert.equal(decoded.answers?.length, 1);
  assert.equal(record.name, FILES_NAME);
});

test('AAAA of the v6-only name: its address; A of it: NODATA with the SOA', () => {
  const six = ask(query(V6_ONLY_NAME, 'AAAA'));
  assert.deepEqual(
    six.decoded.answers?.map((a) => ('data' in a ? a.data : undefined)),
    [V6_ONLY_ADDRESS],
  );
  const four = ask(query(V6_ONLY_NAME, 'A'));
  assert.equal(rcodeOf(four.raw), 0, 'NOERROR');
  assert.equal(four.decoded.answers?.length, 0);
  assert.deepEqual(
    four.decoded.authorities?.map((a) => a.type),
    ['SOA'],
  );
  assert.equal(four.record.rcode, 'NOERROR');
});

test('an unknown name: NXDOMAIN with an SOA whose minimum is the negative TTL', () => {
  const { decoded, record, raw } = ask(query('nope.example'));
  assert.equal(rcodeOf(raw), 3, 'NXDOMAIN');
  assert.equal(decoded.answers?.length, 0);
  const soa = decoded.authorities?.[0];
  assert.equal(soa?.type, 'SOA');
  assert.equal(soa?.type === 'SOA' ? soa.data.minimum : -1, 5);
  assert.equal(record.rcode, 'NXDOMAIN');
});

test('truncateUdp: UDP answers are empty with TC; TCP answers in full', () => {
  const z = { ...zone, truncateUdp: true };
  const udp = ask(query(FILES_NAME), z, 'udp');
  assert.equal(udp.decoded.flag_tc, true);
  assert.equal(udp.decoded.answers?.length, 0);
  assert.equal(udp.record.truncated, true);
  const tcp = ask(query(FILES_NAME), z, 'tcp');
  assert.equal(tcp.decoded.flag_tc, false);
  assert.equal(tcp.decoded.answers?.length, 1);
});

test('no answer to a runt or to a response', () => {
  assert.equal(answerQuery(Buffer.from('00010000', 'hex'), zone), undefined);
  const response = packet.encode({ type: 'response', id: 7, questions: [{ type: 'A', name: FILES_NAME }] });
  assert.equal(answerQuery(response, zone), undefined);
});

test('FORMERR for garbage after a header and for two questions; NOTIMP for another opcode; REFUSED for CHAOS', () => {
  const garbage = Buffer.concat([Buffer.from('abcd0100000100000000000', 'hex'), Buffer.from([0xff, 0xff])]);
  const g = answerQuery(garbage, zone);
  assert.equal(g?.record.rcode, 'FORMERR');
  assert.equal(g?.response.readUInt16BE(0), 0xabcd, 'id echoed even when undecodable');
  assert.equal(g?.response.readUInt16BE(2) & 0x800f, 0x8001, 'QR and FORMERR');

  const two = packet.encode({
    type: 'query',
    id: 1,
    questions: [
      { type: 'A', name: FILES_NAME },
      { type: 'A', name: V6_ONLY_NAME },
    ],
  });
  assert.equal(answerQuery(two, zone)?.record.rcode, 'FORMERR');

  const status = query(FILES_NAME);
  status.writeUInt16BE(status.readUInt16BE(2) | (2 << 11), 2); // opcode STATUS
  const n = answerQuery(status, zone);
  assert.equal(n?.record.rcode, 'NOTIMP');
  assert.equal(n?.response.readUInt16BE(2) & 0x000f, 4);

  const chaos = packet.encode({
    type: 'query',
    id: 2,
    questions: [{ type: 'A', name: FILES_NAME, class: 'CH' }],
  });
  assert.equal(answerQuery(chaos, zone)?.record.rcode, 'REFUSED');
});

test('resolv.conf plan: one file per namespace under /etc/netns, naming the server', () => {
  const files = resolvConfFiles(['lmx-1-ab-c', 'lmx-1-ab-n1'], '198.19.0.10');
  assert.deepEqual(
    files.map((f) => f.path),
    ['/etc/netns/lmx-1-ab-c/resolv.conf', '/etc/netns/lmx-1-ab-n1/resolv.conf'],
  );
  assert.match(files[0]?.content ?? '', /^nameserver 198\.19\.0\.10$/m);
  assert.deepEqual(etcDirs(files), ['/etc/netns/lmx-1-ab-c', '/etc/netns/lmx-1-ab-n1']);
});

test('leftovers: only names of this family whose pid is dead; a live parallel run is kept', () => {
  const alive = (pid: number) => pid === 200;
  const names = [
    'lmx-100-ab12-c',
    'lmx-200-cd34-c',
    'lmx-200-cd34-s',
    'other-100-ab-c',
    'lmx-c',
    'lmxx-100-a-c',
    '',
  ];
  assert.deepEqual(deadRunNames(names, 'lmx', alive), ['lmx-100-ab12-c']);
  assert.deepEqual(deadRunNames(['lmx-' + process.pid + '-ab-c'], 'lmx'), [], 'our own run is alive');
  assert.throws(() => deadRunNames([], 'l.x'), /bad namespace family/);
});
