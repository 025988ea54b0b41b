/**
 * Which interfaces become links: the pure choice from `--link` requests, and the
 * helper that builds LocalLinks from it.
 *
 * Guarantees: with no request, every usable uplink (LINKMUX_ERR_NO_LINKS when
 * there is none), its default route in the main table or in a policy table that
 * an `ip rule from ADDR` selects (net/policy-default-routes.ts); a request names an interface or one of its addresses (an
 * address request puts that address first, so it becomes the source address);
 * an explicitly named interface need not have a default route (and may be
 * loopback, handy for tests) but must be up and have an address; requests that
 * land on the same interface collapse into one link, in request order.
 */
import { LinkmuxError } from '../util/errors.js';
import type { NetInterface } from '../net/interfaces-types.js';
import { isUsableUplink, uplinkProblem } from '../net/interfaces.js';
import { isLinkLocal } from '../net/link-local.js';
import { sameHost } from '../net/address.js';
import type { LocalLinkOptions } from './local-link.js';
import { LocalLink } from './local-link.js';

export function selectUplinks(
  interfaces: NetInterface[],
  requested: readonly string[],
  platform: NodeJS.Platform = process.platform,
): NetInterface[] {
  const requests = splitLinkRequests(requested);
  if (requests.length === 0) {
    const usable = interfaces.filter((i) => isUsableUplink(i, platform));
    if (usable.length === 0) {
      const why = interfaces
        .filter((i) => !i.loopback)
        .map((i) => `${i.name}: ${uplinkProblem(i, platform)}`)
        .join(', ');
      throw new LinkmuxError(
        'LINKMUX_ERR_NO_LINKS',
        `no usable uplink found${why ? ` (${why})` : ''}: connect one, or name an interface or address with ` +
          `--link (see \`linkmux links --all\`)`,
      );
    }
    return usable;
  }

  const chosen = new Map<string, NetInterface>();
  for (const request of requests) {
    const byName = interfaces.find((i) => i.name === request);
    const byAddress = byName
      ? undefined
      : interfaces.find((i) => i.addresses.some((a) => sameAddress(a.address, request)));
    const iface = byName ?? byAddress;
    if (!iface) {
      const names = interfaces.map((i) => i.name).join(', ') || 'none';
      throw new LinkmuxError(
        'LINKMUX_ERR_LINK_UNKNOWN',
        `--link ${request} names no interface or address of this machine; interfaces: ${names}`,
      );
    }
    if (!iface.up) {
      throw new LinkmuxError(
        'LINKMUX_ERR_LINK_DOWN',
        `--link ${request}: interface ${iface.name} is down: bring it up (ip link set ${iface.name} up) ` +
          `or choose another with --link`,
      );
    }
    const usable = iface.addresses.filter((a) => !isLinkLocal(a.address));
    if (usable.length === 0) {
      throw new LinkmuxError(
        'LINKMUX_ERR_LINK_NO_ADDRESS',
        `--link ${request}: interface ${iface.name} has no usable IP address (link-local ones cannot reach ` +
          `the internet): wait for DHCP or configure an address, then retry`,
      );
    }
    if (chosen.has(iface.name)) continue;
    const first = byAddress ? usable.filter((a) => sameAddress(a.address, request)) : [];
    const rest = usable.filter((a) => !first.includes(a));
    chosen.set(iface.name, { ...iface, addresses: [...first, ...rest] });
  }
  return [...chosen.values()];
}

/** Flattens repeated and comma-separated --link values ("eth0,wlan0"), dropping empty items. */
export function splitLinkRequests(values: readonly string[]): string[] {
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** Builds one LocalLink per selected interface, all sharing the same options (logger, resolver, mode). */
export function createLocalLinks(
  selection: readonly NetInterface[],
  opts: LocalLinkOptions = {},
): LocalLink[] {
  return selection.map((iface) => new LocalLink(iface, opts));
}

/** One spelling per address: "[2001:DB8:0::1]" and "2001:db8::1" compare equal. */
const sameAddress = sameHost;
