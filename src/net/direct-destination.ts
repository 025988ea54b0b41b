/**
 * Destinations no uplink should carry: loopback (127.0.0.0/8, ::1,
 * "localhost"), this machine's own addresses, and addresses on the subnet of
 * one of its interfaces that is up (on-link: the kernel delivers them straight
 * out of that interface, never through a default route). An uplink bound with
 * SO_BINDTODEVICE cannot reach them at all, so `linkmux get` fetches such URLs
 * over a plain socket (links/direct-link.ts), as the proxy's privateDirect does.
 *
 * Pure, no DNS: a host name other than localhost is never direct, whatever it
 * resolves to.
 */
import { BlockList } from 'node:net';
import type { NetInterface } from './interfaces-types.js';
import { canonicalIp } from './address.js';

export function isDirectDestination(host: string, interfaces: readonly NetInterface[]): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const ip = canonicalIp(host);
  if (!ip) return false;
  if ((ip.family === 4 && ip.ip.startsWith('127.')) || ip.ip === '::1') return true;
  const type = ip.family === 4 ? 'ipv4' : 'ipv6';
  return interfaces.some(
    (i) =>
      i.up &&
      i.addresses.some((a) => {
        if (a.family !== ip.family) return false;
        const subnet = new BlockList();
        subnet.addSubnet(a.address, a.prefixLength, type);
        return subnet.check(ip.ip, type);
      }),
  );
}
