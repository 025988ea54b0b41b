/**
 * Addresses as text, in one place: host:port (IPv6 in brackets), IP literals
 * and networks. ipaddr.js does every IP parse and format; this module adds the
 * rules linkmux holds on top of it, so every room spells an address one way.
 *
 * Guarantees (pure, no DNS, never throws on bad input):
 * - IP literals are strict, as Node's sockets take them: IPv4 only as four
 *   decimal parts ("127.1", "0x7f.0.0.1", "01.2.3.4" are not IPs), IPv6 per
 *   RFC 4291 with an optional zone id ("fe80::1%eth0"), never in brackets;
 *   `canonicalIp` and `stripBrackets` accept the bracketed form.
 * - **IPv4-mapped IPv6 is the IPv4 address it carries.** `::ffff:1.2.3.4`,
 *   `::FFFF:102:304` and `1.2.3.4` are one address: `canonicalIp` gives
 *   "1.2.3.4", family 4, so a destination cannot dodge a range, a rule or a
 *   comparison by being written as IPv6. Where 16 bytes must stay IPv6 text
 *   (a SOCKS5 ATYP 4 field), they are spelled `::ffff:1.2.3.4`, as Node's
 *   sockets spell them.
 * - `::1.2.3.4` is IPv4-compatible (RFC 4291 §2.5.5.1, bytes ::0102:0304), not
 *   mapped: ipaddr.js reads that spelling as mapped, so it is parsed here.
 * - Canonical IPv6 text is RFC 5952 (lower case, longest zero run compressed),
 *   without zone or brackets.
 * - A dotted quad Node's `net.isIPv4` takes (four decimal parts, no leading
 *   zeros: the same rule) is already canonical, so the per-connect functions
 *   answer it without an ipaddr.js parse (the parse objects were ~5 KB of
 *   garbage per SOCKS5 connect).
 */
import { createRequire } from 'node:module';
import { isIPv4 } from 'node:net';
import type IpaddrJs from 'ipaddr.js';

// require(), not import: an ES import of a CommonJS package makes Node lex its source for
// export names first, which cost every `linkmux` run ~5 ms of CPU (see src/cli/main.ts).
const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof IpaddrJs;
type IPv4 = IpaddrJs.IPv4;
type IPv6 = IpaddrJs.IPv6;

export type IpFamily = 4 | 6;

/** An IP literal in its one spelling (see canonicalIp). */
export interface CanonicalIp {
  ip: string;
  family: IpFamily;
}

export interface HostPort {
  host: string;
  port: number;
}

export interface Cidr {
  /** The network address as written (host bits may be set; matching masks them). */
  address: string;
  prefix: number;
  family: IpFamily;
}

/** "[::1]" → "::1"; anything else unchanged. */
export function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * A host as it is written before ":port": IPv6 literals in brackets. Any text
 * with a colon is bracketed (no name has one), and bracketed text stays as it is.
 */
export function formatHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** "1.2.3.4:80", "[::1]:80", "example.com:443". */
export function formatHostPort(a: HostPort): string {
  return `${formatHost(a.host)}:${a.port}`;
}

/** HOST:PORT with an IPv4 address, a bracketed IPv6 address or a name. */
const HOST_PORT = /^(?:\[([^\]]+)\]|([^\s:[\]/]+)):(\d{1,5})$/;

/**
 * "HOST:PORT" → host (brackets removed) and port 0-65535, or undefined: the
 * port is required, IPv6 must be bracketed (and nothing else may be), no zone
 * id, surrounding spaces are ignored.
 */
export function parseHostPort(text: string): HostPort | undefined {
  const m = HOST_PORT.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || port > 65535) return undefined;
  if (m[1] !== undefined && (ipFamily(host) !== 6 || host.includes('%'))) return undefined;
  return { host, port };
}

/** ipaddr.js reads "::a.b.c.d" as IPv4-mapped; RFC 4291 makes it IPv4-compatible. */
const IPV4_COMPATIBLE = /^::(\d+\.\d+\.\d+\.\d+)$/;
/** A dotted IPv4 tail of an IPv6 literal, which must be as strict as IPv4 itself. */
const DOTTED_TAIL = /:(\d[\d.]*|0x.*)$/i;

/** The parsed literal and its zone id, or undefined when `text` is not a strict IP literal. */
function parseIp(text: string): { addr: IPv4 | IPv6; zone?: string } | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return { addr: ipaddr.IPv4.parse(text) };
  // The zone is an interface name, not address syntax: ipaddr.js only takes [0-9a-z] there.
  const pct = text.indexOf('%');
  const bare = pct < 0 ? text : text.slice(0, pct);
  const zone = pct < 0 ? undefined : text.slice(pct + 1);
  if (zone !== undefined && !/^[^\s%/[\]]+$/.test(zone)) return undefined;
  const tail = DOTTED_TAIL.exec(bare)?.[1];
  if (tail !== undefined && tail.includes('.') && !ipaddr.IPv4.isValidFourPartDecimal(tail)) return undefined;
  const compatible = IPV4_COMPATIBLE.exec(bare)?.[1];
  if (compatible !== undefined) {
    const v4 = ipaddr.IPv4.parse(compatible).toByteArray();
    return { addr: ipaddr.fromByteArray([...new Array<number>(12).fill(0), ...v4]) as IPv6, zone };
  }
  if (!ipaddr.IPv6.isValid(bare)) return undefined;
  return { addr: ipaddr.IPv6.parse(bare), zone };
}

/** 4 or 6 for a strict IP literal (zone allowed, no brackets), else 0: net.isIP's contract. */
export function ipFamily(text: string): 0 | IpFamily {
  if (isIPv4(text)) return 4;
  const p = parseIp(text);
  return p === undefined ? 0 : p.addr.kind() === 'ipv4' ? 4 : 6;
}

function canonical(addr: IPv4 | IPv6): CanonicalIp {
  if (addr.kind() === 'ipv4') return { ip: addr.toString(), family: 4 };
  const v6 = addr as IPv6;
  if (v6.isIPv4MappedAddress()) return { ip: v6.toIPv4Address().toString(), family: 4 };
  return { ip: v6.toRFC5952String(), family: 6 };
}

/**
 * The one spelling of an IP literal (brackets and zone id removed): IPv4 as
 * a dotted quad, IPv4-mapped IPv6 as that IPv4, other IPv6 in RFC 5952 form.
 * undefined for anything that is not an IP literal (names, "10.0.0.256", "127.1").
 */
export function canonicalIp(text: string): CanonicalIp | undefined {
  const bare = stripBrackets(text);
  if (isIPv4(bare)) return { ip: bare, family: 4 };
  const p = parseIp(bare);
  return p && canonical(p.addr);
}

/** True when both are the same IP (in any spelling), or the same text when either is not an IP. */
export function sameHost(a: string, b: string): boolean {
  const ca = canonicalIp(a);
  const cb = canonicalIp(b);
  return ca && cb ? ca.ip === cb.ip : stripBrackets(a) === stripBrackets(b);
}

/** "1.2.3.4" for an IPv4-mapped address in any spelling; any other text unchanged (socket addresses). */
export function unmapIPv4(address: string): string {
  if (isIPv4(address)) return address;
  const p = parseIp(address);
  return p?.addr.kind() === 'ipv6' && (p.addr as IPv6).isIPv4MappedAddress()
    ? (p.addr as IPv6).toIPv4Address().toString()
    : address;
}

/** The 4 or 16 bytes of an IP literal (zone ignored; IPv4-mapped stays 16 bytes), or undefined. */
export function ipToBytes(text: string): Buffer | undefined {
  if (isIPv4(text)) {
    const parts = text.split('.');
    return Buffer.from([Number(parts[0]), Number(parts[1]), Number(parts[2]), Number(parts[3])]);
  }
  const p = parseIp(text);
  return p && Buffer.from(p.addr.toByteArray());
}

/**
 * Text of 4 (IPv4) or 16 (IPv6) bytes at `offset`: a dotted quad, or RFC 5952
 * IPv6 with an IPv4-mapped address spelled ::ffff:a.b.c.d.
 */
export function ipFromBytes(buf: Uint8Array, offset: number, length: 4 | 16): string {
  const addr = ipaddr.fromByteArray(Array.from(buf.subarray(offset, offset + length)));
  if (addr.kind() === 'ipv4') return addr.toString();
  const v6 = addr as IPv6;
  return v6.isIPv4MappedAddress() ? `::ffff:${v6.toIPv4Address().toString()}` : v6.toRFC5952String();
}

/**
 * "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128); undefined
 * when malformed. Strict: digits-only prefix ("10.0.0.0/" is not /0), no zone,
 * no brackets, no spaces, IPv4 as four decimal parts.
 */
export function parseCidr(text: string): Cidr | undefined {
  const [address = '', bits, extra] = text.split('/');
  const family = ipFamily(address);
  if (family === 0 || extra !== undefined || address.includes('%')) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family };
}

/** The network address of `address/prefix` in canonical text (host bits cleared); undefined when not an IP. */
export function networkAddress(address: string, prefix: number): string | undefined {
  const p = parseIp(stripBrackets(address));
  if (!p || !Number.isInteger(prefix) || prefix < 0) return undefined;
  if (p.addr.kind() === 'ipv4') {
    return prefix > 32
      ? undefined
      : ipaddr.IPv4.networkAddressFromCIDR(`${p.addr.toString()}/${prefix}`).toString();
  }
  if (prefix > 128) return undefined;
  const net = ipaddr.IPv6.networkAddressFromCIDR(`${(p.addr as IPv6).toNormalizedString()}/${prefix}`);
  return net.toRFC5952String();
}

/**
 * True for hosts only this machine can reach: 127.0.0.0/8, ::1 (in any
 * spelling, bracketed or IPv4-mapped) and "localhost". Any other name is
 * remote, since what it resolves to is outside our control.
 */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const ip = canonicalIp(host);
  return ip?.family === 4 ? ip.ip.startsWith('127.') : ip?.ip === '::1';
}
