/**
 * Name resolution THROUGH the links. The system resolver's queries follow the
 * main default route, so when that uplink dies silently every lookup dies with
 * it; here each query is a datagram sent out of one link (like any connection)
 * to a nameserver, and the attempts race across links and servers.
 *
 *   lookup(name) ─► literal? localhost? /etc/hosts? cache? ─► query A (and AAAA)
 *       query ─► attempt 1: link a → server 1 ─┐ first answer wins; a new attempt
 *                attempt 2: link b → server 1 ─┤ starts every perTryMs, or at
 *                attempt 3: link a → server 2 ─┘ once when one fails
 *
 * Guarantees:
 * - no thread pool: queries are sockets, so a burst of unresolvable names never
 *   delays a cached, /etc/hosts or resolvable name (the libc resolver queues
 *   them all on libuv's four threads);
 * - one query per (name, type) in flight, shared by every caller; answers and
 *   negative answers cached for their TTL (see cache.ts);
 * - a dead link or server costs at most `perTryMs` (the next attempt starts
 *   then); the whole lookup ends by `totalMs` with LINKMUX_ERR_DNS; links that
 *   missed an answer lately are asked last for a while;
 * - IPv4 is preferred when the caller accepts both; a name whose records are
 *   all of a family no link has fails with LINKMUX_ERR_NO_ROUTE (not the
 *   link's fault, so health does not count it);
 * - with no link able to carry a query (only relays, or no nameserver known),
 *   the system resolver is used, under the same deadline.
 */
import dns from 'node:dns';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { LinkmuxError, describe, systemCode } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { silentLogger } from '../util/logger.js';
import { DnsCache } from './cache.js';
import { directCarrier } from './direct-carrier.js';
import { HostsFile, normalizeName } from './hosts-file.js';
import { queryThroughLink, type Nameserver, type Settled } from './link-query.js';
import type { QueryType } from './message.js';
import { candidateNames, planAttempts } from './plan.js';
import { readResolvConf, type ResolvConf } from './resolv-conf.js';
import { ipLiteral } from '../net/resolve.js';
import type { Link } from '../links/link.js';
import { carrierOf, type DnsCarrier } from './link-carriers.js';

export interface Address {
  address: string;
  family: 4 | 6;
}

export interface LinkResolverOptions {
  /** The links that may carry queries (those that can send UDP do), in the order given. */
  links: () => readonly Link[];
  /** Nameservers asked before the system's (config `dns.servers`). */
  servers?: readonly Nameserver[];
  /** Also ask the system's nameservers (default true). */
  useSystemServers?: boolean;
  /** The system's settings; default: /etc/resolv.conf, re-read every 30 s. */
  readSystem?: () => Promise<ResolvConf>;
  hosts?: HostsFile;
  clock?: Clock;
  cache?: DnsCache;
  /** ms before the next attempt starts (default 1000). */
  perTryMs?: number;
  /** ms a lookup may take in all (default 5000). */
  totalMs?: number;
  /** Fallback when no link can carry a query (default: dns.promises.lookup). */
  systemLookup?: (host: string) => Promise<Array<{ address: string; family: number }>>;
  logger?: Logger;
  /** Loopback nameservers are asked over plain sockets, not links (default true; tests turn it off). */
  loopbackDirect?: boolean;
}

export interface ResolverStats {
  queries: number;
  cacheHits: number;
  failures: number;
  cacheEntries: number;
}

const SYSTEM_REREAD_MS = 30_000;
const PENALTY_MS = 30_000;

/** A lookup outcome for one name and type. */
type Outcome = { kind: 'answer'; addresses: readonly string[] } | { kind: 'negative'; nxdomain: boolean };

export class LinkResolver {
  private readonly clock: Clock;
  private readonly cache: DnsCache;
  private readonly hosts: HostsFile;
  private readonly logger: Logger;
  private readonly perTryMs: number;
  private readonly totalMs: number;
  private readonly inFlight = new Map<string, Promise<Outcome>>();
  private readonly penalties = new Map<string, number>();
  private rank: (linkId: string) => number = () => 0;
  private system: { conf: Promise<ResolvConf>; at: number } | undefined;
  private readonly counters = { queries: 0, cacheHits: 0, failures: 0 };

  constructor(private readonly opts: LinkResolverOptions) {
    this.clock = opts.clock ?? systemClock;
    this.cache = opts.cache ?? new DnsCache({ clock: this.clock });
    this.hosts = opts.hosts ?? new HostsFile({ clock: this.clock });
    this.logger = opts.logger ?? silentLogger;
    this.perTryMs = opts.perTryMs ?? 1_000;
    this.totalMs = opts.totalMs ?? 5_000;
  }

  /**
   * Orders the links for queries: lower rank first, ties in the given order.
   * The daemon ranks by health, so an offline link is asked last, not never.
   */
  preferBy(rank: (linkId: string) => number): void {
    this.rank = rank;
  }

  stats(): ResolverStats {
    return { ...this.counters, cacheEntries: this.cache.size };
  }

  /** The `Resolver` shape links take: one address of a family in `families`, IPv4 first. */
  readonly resolve = async (host: string, families: ReadonlySet<4 | 6>): Promise<Address> => {
    const all = await this.lookup(host, families);
    return all[0] as Address;
  };

  /**
   * Addresses of `host` of the families asked, never empty: the IPv4 ones when
   * IPv4 is acceptable and the name has any (the AAAA answer is then not awaited),
   * else the IPv6 ones.
   */
  async lookup(host: string, families: ReadonlySet<4 | 6>): Promise<Address[]> {
    const literal = ipLiteral(host);
    if (literal) return [literal];
    const name = normalizeName(host);
    if (name === 'localhost' || name.endsWith('.localhost')) {
      return pick(
        host,
        [
          { address: '127.0.0.1', family: 4 },
          { address: '::1', family: 6 },
        ],
        families,
      );
    }
    const fromHosts = await this.hosts.lookup(name);
    if (fromHosts && fromHosts.length > 0) return pick(host, fromHosts, families);
    const deadline = this.clock.now() + this.totalMs;
    const conf = await this.systemConf();
    let nxdomain = true;
    for (const candidate of candidateNames(name, conf.search, conf.ndots)) {
      const found = await this.resolveName(candidate, families, deadline, conf);
      if (Array.isArray(found)) return found;
      nxdomain &&= found.nxdomain;
    }
    this.counters.failures++;
    throw new LinkmuxError(
      'LINKMUX_ERR_DNS',
      nxdomain
        ? `cannot resolve ${host}: no such host: check the spelling`
        : `cannot resolve ${host}: it has no ${families.has(4) ? 'IPv4 ' : ''}${families.size === 2 ? 'or ' : ''}${families.has(6) ? 'IPv6 ' : ''}address`,
    );
  }

  /** Addresses, or the negative outcome that sends the caller to the next candidate name. */
  private async resolveName(
    name: string,
    families: ReadonlySet<4 | 6>,
    deadline: number,
    conf: ResolvConf,
  ): Promise<Address[] | { nxdomain: boolean }> {
    const types: QueryType[] = families.has(4) ? ['A', 'AAAA'] : ['AAAA'];
    const wantBoth = families.has(4) && families.has(6);
    const a = this.query(name, types[0] as QueryType, deadline, conf);
    // Both at once when both are acceptable, so a missing A record costs no extra round trip.
    const aaaa = wantBoth ? this.query(name, 'AAAA', deadline, conf) : undefined;
    aaaa?.catch(() => {});
    let first: Outcome;
    try {
      first = await a;
    } catch (err) {
      if (!aaaa) throw err;
      const second = await aaaa.catch(() => undefined);
      if (second?.kind === 'answer') return second.addresses.map((address) => ({ address, family: 6 }));
      throw err;
    }
    const firstFamily = types[0] === 'A' ? 4 : 6;
    if (first.kind === 'answer') return first.addresses.map((address) => ({ address, family: firstFamily }));
    if (first.nxdomain) return { nxdomain: true };
    if (aaaa) {
      const second = await aaaa;
      if (second.kind === 'answer') return second.addresses.map((address) => ({ address, family: 6 }));
      return { nxdomain: second.nxdomain };
    }
    if (!families.has(6)) {
      // NODATA for A: say so plainly when the name lives on IPv6 only.
      const v6 = await this.query(name, 'AAAA', deadline, conf).catch(() => undefined);
      if (v6?.kind === 'answer') {
        throw new LinkmuxError(
          'LINKMUX_ERR_NO_ROUTE',
          `${name} has IPv6 addresses only, and no link has IPv6: use a link with IPv6, or a name with IPv4 records`,
        );
      }
    }
    return { nxdomain: false };
  }

  private query(name: string, type: QueryType, deadline: number, conf: ResolvConf): Promise<Outcome> {
    const cached = this.cache.get(name, type);
    if (cached) {
      this.counters.cacheHits++;
      return Promise.resolve(cached);
    }
    const key = `${type} ${name}`;
    let pending = this.inFlight.get(key);
    if (!pending) {
      this.counters.queries++;
      pending = this.exchange(name, type, deadline, conf).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  /** Races the planned attempts (see the module comment); caches what it learns. */
  private async exchange(
    name: string,
    type: QueryType,
    deadline: number,
    conf: ResolvConf,
  ): Promise<Outcome> {
    const carriers = this.carriers();
    const servers = this.servers(conf);
    const now = this.clock.now();
    const penalized = new Set([...this.penalties].filter(([, until]) => until > now).map(([id]) => id));
    const attempts = planAttempts(carriers, servers, penalized, this.opts.loopbackDirect ?? true);
    if (attempts.length === 0) return this.systemFallback(name, type, deadline);
    const settled = await new Promise<Settled | { kind: 'failed'; why: string[] }>((resolve) => {
      const ctl = new AbortController();
      const why: string[] = [];
      // Carriers that missed their per-try deadline, with the server they asked.
      const slow = new Map<string, number>();
      let next = 0;
      let running = 0;
      let done = false;
      let stagger: NodeJS.Timeout | undefined;
      const finish = (result: Settled | { kind: 'failed'; why: string[] }, by?: string, server?: number) => {
        if (done) return;
        done = true;
        clearTimeout(stagger);
        clearTimeout(total);
        ctl.abort();
        if (by !== undefined) {
          this.penalties.delete(by);
          // Only a link that missed the answer the SAME server gave through another link is to blame;
          // one that asked a dead server is not.
          for (const [id, asked] of slow) {
            if (id !== by && asked === server) this.penalties.set(id, this.clock.now() + PENALTY_MS);
          }
        }
        resolve(result);
      };
      const total = setTimeout(
        () => finish({ kind: 'failed', why: [...why, `no answer within ${Math.round(this.totalMs)} ms`] }),
        Math.max(0, deadline - this.clock.now()),
      );
      const launch = () => {
        clearTimeout(stagger);
        if (done) return;
        const attempt = attempts[next++];
        if (!attempt) {
          if (running === 0) finish({ kind: 'failed', why });
          return;
        }
        const carrier = attempt.carrier < 0 ? directCarrier : (carriers[attempt.carrier] as DnsCarrier);
        const server = servers[attempt.server] as Nameserver;
        running++;
        queryThroughLink(carrier, server, { name, type }, ctl.signal).then(
          (res) => {
            running--;
            if (res.kind === 'server-failure') {
              why.push(`${server.address} via ${carrier.id}: ${res.rcode}`);
              launch();
              return;
            }
            finish(res, carrier.id, attempt.server);
          },
          (err: unknown) => {
            running--;
            if (done) return;
            why.push(`${server.address} via ${carrier.id}: ${describe(err)}`);
            this.penalties.set(carrier.id, this.clock.now() + PENALTY_MS);
            launch();
          },
        );
        stagger = setTimeout(() => {
          slow.set(carrier.id, attempt.server);
          launch();
        }, this.perTryMs);
      };
      launch();
    });
    if (settled.kind === 'failed') {
      const via = [...new Set(carriers.map((c) => c.id))].join(', ') || 'no link';
      const asked = servers.map((s) => s.address).join(', ');
      this.logger.debug(`DNS ${type} ${name}: ${settled.why.join('; ')}`);
      throw new LinkmuxError(
        'LINKMUX_ERR_DNS',
        `cannot resolve ${name}: no nameserver answered (asked ${asked} through ${via}); ` +
          'check that a link is up, or set dns.servers to nameservers reachable from here',
      );
    }
    return this.remember(name, type, settled);
  }

  private remember(name: string, type: QueryType, res: Settled): Outcome {
    if (res.kind === 'server-failure') return { kind: 'negative', nxdomain: false };
    const value: Outcome =
      res.kind === 'answer'
        ? { kind: 'answer', addresses: res.addresses }
        : { kind: 'negative', nxdomain: res.nxdomain };
    this.cache.set(name, type, value, res.ttl);
    return value;
  }

  /** No link can carry a query: the system resolver, under the same deadline (not cached: no TTL). */
  private async systemFallback(name: string, type: QueryType, deadline: number): Promise<Outcome> {
    const lookup =
      this.opts.systemLookup ?? ((h) => dns.promises.lookup(h, { all: true, order: 'verbatim' }));
    const family = type === 'A' ? 4 : 6;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new LinkmuxError(
              'LINKMUX_ERR_DNS',
              `cannot resolve ${name}: the system resolver did not answer in time`,
            ),
          ),
        Math.max(0, deadline - this.clock.now()),
      );
    });
    try {
      const all = await Promise.race([lookup(name), timeout]);
      const addresses = all.filter((a) => a.family === family).map((a) => a.address);
      return addresses.length > 0 ? { kind: 'answer', addresses } : { kind: 'negative', nxdomain: false };
    } catch (err) {
      const code = systemCode(err);
      if (code === 'ENOTFOUND') return { kind: 'negative', nxdomain: true };
      if (code === 'ENODATA') return { kind: 'negative', nxdomain: false };
      throw err instanceof LinkmuxError
        ? err
        : new LinkmuxError('LINKMUX_ERR_DNS', `cannot resolve ${name}: ${describe(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  private carriers(): DnsCarrier[] {
    return this.opts
      .links()
      .map((link, i) => ({ carrier: carrierOf(link), rank: this.rank(link.id), i }))
      .filter((c): c is { carrier: DnsCarrier; rank: number; i: number } => c.carrier !== undefined)
      .sort((a, b) => a.rank - b.rank || a.i - b.i)
      .map((c) => c.carrier);
  }

  private servers(conf: ResolvConf): Nameserver[] {
    const out = [...(this.opts.servers ?? [])];
    if (this.opts.useSystemServers !== false) {
      for (const address of conf.nameservers) {
        if (!out.some((s) => s.address === address && s.port === 53)) out.push({ address, port: 53 });
      }
    }
    return out;
  }

  private systemConf(): Promise<ResolvConf> {
    const now = this.clock.now();
    if (!this.system || now - this.system.at > SYSTEM_REREAD_MS) {
      const read = this.opts.readSystem ?? (() => readResolvConf());
      this.system = { conf: read(), at: now };
    }
    return this.system.conf;
  }
}

/** The addresses of the families asked, preferred (IPv4) first; LINKMUX_ERR_NO_ROUTE when none fits. */
function pick(host: string, all: ReadonlyArray<Address>, families: ReadonlySet<4 | 6>): Address[] {
  const fit = [
    ...all.filter((a) => a.family === 4 && families.has(4)),
    ...all.filter((a) => a.family === 6 && families.has(6)),
  ];
  if (fit.length > 0) return fit;
  const got = [...new Set(all.map((a) => `IPv${a.family}`))].join(' and ');
  throw new LinkmuxError(
    'LINKMUX_ERR_NO_ROUTE',
    `${host} has ${got} addresses only, and no link has that family: use a link that has it`,
  );
}
