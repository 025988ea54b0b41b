/**
 * The testbed's DNS server: authoritative for a few names, over UDP and TCP
 * (RFC 1035 §4.2.2 framing: a 2-byte length before each message), so the netns
 * tests can resolve names through any uplink and see every query arrive.
 *
 * Answers (`answerQuery`, pure, fed raw packets in unit tests):
 * - a zone name, A or AAAA: its addresses of that type (AA set, TTL `ttl`);
 *   no address of that type: NODATA (NOERROR, empty answer, the zone's SOA);
 * - any other name: NXDOMAIN with the SOA in the authority section, so negative
 *   caching has a TTL (RFC 2308: the SOA's minimum, `negativeTtl`);
 * - a response, or fewer than 12 bytes: no answer at all (as real servers do);
 *   undecodable or not exactly one question: FORMERR; opcode other than QUERY:
 *   NOTIMP; class other than IN: REFUSED.
 * The question is echoed as received (case kept: 0x20 randomisation works) and
 * RD is copied. With `truncateUdp`, UDP answers are empty with TC set, so a
 * client must retry over TCP.
 *
 * `startDnsServer` reports every query (protocol, source address — which ISP it
 * came through —, name, type, rcode) to `onQuery`; the `-main` entry prints them
 * one JSON line each for the testbed to read.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import packet from 'dns-packet';

export interface DnsZone {
  /** Names (lower case, no trailing dot) and their addresses. */
  names: Record<string, { a?: string[]; aaaa?: string[] }>;
  /** TTL of positive answers, seconds. Default 1: tests see fresh lookups, caches still work. */
  ttl?: number;
  /** SOA minimum = negative-answer TTL, seconds. Default 5. */
  negativeTtl?: number;
  /** UDP answers carry no records and set TC (clients must retry over TCP). Default false. */
  truncateUdp?: boolean;
}

export type DnsRcode = 'NOERROR' | 'FORMERR' | 'NXDOMAIN' | 'NOTIMP' | 'REFUSED';

export interface DnsQueryRecord {
  proto: 'udp' | 'tcp';
  /** Source address of the query: the ISP's server-side address, i.e. which uplink carried it. */
  from: string;
  /** As asked, lower-cased, no trailing dot; '' when undecodable. */
  name: string;
  type: string;
  rcode: DnsRcode;
  /** Records in the answer section. */
  answers: number;
  /** The UDP answer was truncated on purpose. */
  truncated?: boolean;
}

export interface DnsAnswer {
  response: Buffer;
  record: Omit<DnsQueryRecord, 'proto' | 'from'>;
}

const RCODE: Record<DnsRcode, number> = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
const HEADER_BYTES = 12;
const QR = 0x8000;
const SOA_NAME = 'test';

/** The answer to one query message, or undefined when it gets none (a response, a runt). */
export function answerQuery(
  query: Buffer,
  zone: DnsZone,
  proto: 'udp' | 'tcp' = 'udp',
): DnsAnswer | undefined {
  if (query.length < HEADER_BYTES) return undefined;
  const id = query.readUInt16BE(0);
  const flags = query.readUInt16BE(2);
  if (flags & QR) return undefined;
  const rd = flags & packet.RECURSION_DESIRED;
  const opcode = (flags >> 11) & 0xf;
  const bare = (rcode: DnsRcode, name = '', type = ''): DnsAnswer => {
    const response = Buffer.alloc(HEADER_BYTES);
    response.writeUInt16BE(id, 0);
    response.writeUInt16BE(QR | (opcode << 11) | rd | RCODE[rcode], 2);
    return { response, record: { name, type, rcode, answers: 0 } };
  };
  if (opcode !== 0) return bare('NOTIMP');
  let decoded: packet.DecodedPacket;
  try {
    decoded = packet.decode(query);
  } catch {
    return bare('FORMERR');
  }
  const questions = decoded.questions ?? [];
  const q = questions[0];
  if (questions.length !== 1 || !q) return bare('FORMERR');
  const name = q.name.toLowerCase().replace(/\.$/, '');
  if ((q.class ?? 'IN') !== 'IN') return bare('REFUSED', name, q.type);

  const ttl = zone.ttl ?? 1;
  const entry = Object.hasOwn(zone.names, name) ? zone.names[name] : undefined;
  const addresses = q.type === 'A' ? (entry?.a ?? []) : q.type === 'AAAA' ? (entry?.aaaa ?? []) : [];
  const answers: packet.Answer[] =
    q.type === 'A' || q.type === 'AAAA'
      ? addresses.map((data) => ({ type: q.type as 'A' | 'AAAA', name: q.name, ttl, class: 'IN', data }))
      : [];
  const rcode: DnsRcode = entry ? 'NOERROR' : 'NXDOMAIN';
  const truncated = proto === 'udp' && zone.truncateUdp === true;
  const negative = answers.length === 0;
  const response = packet.encode({
    type: 'response',
    id,
    flags: packet.AUTHORITATIVE_ANSWER | rd | RCODE[rcode] | (truncated ? packet.TRUNCATED_RESPONSE : 0),
    questions: [q],
    answers: truncated ? [] : answers,
    authorities: negative && !truncated ? [soa(zone)] : [],
  });
  return {
    response,
    record: {
      name,
      type: q.type,
      rcode,
      answers: truncated ? 0 : answers.length,
      ...(truncated && { truncated }),
    },
  };
}

function soa(zone: DnsZone): packet.Answer {
  const minimum = zone.negativeTtl ?? 5;
  return {
    type: 'SOA',
    name: SOA_NAME,
    ttl: minimum,
    class: 'IN',
    data: {
      mname: `ns.${SOA_NAME}`,
      rname: `hostmaster.${SOA_NAME}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum,
    },
  };
}

export interface DnsServerOptions {
  zone: DnsZone;
  /** Default 127.0.0.1. */
  host?: string;
  /** UDP and TCP port; default 0 (one free port, the same for both). */
  port?: number;
  onQuery?: (r: DnsQueryRecord) => void;
}

export interface DnsServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** A TCP client may keep its connection for several queries; idle ones are closed after this. */
const TCP_IDLE_MS = 10_000;
const MAX_TCP_BUFFER = 2 + 65_535;

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const host = opts.host ?? '127.0.0.1';
  const report = opts.onQuery ?? (() => {});
  const tcp = net.createServer((socket) => serveTcp(socket, opts.zone, report));
  tcp.listen({ host, port: opts.port ?? 0 });
  await once(tcp, 'listening');
  const port = (tcp.address() as AddressInfo).port;

  const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  udp.on('message', (msg, rinfo) => {
    const a = answerQuery(msg, opts.zone, 'udp');
    if (!a) return;
    report({ proto: 'udp', from: rinfo.address, ...a.record });
    udp.send(a.response, rinfo.port, rinfo.address);
  });
  udp.on('error', () => {}); // a send to a vanished client must not stop the server
  udp.bind(port, host);
  await once(udp, 'listening');

  const sockets = new Set<net.Socket>();
  tcp.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return {
    host,
    port,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((r) => tcp.close(() => r())),
        new Promise<void>((r) => udp.close(() => r())),
      ]);
    },
  };
}

/** Length-prefixed messages, any number per connection, split anywhere across reads. */
function serveTcp(socket: net.Socket, zone: DnsZone, report: (r: DnsQueryRecord) => void): void {
  let buf = Buffer.alloc(0);
  socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length > MAX_TCP_BUFFER + 2) {
      socket.destroy();
      return;
    }
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      const msg = buf.subarray(2, 2 + len);
      buf = buf.subarray(2 + len);
      const a = answerQuery(msg, zone, 'tcp');
      if (!a) continue;
      report({ proto: 'tcp', from: socket.remoteAddress ?? '', ...a.record });
      const framed = Buffer.alloc(2 + a.response.length);
      framed.writeUInt16BE(a.response.length, 0);
      a.response.copy(framed, 2);
      socket.write(framed);
    }
  });
}
