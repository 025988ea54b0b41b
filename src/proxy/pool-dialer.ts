/**
 * The Dialer behind `linkmux up`: resolves the destination, applies the rules,
 * asks the policy for a link and connects through it.
 *
 *   front end ─► dial(dst) ─► resolve ─► rules ─► policy.pick ─► link.connect
 *                                                   └─ failover: next links
 *
 * Failover is a staggered race (like happy eyeballs): the first link gets
 * `staggerMs` alone; if it has not connected by then, or fails, the next
 * candidate starts, up to `attempts` links; the first connection wins and the
 * others are aborted. So a dead link costs the client at most `staggerMs`, and
 * the client sees an error only when every candidate failed. A refused
 * connection (LINKMUX_ERR_REFUSED, set by the link that heard it) is the
 * destination's answer, not the link's fault: it ends the race at once and
 * does not count against the link. Destinations the rules send direct go out
 * of a DirectLink, like any other link; UDP goes only to links whose
 * `capabilities.udp` says they carry it.
 *
 * Connections are counted per link from the moment a connect starts until the
 * socket closes (`connectionsOn`, for status). What the policies see as a
 * link's `active` is its busy connections: those that moved bytes within the
 * last second or started within the last two (link-usage.ts, which keeps the
 * per-dial cost flat however many tunnels are open). Idle keep-alive
 * connections do not repel new ones, and a burst of simultaneous connections
 * spreads over the links before any of them has shown a rate.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import net from 'node:net';
import type { Destination, Link } from '../links/link.js';
import { DirectLink } from '../links/direct-link.js';
import type { LinkPool } from '../scheduler/link-pool.js';
import type { HealthInput } from '../health/state-machine.js';
import { connectFailureKind } from '../health/passive-rule.js';
import type { Policy } from '../scheduler/snapshot.js';
import { orderForFailover } from '../scheduler/failover.js';
import { formatHost, stripBrackets } from '../net/address.js';
import { systemResolver, type Resolver } from '../net/resolve.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { DialAbort } from '../util/dial-abort.js';
import { LinkmuxError, describe, isDescriptorExhaustion, isLinkmuxError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { silentLogger } from '../util/logger.js';
import type { DialContext, Dialed, Dialer } from './dialer.js';
import type { RuleSet } from './rules.js';
import { LinkUsage, type Tracked } from './link-usage.js';

export interface PoolDialerOptions {
  pool: LinkPool;
  policy: Policy;
  /** Policies a rule may name with `policy:<name>`. */
  policies?: Record<string, Policy>;
  rules: RuleSet;
  /** Carries what the rules send direct (default: a DirectLink of its own; its owner closes it). */
  direct?: Link;
  /** Passive health signals (connect failures) go here. */
  report?: (link: string, input: HealthInput) => void;
  resolve?: Resolver;
  connectTimeoutMs?: number;
  /** Links tried per connection, the first pick included (default 3). */
  attempts?: number;
  /** How long a link has alone before the next one joins the race (default 2000 ms). */
  staggerMs?: number;
  clock?: Clock;
  logger?: Logger;
  /**
   * Checked on the resolved address before any rule (a node's destination
   * policy): a refusal is LINKMUX_ERR_DENIED. Checking after resolution means a
   * name cannot smuggle in an address the check would refuse.
   */
  guard?: (ip: string) => { allowed: true } | { allowed: false; reason: string };
  /**
   * Checked on the address with the client's own address (the proxy's own-host
   * guard, own-host-guard.ts), where the guard is and again on a direct route's
   * address; `ruleNamed` is true when a config rule matched the destination.
   */
  clientGuard?: (
    ip: string,
    ctx: DialContext,
    ruleNamed: boolean,
  ) => { allowed: true } | { allowed: false; reason: string };
}

/** A race loser unanswered this long (at least) is reported as a timeout to the passive health rule. */
const LOSER_TIMEOUT_MS = 1_000;

/** Where a connection goes: the name the client gave (if any), its address when known, the port. */
interface Target {
  name?: string;
  ip?: string;
  port: number;
}

/** No candidate link has the destination's address family: not any link's fault (SOCKS5 0x04, HTTP 502). */
function noRoute(where: string, target: Target, ids?: string[]): LinkmuxError {
  const family = target.ip !== undefined && net.isIPv6(target.ip) ? 'IPv6' : 'IPv4';
  const which = ids ? `link ${ids.join(', ')} has no` : 'no link has an';
  return new LinkmuxError(
    'LINKMUX_ERR_NO_ROUTE',
    `cannot reach ${where}: it is an ${family} destination and ${which} ${family} address; ` +
      `add a link with ${family}, or use a name with ${family === 'IPv6' ? 'IPv4' : 'IPv6'} records`,
  );
}

export interface DialerCounters {
  active: number;
  total: number;
  failed: number;
}

export class PoolDialer implements Dialer {
  private readonly usage: LinkUsage;
  private readonly counters: DialerCounters = { active: 0, total: 0, failed: 0 };
  private readonly resolve: Resolver;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly direct: Link;

  constructor(private readonly opts: PoolDialerOptions) {
    this.direct = opts.direct ?? new DirectLink();
    this.resolve = opts.resolve ?? systemResolver;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? silentLogger;
    this.usage = new LinkUsage(this.clock);
  }

  /** Open connections (and connects in progress) per link, as the policies should see them. */
  connectionsOn(link: string): number {
    return this.usage.connectionsOn(link);
  }

  /** Connections on the link that moved bytes lately or are new (see link-usage.ts). */
  busyOn(link: string): number {
    return this.usage.busyOn(link);
  }

  stats(): DialerCounters {
    return { ...this.counters };
  }

  async dial(dst: Destination, ctx: DialContext = {}): Promise<Dialed> {
    this.counters.total++;
    try {
      const dialed = await this.route(dst, ctx);
      this.counters.active++;
      dialed.socket.once('close', () => this.counters.active--);
      return dialed;
    } catch (err) {
      this.counters.failed++;
      throw err;
    }
  }

  private async route(dst: Destination, ctx: DialContext): Promise<Dialed> {
    const target = await this.locate(dst);
    const { name, ip, port } = target;
    const route = this.opts.rules.route({ ...(name ? { name } : {}), ip, port });
    const where = `${name ?? formatHost(ip as string)}:${port}`;
    const verdict = ip === undefined ? undefined : this.opts.guard?.(ip);
    if (verdict && !verdict.allowed)
      throw new LinkmuxError('LINKMUX_ERR_DENIED', `${where}: ${verdict.reason}`);
    const ruleNamed = route.reason.startsWith('rule ');
    if (ip !== undefined) this.checkClient(ip, ctx, ruleNamed, where);
    if (ctx.link !== undefined && route.kind !== 'deny') {
      return this.race(this.reachable([ctx.link], target, where), target, ctx.signal);
    }
    switch (route.kind) {
      case 'deny':
        throw new LinkmuxError('LINKMUX_ERR_DENIED', `${where} is refused by ${route.reason} of the config`);
      case 'direct': {
        const address = await this.addressOf(target);
        this.checkClient(address, ctx, ruleNamed, where);
        const socket = await this.direct.connect(
          { host: address, port },
          { ...(ctx.signal ? { signal: ctx.signal } : {}), timeoutMs: this.opts.connectTimeoutMs ?? 10_000 },
        );
        return { socket, link: this.direct.id };
      }
      case 'link':
        return this.race(this.reachable([route.link], target, where), target, ctx.signal);
      case 'policy': {
        const policy = (route.policy && this.opts.policies?.[route.policy]) || this.opts.policy;
        const all = this.snapshot();
        const snapshot = all.filter((l) => this.canReach(l.id, target));
        if (snapshot.length === 0 && all.length > 0) throw noRoute(where, target);
        const first = policy.pick(snapshot, { destination: name ?? (ip as string), now: this.clock.now() });
        if (first === undefined) {
          throw new LinkmuxError(
            'LINKMUX_ERR_NO_LINKS',
            `no link is online to reach ${where}: see \`linkmux status\` for why each link is offline`,
          );
        }
        const attempts = Math.max(1, this.opts.attempts ?? 3);
        const rest = orderForFailover(snapshot, first, { limit: attempts - 1 });
        return this.race([first, ...rest], target, ctx.signal);
      }
    }
  }

  /**
   * The destination as the links will get it. A name is resolved here (through
   * the links) when a local link may carry it, a rule or the guard must judge
   * its address; links that resolve names on the far side (nodes, SOCKS5
   * upstreams) still receive the name. When the lookup fails but such a link
   * exists and no address rule needs the answer, the name goes to them alone.
   */
  private async locate(dst: Destination): Promise<Target> {
    const bare = stripBrackets(dst.host);
    if (net.isIP(bare)) return { ip: bare, port: dst.port };
    const links = this.opts.pool.links;
    const localFamilies = new Set<4 | 6>(
      links.filter((l) => !l.capabilities.remoteNames).flatMap((l) => [...l.capabilities.families]),
    );
    const remote = links.some((l) => l.capabilities.remoteNames);
    const mustKnow = this.opts.guard !== undefined || this.opts.rules.matchesAddresses;
    if (localFamilies.size === 0 && !mustKnow) return { name: dst.host, port: dst.port };
    try {
      const families = localFamilies.size > 0 ? localFamilies : new Set<4 | 6>([4, 6]);
      const { address } = await this.resolve(dst.host, families);
      return { name: dst.host, ip: address, port: dst.port };
    } catch (err) {
      if (!remote || mustKnow) throw err;
      this.logger.debug(`${dst.host}: ${describe(err)}; the name goes to links that resolve it themselves`);
      return { name: dst.host, port: dst.port };
    }
  }

  private checkClient(ip: string, ctx: DialContext, ruleNamed: boolean, where: string): void {
    const verdict = this.opts.clientGuard?.(ip, ctx, ruleNamed);
    if (verdict && !verdict.allowed)
      throw new LinkmuxError('LINKMUX_ERR_DENIED', `${where}: ${verdict.reason}`);
  }

  /** See Dialer.udpDestination: the same rules and guards as a TCP dial, per datagram (lookups are cached). */
  async udpDestination(dst: Destination, ctx: DialContext = {}): Promise<string | undefined> {
    let ip: string | undefined;
    try {
      const bare = stripBrackets(dst.host);
      ip = net.isIP(bare) ? bare : (await this.resolve(dst.host, new Set([4, 6]))).address;
    } catch (err) {
      this.logger.debug(`UDP datagram to ${dst.host}:${dst.port} dropped: ${describe(err)}`);
      return undefined;
    }
    const name = net.isIP(stripBrackets(dst.host)) ? undefined : dst.host;
    const route = this.opts.rules.route({ ...(name ? { name } : {}), ip, port: dst.port });
    const ruleNamed = route.reason.startsWith('rule ');
    const verdict =
      route.kind === 'deny'
        ? { allowed: false as const, reason: `refused by ${route.reason} of the config` }
        : (this.opts.clientGuard?.(ip, ctx, ruleNamed) ?? { allowed: true as const });
    if (!verdict.allowed) {
      this.logger.debug(`UDP datagram to ${dst.host}:${dst.port} dropped: ${verdict.reason}`);
      return undefined;
    }
    return ip;
  }

  /** A link can carry the target: it resolves names itself, or has the family of the address. */
  private canReach(id: string, target: Target): boolean {
    const caps = this.opts.pool.get(id)?.capabilities;
    if (!caps) return true; // unknown ids fail in the race with their own message
    if (caps.remoteNames) return true;
    if (target.ip === undefined) return false;
    return caps.families.has(net.isIPv6(target.ip) ? 6 : 4);
  }

  private reachable(ids: string[], target: Target, where: string): string[] {
    const ok = ids.filter((id) => this.canReach(id, target));
    if (ok.length === 0) throw noRoute(where, target, ids);
    return ok;
  }

  /** The address for a direct connection (a name that went unresolved is resolved now). */
  private async addressOf(target: Target): Promise<string> {
    if (target.ip !== undefined) return target.ip;
    return (await this.resolve(target.name as string, new Set([4, 6]))).address;
  }

  /** The policy's pick among the links that declare UDP (relays do not), then the failover order. */
  async openUdp(family: 4 | 6, _ctx: DialContext = {}): Promise<{ socket: UdpSocket; link: string }> {
    const all = this.snapshot();
    const snapshot = all.filter((l) => this.opts.pool.get(l.id)?.capabilities.udp === true);
    if (snapshot.length === 0 && all.length > 0) {
      throw new LinkmuxError(
        'LINKMUX_ERR_LINK_CAPABILITY',
        `no link can carry UDP: ${all.map((l) => l.id).join(', ')} ${all.length === 1 ? 'is a relay' : 'are relays'}, ` +
          'which carry TCP only; add a local link for UDP',
      );
    }
    const first = this.opts.policy.pick(snapshot, { destination: 'udp', now: this.clock.now() });
    if (first === undefined) {
      throw new LinkmuxError('LINKMUX_ERR_NO_LINKS', 'no link is online for a UDP association');
    }
    let last: unknown;
    for (const id of [first, ...orderForFailover(snapshot, first, { limit: snapshot.length })]) {
      const link = this.opts.pool.get(id);
      if (!link?.capabilities.udp) continue;
      try {
        const socket = await link.openUdp(family);
        const held = this.hold(id);
        socket.once('close', () => this.drop(id, held));
        return { socket, link: id };
      } catch (err) {
        last = err;
        this.logger.debug(`UDP through ${id}: ${describe(err)}`);
      }
    }
    throw new LinkmuxError('LINKMUX_ERR_NO_LINKS', `no online link can carry UDP: ${describe(last)}`, {
      cause: last,
    });
  }

  private snapshot() {
    return this.opts.pool.snapshot((id) => this.busyOn(id));
  }

  private hold(id: string): Tracked {
    return this.usage.hold(id);
  }

  private drop(id: string, t: Tracked): void {
    this.usage.drop(id, t);
  }

  /** The staggered race over candidate links (see the module comment). */
  private race(candidates: string[], target: Target, signal: AbortSignal | undefined): Promise<Dialed> {
    const { port } = target;
    const shown = target.name ?? formatHost(target.ip as string);
    const stagger = this.opts.staggerMs ?? 2_000;
    return new Promise<Dialed>((resolve, reject) => {
      let next = 0;
      let running = 0;
      let settled = false;
      let lastError: unknown;
      let tried = 0;
      let denied = 0;
      let timer: NodeJS.Timeout | undefined;
      const attempts: DialAbort[] = [];
      let winner: DialAbort | undefined;
      const finish = (fn: () => void) => {
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        // The losers are aborted; the winner's signal must stay quiet (a link may tie its socket to it).
        for (const a of attempts) if (a !== winner) a.abort();
        fn();
      };
      const onAbort = () =>
        finish(() =>
          reject(new LinkmuxError('LINKMUX_ERR_ABORTED', `the client went away while connecting`)),
        );
      // 'abort' never fires for a signal aborted already (the client left during the DNS lookup).
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const launch = () => {
        clearTimeout(timer);
        if (settled) return;
        if (next >= candidates.length) {
          if (running === 0)
            finish(() =>
              reject(this.allFailed(candidates, shown, port, lastError, tried > 0 && denied === tried)),
            );
          return;
        }
        const id = candidates[next++] as string;
        const link = this.opts.pool.get(id);
        if (!link) {
          lastError = new LinkmuxError(
            'LINKMUX_ERR_LINK_UNKNOWN',
            `the config names link ${id}, which linkmux does not have`,
          );
          launch();
          return;
        }
        const ctl = new DialAbort();
        attempts.push(ctl);
        running++;
        const held = this.hold(id);
        // A node or upstream gets the name (it resolves where its uplink is); a local link the address.
        const host = link.capabilities.remoteNames
          ? (target.name ?? (target.ip as string))
          : (target.ip as string);
        const started = this.clock.now();
        link
          .connect({ host, port }, { signal: ctl.signal, timeoutMs: this.opts.connectTimeoutMs ?? 10_000 })
          .then((socket) => {
            running--;
            if (settled) {
              socket.destroy();
              this.drop(id, held);
              return;
            }
            held.socket = socket;
            socket.once('close', () => this.drop(id, held));
            this.opts.report?.(id, { type: 'connect-ok', dst: { host, port } });
            winner = ctl;
            finish(() => resolve({ socket, link: id }));
          })
          .catch((err: unknown) => {
            running--;
            this.drop(id, held);
            if (settled) {
              // A loser that had the stagger (and a SYN retransmit's second) alone and never connected
              // while another link did: a timeout, the only one the passive rule sees with long connect timeouts.
              const waited = this.clock.now() - started;
              if (winner && winner !== ctl && waited >= Math.max(stagger, LOSER_TIMEOUT_MS)) {
                const reason = `no connection to ${shown}:${port} in ${Math.round(waited)} ms while another link connected`;
                this.opts.report?.(id, { type: 'connect-failed', reason, kind: 'timeout' });
              }
              return;
            }
            // Out of descriptors is this process's condition: no link is to blame, none would do better.
            if (isDescriptorExhaustion(err)) {
              finish(() => reject(err));
              return;
            }
            if (isLinkmuxError(err, 'LINKMUX_ERR_REFUSED')) {
              // The destination answered: every link would hear the same.
              finish(() => reject(err));
              return;
            }
            lastError = err;
            tried++;
            if (isLinkmuxError(err, 'LINKMUX_ERR_DENIED')) denied++;
            // A relay refusing this destination says nothing about the link's health.
            if (!isLinkmuxError(err, 'LINKMUX_ERR_DENIED') && !isLinkmuxError(err, 'LINKMUX_ERR_NO_ROUTE')) {
              this.opts.report?.(id, {
                type: 'connect-failed',
                reason: describe(err),
                kind: connectFailureKind(err),
              });
            }
            this.logger.debug(`connect to ${shown}:${port} through ${id} failed: ${describe(err)}`);
            launch();
          });
        timer = setTimeout(launch, stagger);
        timer.unref();
      };
      launch();
    });
  }

  private allFailed(
    candidates: string[],
    shown: string,
    port: number,
    last: unknown,
    allDenied = false,
  ): LinkmuxError {
    // One link, or every relay refusing the destination: its own error says it best (SOCKS5 0x02 for a refusal).
    if (last instanceof LinkmuxError && (candidates.length === 1 || allDenied)) return last;
    // The last failure's blame carries over: a timeout, or a destination the far side cannot reach.
    const code =
      last instanceof LinkmuxError &&
      (last.code === 'LINKMUX_ERR_TIMEOUT' || last.code === 'LINKMUX_ERR_UNREACHABLE')
        ? last.code
        : 'LINKMUX_ERR_CONNECT';
    return new LinkmuxError(
      code,
      `cannot reach ${shown}:${port} through ${candidates.join(', ')}: ${describe(last)}`,
      { cause: last },
    );
  }
}
