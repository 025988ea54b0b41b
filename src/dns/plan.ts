/**
 * Which link asks which nameserver, in what order: pure planning of the
 * attempts of one query, and of the names tried for one lookup.
 *
 * Attempts: every (link, server) pair that can work, ordered so that the
 * second attempt uses another link and the third another server — a silently
 * dead link (the usual failure) or a dead server costs one per-try deadline,
 * not several. Pairs are sorted by (link rank + server rank), ties broken
 * towards the better server. A server on a link's own subnet (the home
 * router's DNS) is asked only through the links on that subnet; a loopback
 * server (a local dnsmasq) only over plain sockets ('direct'); links that
 * failed a query lately go after the others (`penalized`).
 */
import net from 'node:net';

export interface CarrierInfo {
  id: string;
  /** Address families the link has. */
  families: ReadonlySet<4 | 6>;
  /** True when `ip` is inside one of the link's own subnets. */
  onLink(ip: string): boolean;
}

export interface Attempt {
  /** Index into the carriers list, or -1 for the plain-socket carrier of loopback servers. */
  carrier: number;
  /** Index into the servers list. */
  server: number;
}

export function planAttempts(
  carriers: readonly CarrierInfo[],
  servers: ReadonlyArray<{ address: string }>,
  penalized: ReadonlySet<string> = new Set(),
  loopbackDirect = true,
): Attempt[] {
  const order = carriers
    .map((c, i) => ({ c, i }))
    .sort((a, b) => Number(penalized.has(a.c.id)) - Number(penalized.has(b.c.id)) || a.i - b.i);
  const scored: Array<Attempt & { score: number; s: number }> = [];
  servers.forEach(({ address }, s) => {
    if (loopbackDirect && isLoopback(address)) {
      scored.push({ carrier: -1, server: s, score: s, s });
      return;
    }
    const family = net.isIPv6(address) ? 6 : 4;
    const able = order.filter(({ c }) => c.families.has(family));
    const local = able.filter(({ c }) => c.onLink(address));
    const usable = local.length > 0 ? local : able;
    usable.forEach(({ i }, rank) => scored.push({ carrier: i, server: s, score: rank + s, s }));
  });
  return scored
    .sort((a, b) => a.score - b.score || a.s - b.s)
    .map(({ carrier, server }) => ({ carrier, server }));
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || (net.isIPv4(ip) && ip.startsWith('127.'));
}

/**
 * The names to ask for `host`, like the libc resolver: an absolute name
 * ("files.test.") as it is; a name with at least `ndots` dots first as it is,
 * then with each search domain; a shorter one with the search domains first.
 */
export function candidateNames(host: string, search: readonly string[], ndots: number): string[] {
  if (host.endsWith('.')) return [host.slice(0, -1)];
  const dots = host.split('.').length - 1;
  const expanded = search.map((d) => `${host}.${d}`);
  return dots >= ndots ? [host, ...expanded] : [...expanded, host];
}
