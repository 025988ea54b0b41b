/**
 * SOCKS5 addresses on the wire (RFC 1928 §4/§5): ATYP + DST.ADDR + DST.PORT,
 * shared by the request parser, the replies and the UDP header.
 *
 * Guarantees: decoding is pure and never throws on short input (it returns
 * undefined when more bytes are needed); address text comes from and goes to
 * net/address.ts (RFC 5952 IPv6, IPv4-mapped as ::ffff:a.b.c.d), so the dialer
 * and rules see one spelling per address; domain names are passed on as
 * names, unresolved; encoding accepts any IP literal Node accepts, and sends
 * an IPv4-mapped one as the IPv4 address it is (ATYP 1).
 */
import { canonicalIp, ipFromBytes, ipToBytes, stripBrackets } from '../net/address.js';

export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;

export interface Socks5Address {
  type: 'ipv4' | 'ipv6' | 'domain';
  /** Dotted IPv4, canonical IPv6 (no brackets) or the domain name as sent. */
  host: string;
  port: number;
}

/**
 * ATYP + ADDR + PORT for a host and port: IPv4 and IPv6 literals (IPv4-mapped
 * ones as IPv4) become ATYP 1/4, anything else a domain (ATYP 3, at most 255 bytes).
 */
export function encodeAddress(host: string, port: number): Buffer {
  const h = stripBrackets(host);
  const out = (atyp: number, addr: Uint8Array) => {
    const buf = Buffer.alloc(1 + addr.length + 2);
    buf[0] = atyp;
    buf.set(addr, 1);
    buf.writeUInt16BE(port & 0xffff, 1 + addr.length);
    return buf;
  };
  const ip = canonicalIp(h);
  if (ip) return out(ip.family === 4 ? ATYP_IPV4 : ATYP_IPV6, ipToBytes(ip.ip) as Buffer);
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
    return { ok: true, address: { type: 'ipv4', host: ipFromBytes(buf, start, 4), port }, length };
  if (atyp === ATYP_IPV6)
    return { ok: true, address: { type: 'ipv6', host: ipFromBytes(buf, start, 16), port }, length };
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
