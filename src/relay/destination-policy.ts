/**
 * What a relay node agrees to connect to on behalf of the machines that joined
 * it. By default it refuses every address that reaches the node itself or its
 * LAN rather than the internet: unspecified, this-network (0.0.0.0/8),
 * loopback, RFC 1918, CGNAT (100.64.0.0/10), link-local, ULA (fc00::/7),
 * multicast, broadcast, class E and deprecated IPv4-compatible IPv6. An
 * allow-list of networks (`node.allow`) opens chosen ones again.
 *
 * Guarantees: pure, decides on IP literals only (anything else is refused: the
 * caller resolves a name and checks EVERY address it resolved to, then
 * connects to a checked address, so a DNS answer cannot swap in a private one);
 * an address is judged in its one canonical spelling, so ::ffff:127.0.0.1 and
 * ::ffff:7f00:1 are loopback like 127.0.0.1; families never cross, so "::/0"
 * in the allow-list opens IPv6 only, never IPv4 through its mapped form.
 *
 * 198.18.0.0/15 (RFC 2544 benchmarking) is ordinary here, NOT private: the
 * testbed and the netns tests use it as the internet a node relays to, and no
 * real LAN uses it. A node's own addresses (public ones included) are refused
 * by its caller with the host's interface list (proxy/own-host-guard.ts,
 * wired in daemon/front-end-guards.ts); `allows` tells it what node.allow opens.
 */
import { BlockList } from 'node:net';
import { LinkmuxError } from '../util/errors.js';
import { canonicalIp, parseCidr } from '../net/address.js';
import { specialAddressKind } from '../net/ip-ranges.js';
import type { AddressKind } from '../net/ip-ranges.js';

export type DestinationVerdict = { allowed: true } | { allowed: false; reason: string };

const KIND_TEXT: Record<AddressKind, string> = {
  unspecified: 'the unspecified address',
  'this-network': 'a "this network" address (0.0.0.0/8)',
  loopback: 'a loopback address',
  private: 'a private address (RFC 1918)',
  shared: 'a carrier-grade NAT address (100.64.0.0/10)',
  'link-local': 'a link-local address',
  'unique-local': 'a unique local address (private IPv6, fc00::/7)',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
  reserved: 'a reserved address (240.0.0.0/4)',
  'ipv4-compatible': 'a deprecated IPv4-compatible IPv6 address (::/96)',
};

export class DestinationPolicy {
  private readonly v4 = new BlockList();
  private readonly v6 = new BlockList();

  /** `allow`: networks ("192.168.1.0/24", "fd00::/8") or single addresses to open despite their range. */
  constructor(allow: readonly string[]) {
    allow.forEach((text, i) => {
      const cidr = typeof text === 'string' ? parseCidr(text.trim()) : undefined;
      if (!cidr) {
        throw new LinkmuxError(
          'LINKMUX_ERR_CONFIG',
          `node.allow[${i}]: ${JSON.stringify(text)} is not a network like 192.168.1.0/24 or fd00::/8`,
        );
      }
      const mapped = cidr.family === 6 ? mappedV4Network(cidr.address, cidr.prefix) : undefined;
      if (mapped) this.v4.addSubnet(mapped.address, mapped.prefix, 'ipv4');
      else if (cidr.family === 4) this.v4.addSubnet(cidr.address, cidr.prefix, 'ipv4');
      else this.v6.addSubnet(cidr.address, cidr.prefix, 'ipv6');
    });
  }

  /** True when node.allow names the address (its network is in the allow-list). */
  allows(ip: string): boolean {
    const c = canonicalIp(ip);
    if (!c) return false;
    return (c.family === 4 ? this.v4 : this.v6).check(c.ip, c.family === 4 ? 'ipv4' : 'ipv6');
  }

  check(ip: string): DestinationVerdict {
    const c = canonicalIp(ip);
    if (!c) {
      return {
        allowed: false,
        reason: `${JSON.stringify(ip)} is not an IP address: resolve the name and check each address`,
      };
    }
    const kind = specialAddressKind(c);
    if (kind === undefined) return { allowed: true };
    const list = c.family === 4 ? this.v4 : this.v6;
    if (list.check(c.ip, c.family === 4 ? 'ipv4' : 'ipv6')) return { allowed: true };
    const shown = c.ip === ip ? ip : `${ip} (${c.family === 4 ? 'IPv4-mapped ' : ''}${c.ip})`;
    return { allowed: false, reason: `${shown} is ${KIND_TEXT[kind]}; add it to node.allow to open it` };
  }
}

/** The IPv4 network an IPv6 one inside ::ffff:0:0/96 stands for (::ffff:10.0.0.0/104 → 10.0.0.0/8). */
function mappedV4Network(address: string, prefix: number): { address: string; prefix: number } | undefined {
  if (prefix < 96) return undefined;
  const c = canonicalIp(address);
  return c?.family === 4 ? { address: c.ip, prefix: prefix - 96 } : undefined;
}
