/**
 * Which links carry DNS queries, as carriers the resolver can plan with: the
 * links that can send UDP (local interfaces; relays resolve on the far side),
 * each knowing its own subnets so a LAN nameserver is asked through its LAN.
 */
import { BlockList } from 'node:net';
import type { Link } from '../links/link.js';
import { LocalLink } from '../links/local-link.js';
import type { Carrier } from './link-query.js';
import type { CarrierInfo } from './plan.js';

export type DnsCarrier = Carrier & CarrierInfo;

const memo = new WeakMap<Link, DnsCarrier>();

/** The link as a DNS carrier, or undefined when it cannot send UDP. */
export function carrierOf(link: Link): DnsCarrier | undefined {
  if (!link.capabilities.udp) return undefined;
  let carrier = memo.get(link);
  if (!carrier) {
    const subnets = new BlockList();
    if (link instanceof LocalLink) {
      for (const a of link.iface.addresses) {
        subnets.addSubnet(a.address, a.prefixLength, a.family === 4 ? 'ipv4' : 'ipv6');
      }
    }
    carrier = {
      id: link.id,
      get families() {
        return link.capabilities.families;
      },
      onLink: (ip) => subnets.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4'),
      openUdp: (family) => link.openUdp(family),
      connect: (dst, opts) => link.connect(dst, opts),
    };
    memo.set(link, carrier);
  }
  return carrier;
}
