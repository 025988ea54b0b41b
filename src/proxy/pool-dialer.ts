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
 * connection is the destination's answer, not the link's fault: it ends the
 * race at once and does not count against the link.
 *
 * Connections are counted per link from the moment a connect starts until the
 * socket closes (`connectionsOn`, for status). What the policies see as a
 * link's `active` is its busy connections: those that moved bytes within the
 * last second or started within the last two. Idle keep-alive connections do
 * not repel new ones, and a burst of simultaneous connections spreads over the
 * links before any of them has shown a rate.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import net, { type Socket } from 'node:net';
import { once } from 'node:events';
import type { Destination } from '../links/link.js';
import type { LinkPool } from '../links/link-pool.js';
import type { HealthInput } from '../health/state-machine.js';
import { connectFailureKind } from '../health/passive-rule.js';
import type { Policy } from '../scheduler/snapshot.js';
import { orderForFailover } from '../scheduler/failover.js';
import { systemResolver, type Resolver } from '../net/resolve.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { LinkmuxError, describe, isLinkmuxError, systemCode } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { silentLogger } from '../util/logger.js';
import type { DialContext, Dialed, Dialer } from './dialer.js';
import type { RuleSet } from './rules.js';

export interface PoolDialerOptions {
  pool: LinkPool;
  policy: Policy;
  /** Policies a rule may name with `policy:<name>`. */
  policies?: Record<string, Policy>;
  rules: RuleSet;
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
}

/** A race loser unanswered this long (at least) is reported as a timeout to the passive health rule. */
const LOSER_TIMEOUT_MS = 1_000;

/** A connection is busy while it moves bytes, and during its first seconds. */
const BUSY_WINDOW_MS = 1_000;
const FRESH_MS = 2_000;

interface Tracked {
  socket: { bytesRead: number; bytesWritten: number } | undefined;
  openedAt: number;
  lastBytes: number;
  lastMoved: number;
}

export interface DialerCounters {
  active: number;
  total: number;
  failed: number;
}

export class PoolDialer implements Dialer {
  private readonly inUse = new Map<string, Set<Tracked>>();
  private readonly counters: DialerCounters = { active: 0, total: 0, failed: 0 };
  private readonly resolve: Resolver;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(private readonly opts: PoolDialerOptions) {
    this.resolve = opts.resolve ?? systemResolver;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? silentLogger;
  }

  /** Open connections (and connects in progress) per link, as the policies should see them. */
  connectionsOn(link: string): number {
    return this.inUse.get(link)?.size ?? 0;
  }

  /** Connections on the link that moved bytes lately or are new (see the module comment). */
  busyOn(link: string): number {
    const now = this.clock.now();
    let busy = 0;
    for (const t of this.inUse.get(link) ?? []) {
      const bytes = t.socket ? t.socket.bytesRead + t.socket.bytesWritten : 0;
      if (bytes !== t.lastBytes) {
        t.lastBytes = bytes;
        t.lastMoved = now;
      }
      if (now - t.openedAt < FRESH_MS || now - t.lastMoved < BUSY_WINDOW_MS) busy++;
    }
    return busy;
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
    const name = net.isIP(dst.host) ? undefined : dst.host;
    const target = await this.resolve(dst.host, new Set([4, 6]));
    const route = this.opts.rules.route({ ...(name ? { name } : {}), ip: target.address, port: dst.port });
    const where = `${name ?? target.address}:${dst.port}`;
    const verdict = this.opts.guard?.(target.address);
    if (verdict && !verdict.allowed)
      throw new LinkmuxError('LINKMUX_ERR_DENIED', `${where}: ${verdict.reason}`);
    if (ctx.link !== undefined && route.kind !== 'deny') {
      return this.race([ctx.link], target.address, dst.port, ctx.signal);
    }
    switch (route.kind) {
      case 'deny':
        throw new LinkmuxError('LINKMUX_ERR_DENIED', `${where} is refused by ${route.reason} of the config`);
      case 'direct':
        return { socket: await this.direct(target.address, dst.port, ctx.signal), link: 'direct' };
      case 'link':
        return this.race([route.link], target.address, dst.port, ctx.signal);
      case 'policy': {
        const policy = (route.policy && this.opts.policies?.[route.policy]) || this.opts.policy;
        const snapshot = this.snapshot();
        const first = policy.pick(snapshot, { destination: name ?? target.address, now: this.clock.now() });
        if (first === undefined) {
          throw new LinkmuxError(
            'LINKMUX_ERR_NO_LINKS',
            `no link is online to reach ${where}: see \`linkmux status\` for why each link is offline`,
          );
        }
        const attempts = Math.max(1, this.opts.attempts ?? 3);
        const rest = orderForFailover(snapshot, first, { limit: attempts - 1 });
        return this.race([first, ...rest], target.address, dst.port, ctx.signal);
      }
    }
  }

  /** The policy's pick, then the failover order: links that cannot carry UDP (relays) are skipped. */
  async openUdp(family: 4 | 6, _ctx: DialContext = {}): Promise<{ socket: UdpSocket; link: string }> {
    const snapshot = this.snapshot();
    const first = this.opts.policy.pick(snapshot, { destination: 'udp', now: this.clock.now() });
    if (first === undefined) {
      throw new LinkmuxError('LINKMUX_ERR_NO_LINKS', 'no link is online for a UDP association');
    }
    let last: unknown;
    for (const id of [first, ...orderForFailover(snapshot, first, { limit: snapshot.length })]) {
      const link = this.opts.pool.get(id);
      if (!link) continue;
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
    const now = this.clock.now();
    const t: Tracked = { socket: undefined, openedAt: now, lastBytes: 0, lastMoved: now };
    let set = this.inUse.get(id);
    if (!set) this.inUse.set(id, (set = new Set()));
    set.add(t);
    return t;
  }

  private drop(id: string, t: Tracked): void {
    this.inUse.get(id)?.delete(t);
  }

  /** The staggered race over candidate links (see the module comment). */
  private race(
    candidates: string[],
    ip: string,
    port: number,
    signal: AbortSignal | undefined,
  ): Promise<Dialed> {
    const stagger = this.opts.staggerMs ?? 2_000;
    return new Promise<Dialed>((resolve, reject) => {
      let next = 0;
      let running = 0;
      let settled = false;
      let lastError: unknown;
      let tried = 0;
      let denied = 0;
      let timer: NodeJS.Timeout | undefined;
      const attempts: AbortController[] = [];
      let winner: AbortController | undefined;
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
              reject(this.allFailed(candidates, ip, port, lastError, tried > 0 && denied === tried)),
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
        const ctl = new AbortController();
        attempts.push(ctl);
        running++;
        const held = this.hold(id);
        const started = this.clock.now();
        link
          .connect(
            { host: ip, port },
            { signal: ctl.signal, timeoutMs: this.opts.connectTimeoutMs ?? 10_000 },
          )
          .then((socket) => {
            running--;
            if (settled) {
              socket.destroy();
              this.drop(id, held);
              return;
            }
            held.socket = socket;
            socket.once('close', () => this.drop(id, held));
            this.opts.report?.(id, { type: 'connect-ok', dst: { host: ip, port } });
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
                const reason = `no connection to ${ip}:${port} in ${Math.round(waited)} ms while another link connected`;
                this.opts.report?.(id, { type: 'connect-failed', reason, kind: 'timeout' });
              }
              return;
            }
            if (systemCode((err as { cause?: unknown }).cause) === 'ECONNREFUSED') {
              // The destination answered: every link would hear the same.
              finish(() => reject(err));
              return;
            }
            lastError = err;
            tried++;
            if (isLinkmuxError(err, 'LINKMUX_ERR_DENIED')) denied++;
            // A relay refusing this destination says nothing about the link's health.
            if (!isLinkmuxError(err, 'LINKMUX_ERR_DENIED')) {
              this.opts.report?.(id, {
                type: 'connect-failed',
                reason: describe(err),
                kind: connectFailureKind(err),
              });
            }
            this.logger.debug(`connect to ${ip}:${port} through ${id} failed: ${describe(err)}`);
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
    ip: string,
    port: number,
    last: unknown,
    allDenied = false,
  ): LinkmuxError {
    // One link, or every relay refusing the destination: its own error says it best (SOCKS5 0x02 for a refusal).
    if (last instanceof LinkmuxError && (candidates.length === 1 || allDenied)) return last;
    return new LinkmuxError(
      last instanceof LinkmuxError && last.code === 'LINKMUX_ERR_TIMEOUT'
        ? 'LINKMUX_ERR_TIMEOUT'
        : 'LINKMUX_ERR_CONNECT',
      `cannot reach ${net.isIPv6(ip) ? `[${ip}]` : ip}:${port} through ${candidates.join(', ')}: ${describe(last)}`,
      { cause: last },
    );
  }

  private async direct(ip: string, port: number, signal: AbortSignal | undefined): Promise<Socket> {
    const socket = net.connect({ host: ip, port, autoSelectFamily: false });
    const timeout = AbortSignal.timeout(this.opts.connectTimeoutMs ?? 10_000);
    try {
      await once(socket, 'connect', { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      return socket;
    } catch (err) {
      socket.destroy();
      throw new LinkmuxError(
        timeout.aborted ? 'LINKMUX_ERR_TIMEOUT' : 'LINKMUX_ERR_CONNECT',
        `cannot reach ${ip}:${port} directly: ${timeout.aborted ? 'timed out' : describe(err)}`,
        { cause: err },
      );
    }
  }
}
