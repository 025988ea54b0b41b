/**
 * IP literals, networks and the special-purpose address ranges (RFC 6890),
 * shared by the proxy rules (which send LAN destinations direct) and the relay
 * node's destination policy (which refuses them by default).
 *
 * Guarantees: pure, no DNS; one spelling per address (`canonicalIp` unmaps
 * IPv4-mapped IPv6, ::ffff:a00:1 and ::ffff:10.0.0.1 alike, to 10.0.0.1, and
 * prints IPv6 per RFC 5952), so a destination cannot dodge a range by being
 * written differently; `parseCidr` is strict (digits-only prefix, no zone, no
 * surrounding spaces) so "10.0.0.0/" never silently means /0.
 *
 * Deliberately NOT special: 198.18.0.0/15 (RFC 2544 benchmarking). The testbed
 * and the netns tests use it as "the internet", and on a real network it is
 * never a LAN, so a relay must reach it without an allow-list entry.
 */
import { BlockList, isIP } from 'node:net';
import { formatIPv6, parseIPv6, unmapIPv4 } from '../socks5/socks5-address.js';

export interface Cidr {
  /** The network address as written (host bits may be set; matching masks them). */
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128); undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [address = '', bits, extra] = text.split('/');
  const family = isIP(address);
  if ((family !== 4 && family !== 6) || extra !== undefined || address.includes('%')) return undefined;
  const max = family === 4 ? 32 : 128;
  // Digits only: Number('') is 0, and "10.0.0.0/" must not mean /0.
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family };
}

/** A BlockList holding one network (BlockList masks host bits itself). */
export function cidrBlockList(c: Cidr): BlockList {
  const list = new BlockList();
  list.addSubnet(c.address, c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
  return list;
}

/**
 * The one spelling of an IP literal: IPv4 as dotted quad, IPv4-mapped IPv6 as
 * that IPv4, other IPv6 in RFC 5952 form without zone or brackets. undefined
 * for anything that is not an IP literal (names, "10.0.0.256", octal forms).
 */
export function canonicalIp(text: string): { ip: string; family: 4 | 6 } | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(bare) === 4) return { ip: bare, family: 4 };
  const bytes = parseIPv6(bare);
  if (!bytes) return undefined;
  const ip = unmapIPv4(formatIPv6(bytes));
  return isIP(ip) === 4 ? { ip, family: 4 } : { ip, family: 6 };
}

export type AddressKind =
  | 'unspecified'
  | 'this-network'
  | 'loopback'
  | 'private'
  | 'shared'
  | 'link-local'
  | 'unique-local'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'ipv4-compatible';

/** Most specific first: the first row holding an address names its kind. */
const SPECIAL_RANGES: ReadonlyArray<readonly [cidr: string, kind: AddressKind]> = [
  ['0.0.0.0/32', 'unspecified'],
  ['::/128', 'unspecified'],
  ['0.0.0.0/8', 'this-network'],
  ['127.0.0.0/8', 'loopback'],
  ['::1/128', 'loopback'],
  ['10.0.0.0/8', 'private'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['100.64.0.0/10', 'shared'],
  ['169.254.0.0/16', 'link-local'],
  ['fe80::/10', 'link-local'],
  ['fc00::/7', 'unique-local'],
  ['224.0.0.0/4', 'multicast'],
  ['ff00::/8', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
  // ::a.b.c.d (RFC 4291 §2.5.5.1, deprecated): some kernels still tunnel it to the IPv4 address.
  ['::/96', 'ipv4-compatible'],
];

const RANGE_LISTS = SPECIAL_RANGES.map(([cidr, kind]) => {
  const c = parseCidr(cidr) as Cidr;
  return { kind, family: c.family, list: cidrBlockList(c) };
});

/**
 * The special-purpose range holding a canonical IP (see canonicalIp), or
 * undefined for an ordinary unicast address. Families never cross: an IPv4
 * address is only matched against IPv4 ranges.
 */
export function specialAddressKind(ip: { ip: string; family: 4 | 6 }): AddressKind | undefined {
  const type = ip.family === 4 ? 'ipv4' : 'ipv6';
  return RANGE_LISTS.find((r) => r.family === ip.family && r.list.check(ip.ip, type))?.kind;
}

/** One BlockList holding every range of the given kinds (it matches IPv4-mapped forms too). */
export function specialRangesList(kinds: readonly AddressKind[]): BlockList {
  const list = new BlockList();
  for (const [cidr, kind] of SPECIAL_RANGES) {
    if (!kinds.includes(kind)) continue;
    const c = parseCidr(cidr) as Cidr;
    list.addSubnet(c.address, c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}
