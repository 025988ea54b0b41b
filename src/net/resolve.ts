/**
 * Turns a destination host into the ONE IP address a link will connect to.
 *
 * Links resolve names themselves and connect to an IP literal, because a host
 * name handed to Node's connect() triggers happy-eyeballs, which opens fresh
 * sockets that are not bound to the link. The lookup itself uses the system
 * resolver (its queries follow the default route, not the link).
 *
 * Guarantees: IP literals (also "[v6]") come back unchanged, without a lookup;
 * the address returned has a family the link has; IPv4 is preferred when the link
 * has both families, IPv6 is used when the name (or the link) has only IPv6.
 * Failures are LINKMUX_ERR_DNS naming the host and saying what to check.
 */
import dns from 'node:dns';
import { ipFamily, stripBrackets } from './address.js';
import { LinkmuxError, describe, systemCode } from '../util/errors.js';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves `host` to one address of a family in `families` (the families the link has addresses of). */
export type Resolver = (host: string, families: ReadonlySet<4 | 6>) => Promise<ResolvedAddress>;

/** The lookup function, injectable for tests; shaped like `dns.promises.lookup(host, { all: true })`. */
export type LookupAll = (host: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: LookupAll = (host) => dns.promises.lookup(host, { all: true, order: 'verbatim' });

export function createResolver(lookup: LookupAll = systemLookup): Resolver {
  return async (host, families) => {
    const literal = ipLiteral(host);
    if (literal) return literal;
    let candidates: Array<{ address: string; family: number }>;
    try {
      candidates = await lookup(host);
    } catch (err) {
      throw dnsError(host, err);
    }
    return pickAddress(host, candidates, families);
  };
}

export const systemResolver: Resolver = createResolver();

/** The literal itself when `host` is an IP address (brackets removed), else undefined. */
export function ipLiteral(host: string): ResolvedAddress | undefined {
  const bare = stripBrackets(host);
  const family = ipFamily(bare);
  return family === 4 || family === 6 ? { address: bare, family } : undefined;
}

/** Pure choice among lookup results: first IPv4 when the link has IPv4, else first IPv6 when it has IPv6. */
export function pickAddress(
  host: string,
  candidates: ReadonlyArray<{ address: string; family: number }>,
  families: ReadonlySet<4 | 6>,
): ResolvedAddress {
  for (const family of [4, 6] as const) {
    if (!families.has(family)) continue;
    const hit = candidates.find((c) => c.family === family);
    if (hit) return { address: hit.address, family };
  }
  const got = [...new Set(candidates.map((c) => `IPv${c.family}`))].join(' and ') || 'no addresses';
  const have = [...families].map((f) => `IPv${f}`).join(' and ') || 'no addresses';
  throw new LinkmuxError(
    'LINKMUX_ERR_NO_ROUTE',
    `${host} resolves to ${got} only, but the link has ${have}: use a link with the other address family, ` +
      `or a host name that has ${have} records`,
  );
}

function dnsError(host: string, err: unknown): LinkmuxError {
  const code = systemCode(err);
  const hint =
    code === 'ENOTFOUND' || code === 'ENODATA'
      ? 'no such host: check the spelling'
      : code === 'EAI_AGAIN' || code === 'ETIMEOUT'
        ? 'the DNS server did not answer: check the network and /etc/resolv.conf, then retry'
        : `${describe(err)}: check the DNS settings`;
  return new LinkmuxError('LINKMUX_ERR_DNS', `cannot resolve ${host}: ${hint}`, { cause: err });
}
