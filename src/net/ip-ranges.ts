/**
 * IP literals, networks and the special-purpose address ranges (RFC 6890),
 * shared by the proxy rules (which send LAN destinations direct) and the relay
 * node's destination policy (which refuses them by default).
 *
 * Guarantees: pure, no DNS; ranges are matched by Node's BlockList against
 * the one spelling of an address (net/address.ts `canonicalIp`: IPv4-mapped
 * IPv6 is its IPv4 address), so a destination cannot dodge a range by being
 * written differently; networks come from the strict `parseCidr` there.
 *
 * Deliberately NOT special: 198.18.0.0/15 (RFC 2544 benchmarking). The testbed
 * and the netns tests use it as "the internet", and on a real network it is
 * never a LAN, so a relay must reach it without an allow-list entry.
 */
import { BlockList } from 'node:net';
import { parseCidr } from './address.js';
import type { CanonicalIp, Cidr } from './address.js';

/** A BlockList holding one network (BlockList masks host bits itself). */
export function cidrBlockList(c: Cidr): BlockList {
  const list = new BlockList();
  list.addSubnet(c.address, c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
  return list;
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
 * The special-purpose range holding a canonical IP (see address.ts canonicalIp), or
 * undefined for an ordinary unicast address. Families never cross: an IPv4
 * address is only matched against IPv4 ranges.
 */
export function specialAddressKind(ip: CanonicalIp): AddressKind | undefined {
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
