/**
 * SOCKS5 addresses on the wire (RFC 1928 §4/§5): ATYP + DST.ADDR + DST.PORT,
 * shared by the request parser, the replies and the UDP header.
 *
 * Guarantees: decoding is pure and never throws on short input (it returns
 * undefined when more bytes are needed); IPv6 text is canonical (RFC 5952:
 * lower case, longest zero run compressed, IPv4-mapped as ::ffff:a.b.c.d), so
 * the dialer and rules see one spelling per address; domain names are passed
 * on as names, unresolved; encoding accepts any IP literal Node accepts.
 */
import net from 'node:net';

export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;

export interface Socks5Address {
  type: 'ipv4' | 'ipv6' | 'domain';
  /** Dotted IPv4, canonical IPv6 (no brackets) or the domain name as sent. */
  host: string;
  port: number;
}

/** Dotted quad of 4 bytes at `offset`. */
export function formatIPv4(buf: Uint8Array, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** RFC 5952 text of 16 bytes at `offset`. */
export function formatIPv6(buf: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((buf[offset + 2 * i] ?? 0) << 8) | (buf[offset + 2 * i + 1] ?? 0));
  // IPv4-mapped: keep the dotted tail, which is how every tool prints it.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(buf, offset + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  // RFC 5952 §4.2.2: a single zero group is not compressed.
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** 16 bytes of an IPv6 literal (a zone "%eth0" is ignored), or undefined when it is not one. */
export function parseIPv6(text: string): Buffer | undefined {
  const bare = text.split('%')[0] ?? '';
  if (net.isIPv6(bare) === false) return undefined;
  let head = bare;
  let v4: string | undefined;
  const lastColon = bare.lastIndexOf(':');
  if (bare.slice(lastColon + 1).includes('.')) {
    v4 = bare.slice(lastColon + 1);
    head = bare.slice(0, lastColon + 1) + '0:0';
  }
  const [left = '', right] = head.split('::');
  const toGroups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const l = toGroups(left);
  const r = right === undefined ? [] : toGroups(right);
  const groups =
    right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  if (v4 !== undefined) Buffer.from(v4.split('.').map(Number)).copy(out, 12);
  return out;
}

/** "1.2.3.4" for "::ffff:1.2.3.4", so replies and filters use one spelling of an IPv4 peer. */
export function unmapIPv4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m?.[1] ?? address;
}

/**
 * ATYP + ADDR + PORT for a host and port: IPv4 and IPv6 literals (IPv4-mapped
 * ones as IPv4) become ATYP 1/4, anything else a domain (ATYP 3, at most 255 bytes).
 */
export function encodeAddress(host: string, port: number): Buffer {
  const h = unmapIPv4(host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);
  const out = (atyp: number, addr: Uint8Array) => {
    const buf = Buffer.alloc(1 + addr.length + 2);
    buf[0] = atyp;
    buf.set(addr, 1);
    buf.writeUInt16BE(port & 0xffff, 1 + addr.length);
    return buf;
  };
  if (net.isIPv4(h)) return out(ATYP_IPV4, Uint8Array.from(h.split('.').map(Number)));
  const v6 = parseIPv6(h);
  if (v6) return out(ATYP_IPV6, v6);
  const name = Buffer.from(h, 'utf8');
  if (name.length === 0 || name.length > 255) {
    throw new RangeError(`a SOCKS5 domain name must be 1-255 bytes, got ${name.length}`);
  }
  return out(ATYP_DOMAIN, Buffer.concat([Buffer.from([name.length]), name]));
}

export type DecodedAddress =
  | { ok: true; address: Socks5Address; length: number }
  | { ok: false; reason: 'atyp' | 'domain-empty' | 'domain-bytes' }
  | undefined;

/**
 * Decodes ATYP + ADDR + PORT from a whole buffer (used for UDP datagrams; the
 * stream parser walks the same layout byte by byte). undefined: too short.
 */
export function decodeAddress(buf: Uint8Array, offset: number): DecodedAddress {
  const atyp = buf[offset];
  if (atyp === undefined) return undefined;
  let addrLen: number;
  let start = offset + 1;
  if (atyp === ATYP_IPV4) addrLen = 4;
  else if (atyp === ATYP_IPV6) addrLen = 16;
  else if (atyp === ATYP_DOMAIN) {
    const n = buf[offset + 1];
    if (n === undefined) return undefined;
    if (n === 0) return { ok: false, reason: 'domain-empty' };
    addrLen = n;
    start++;
  } else return { ok: false, reason: 'atyp' };
  if (buf.length < start + addrLen + 2) return undefined;
  const port = ((buf[start + addrLen] ?? 0) << 8) | (buf[start + addrLen + 1] ?? 0);
  const length = start + addrLen + 2 - offset;
  if (atyp === ATYP_IPV4)
    return { ok: true, address: { type: 'ipv4', host: formatIPv4(buf, start), port }, length };
  if (atyp === ATYP_IPV6)
    return { ok: true, address: { type: 'ipv6', host: formatIPv6(buf, start), port }, length };
  const name = buf.subarray(start, start + addrLen);
  if (!isDomainBytes(name)) return { ok: false, reason: 'domain-bytes' };
  return { ok: true, address: { type: 'domain', host: Buffer.from(name).toString('latin1'), port }, length };
}

/**
 * Printable ASCII without spaces only: clients send IDNs as punycode, and a NUL
 * or control byte in a name handed to the resolver is at best an error and at
 * worst a truncated lookup of some other name.
 */
export function isDomainBytes(name: Uint8Array): boolean {
  for (const b of name) if (b < 0x21 || b > 0x7e) return false;
  return true;
}
