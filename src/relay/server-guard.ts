/**
 * What `linkmux server` agrees to relay to: the node's destination policy
 * (no loopback, private, link-local … unless `allow` opens them) and, on top,
 * never this machine's own addresses — a server's public address is an
 * ordinary internet address to the policy, and relaying to it would reach the
 * server's own services (SSH, an admin panel) from the outside as if from inside.
 *
 * Guarantees: decides on IP literals (the dialer resolves first, then checks);
 * own addresses are read at each check (an address added later is covered);
 * the allow-list does not open the server's own addresses.
 */
import os from 'node:os';
import { DestinationPolicy, type DestinationVerdict } from './destination-policy.js';
import { canonicalIp } from '../net/address.js';

export type AddressSource = () => readonly string[];

/** Every address of this machine's interfaces, in canonical form. */
export const systemAddresses: AddressSource = () =>
  Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));

export function serverGuard(
  allow: readonly string[],
  own: AddressSource = systemAddresses,
): (ip: string) => DestinationVerdict {
  const policy = new DestinationPolicy(allow);
  return (ip) => {
    const c = canonicalIp(ip);
    if (c && own().some((a) => canonicalIp(a)?.ip === c.ip)) {
      return {
        allowed: false,
        reason: `${ip} is an address of this server itself: it relays only to other hosts`,
      };
    }
    return policy.check(ip);
  };
}
