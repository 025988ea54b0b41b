/**
 * Shared by every command that uses links: local interfaces (discovered, then
 * chosen with --link), SOCKS5 upstreams (--link socks5://…) and linkmux nodes
 * (--join TOKEN).
 *
 * Which local interfaces: the ones named; with none named, every usable uplink
 * — and when upstreams or nodes are given, a machine without any uplink of its
 * own is fine (it uses only theirs). Link ids must be unique.
 */
import { discoverInterfaces, isUsableUplink } from '../net/interfaces.js';
import { createLocalLinks, selectUplinks, splitLinkRequests } from '../links/select.js';
import type { BindModeRequest } from '../links/local-link.js';
import type { Link } from '../links/link.js';
import type { NetInterface } from '../net/interfaces-types.js';
import type { Socks5LinkOptions } from '../links/socks5-link.js';
import { isSocks5LinkRequest, nodeLinkOptions, parseSocks5Link } from '../links/remote-links.js';
import { decodeJoinToken } from '../links/join-token.js';
import type { JoinToken } from '../links/join-token.js';
import { ExecRunner } from '../util/runner.js';
import { LinkmuxError } from '../util/errors.js';
import type { LinkResolver } from '../dns/resolver.js';
import { ipLiteral, type Resolver } from '../net/resolve.js';
import type { Logger } from '../util/logger.js';

export interface LinkRequests {
  /** Interface names or addresses; [] = every usable uplink. */
  local: readonly string[];
  upstreams: readonly Socks5LinkOptions[];
  join: readonly JoinToken[];
}

/** Splits raw --link and --join flag values (comma lists allowed for --link) into requests. */
export function parseLinkFlags(links: readonly string[], join: readonly string[]): LinkRequests {
  const all = splitLinkRequests(links);
  return {
    local: all.filter((l) => !isSocks5LinkRequest(l)),
    upstreams: all.filter(isSocks5LinkRequest).map((l) => parseSocks5Link(l)),
    join: join.map((t) => decodeJoinToken(t)),
  };
}

/** Name lookups of the links' own connections (URLs, mirrors, probes) and of the proxy. */
export interface DnsSettings {
  servers?: ReadonlyArray<{ address: string; port: number }>;
  system?: boolean;
  perTryMs?: number;
  totalMs?: number;
}

export interface OpenedLinks {
  links: Link[];
  /**
   * Sends queries through these links (see src/dns/resolver.ts); shared by everything of this
   * process. `resolve` answers an IP literal itself, as the resolver would: the resolver's
   * modules (~6 ms of CPU) load on the first name or `load()`, so a download from an
   * IP-literal URL never loads them.
   */
  resolver: { resolve: Resolver; load: () => Promise<LinkResolver> };
}

export async function openLinks(
  requests: LinkRequests,
  mode: BindModeRequest,
  logger: Logger,
  dns: DnsSettings = {},
  /** This machine's interfaces, when the caller has already listed them. */
  known?: NetInterface[],
): Promise<OpenedLinks> {
  const remoteOptions = [...requests.upstreams, ...requests.join.flatMap((t) => nodeLinkOptions(t))];
  // The SOCKS5 client's modules load only when some link needs them (start-up of `linkmux get`).
  const remote: Link[] =
    remoteOptions.length === 0
      ? []
      : await import('../links/socks5-link.js').then(({ Socks5Link }) =>
          remoteOptions.map((o) => new Socks5Link(o)),
        );
  const interfaces = known ?? (await discoverInterfaces(new ExecRunner()));
  const local =
    requests.local.length === 0 && remote.length > 0
      ? interfaces.filter((i) => isUsableUplink(i, process.platform))
      : selectUplinks(interfaces, requests.local);
  const links: Link[] = [];
  let loaded: Promise<LinkResolver> | undefined;
  const load = () =>
    (loaded ??= import('../dns/resolver.js').then(
      ({ LinkResolver }) =>
        new LinkResolver({
          links: () => links,
          logger,
          ...(dns.servers ? { servers: dns.servers } : {}),
          ...(dns.system !== undefined ? { useSystemServers: dns.system } : {}),
          ...(dns.perTryMs !== undefined ? { perTryMs: dns.perTryMs } : {}),
          ...(dns.totalMs !== undefined ? { totalMs: dns.totalMs } : {}),
        }),
    ));
  const resolve: Resolver = async (host, families) =>
    ipLiteral(host) ?? (await load()).resolve(host, families);
  links.push(...createLocalLinks(local, { mode, logger, resolve }), ...remote);
  const seen = new Set<string>();
  for (const l of links) {
    if (seen.has(l.id)) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `two links are called ${l.id}: name SOCKS5 upstreams with #name (socks5://host:port#name), ` +
          'or join each node once',
      );
    }
    seen.add(l.id);
  }
  return { links, resolver: { resolve, load } };
}
