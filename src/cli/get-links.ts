/**
 * The links of one `linkmux get`. URLs on this machine or its LAN (loopback,
 * own addresses, on-link subnets: net/direct-destination.ts) go direct, over
 * a plain socket, when no link is named: no uplink can carry them, and bound to
 * one they would only time out. Naming links (--link, --join) always uses them.
 */
import type { Link } from '../links/link.js';
import type { BindModeRequest } from '../links/local-link.js';
import { DirectLink } from '../links/direct-link.js';
import { discoverInterfaces } from '../net/interfaces.js';
import { isDirectDestination } from '../net/direct-destination.js';
import type { Logger } from '../util/logger.js';
import type { NetInterface } from '../net/interfaces-types.js';
import { ExecRunner } from '../util/runner.js';
import { openLinks, type LinkRequests } from './open-links.js';

export async function openGetLinks(
  urls: readonly URL[],
  requests: LinkRequests,
  mode: BindModeRequest,
  logger: Logger,
  /** This machine's interfaces, when the caller has already listed them. */
  known?: NetInterface[],
): Promise<Link[]> {
  const interfaces = known ?? (await discoverInterfaces(new ExecRunner()));
  const named = requests.local.length + requests.upstreams.length + requests.join.length > 0;
  if (named) return (await openLinks(requests, mode, logger, {}, interfaces)).links;
  if (urls.length > 0 && urls.every((u) => isDirectDestination(u.hostname, interfaces))) {
    const hosts = [...new Set(urls.map((u) => u.host))].join(', ');
    logger.info(
      `${hosts}: on this machine or its LAN, so fetched directly, not over the uplinks (--link names links to use instead)`,
    );
    return [new DirectLink()];
  }
  return (await openLinks(requests, mode, logger, {}, interfaces)).links;
}
