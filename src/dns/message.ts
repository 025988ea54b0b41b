/**
 * DNS messages as linkmux uses them: one question (A or AAAA) out, one
 * response in, interpreted. Pure: the wire format is dns-packet's; this file
 * decides what a response means.
 *
 * Guarantees: `interpret` accepts a response only when it is a response, its
 * id and question echo the query (case-insensitively, RFC 1035 §7.3 / 0x20),
 * and it decodes; anything else is `invalid` and the caller keeps waiting for
 * the real answer (a spoofed or stray datagram never ends a lookup). TTLs come
 * from the records, the CNAMEs that led to them included (the smallest wins);
 * a negative answer's TTL from the SOA in the authority section (RFC 2308),
 * else a default.
 */
import { createRequire } from 'node:module';
import type * as DnsPacket from 'dns-packet';

// require(), not import: an ES import of a CommonJS package makes Node lex its source for
// export names first; on the path of every `linkmux get` (see src/cli/main.ts).
const packet = createRequire(import.meta.url)('dns-packet') as typeof DnsPacket;

export type QueryType = 'A' | 'AAAA';

export interface Question {
  name: string;
  type: QueryType;
}

/** What a response says. */
export type Interpretation =
  /** Addresses of the asked type (the CNAME chain followed by the server); ttl in seconds. */
  | { kind: 'answer'; addresses: string[]; ttl: number }
  /** No such name (NXDOMAIN), or the name has no record of this type (NODATA). */
  | { kind: 'negative'; nxdomain: boolean; ttl: number }
  /** The server answered but could not help (SERVFAIL, REFUSED …): ask another. */
  | { kind: 'server-failure'; rcode: string }
  /** Truncated over UDP: ask again over TCP. */
  | { kind: 'truncated' }
  /** Not a response to this query (wrong id or question, garbage): ignore it. */
  | { kind: 'invalid'; why: string };

/** Negative answers without an SOA are cached this long (seconds). */
export const DEFAULT_NEGATIVE_TTL_S = 30;

export function encodeQuery(id: number, q: Question): Buffer {
  return packet.encode({
    type: 'query',
    id,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type: q.type, name: q.name, class: 'IN' }],
  });
}

/** The same query, length-prefixed for TCP (RFC 1035 §4.2.2). */
export function encodeTcpQuery(id: number, q: Question): Buffer {
  const body = encodeQuery(id, q);
  const out = Buffer.alloc(2 + body.length);
  out.writeUInt16BE(body.length, 0);
  body.copy(out, 2);
  return out;
}

export function interpret(buf: Buffer, id: number, q: Question): Interpretation {
  let res: DnsPacket.DecodedPacket & { rcode?: string };
  try {
    res = packet.decode(buf);
  } catch (err) {
    return { kind: 'invalid', why: `undecodable (${err instanceof Error ? err.message : String(err)})` };
  }
  if (res.type !== 'response') return { kind: 'invalid', why: 'not a response' };
  if (res.id !== id) return { kind: 'invalid', why: `id ${res.id ?? '?'} is not ${id}` };
  const asked = res.questions?.[0];
  if (!asked || !sameName(asked.name, q.name) || asked.type !== q.type) {
    return { kind: 'invalid', why: 'the question does not match' };
  }
  if (res.flag_tc) return { kind: 'truncated' };
  const rcode = res.rcode ?? 'NOERROR';
  if (rcode === 'NXDOMAIN') return { kind: 'negative', nxdomain: true, ttl: negativeTtl(res) };
  if (rcode !== 'NOERROR') return { kind: 'server-failure', rcode };
  const hits = (res.answers ?? []).filter(
    (a): a is DnsPacket.StringAnswer => a.type === q.type && typeof a.data === 'string',
  );
  if (hits.length === 0) return { kind: 'negative', nxdomain: false, ttl: negativeTtl(res) };
  // The addresses are only as fresh as every CNAME that led to them.
  const chain = (res.answers ?? []).filter((a): a is DnsPacket.StringAnswer => a.type === 'CNAME');
  const ttl = Math.min(...[...hits, ...chain].map((a) => a.ttl ?? 0));
  return { kind: 'answer', addresses: [...new Set(hits.map((a) => a.data))], ttl };
}

function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();
}

/** RFC 2308 §5: min(SOA TTL, SOA MINIMUM); without an SOA, the default. */
function negativeTtl(res: DnsPacket.DecodedPacket): number {
  const soa = (res.authorities ?? []).find((a): a is DnsPacket.SoaAnswer => a.type === 'SOA');
  if (!soa) return DEFAULT_NEGATIVE_TTL_S;
  return Math.min(soa.ttl ?? DEFAULT_NEGATIVE_TTL_S, soa.data.minimum ?? DEFAULT_NEGATIVE_TTL_S);
}
