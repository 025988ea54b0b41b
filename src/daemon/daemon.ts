/**
 * `linkmux up`: the proxy daemon's lifecycle. It wires one link pool, one
 * health monitor, one policy and one dialer under the front ends:
 *
 *   app ─► SOCKS5 / HTTP proxy ─► PoolDialer ─► policy(pool snapshot) ─► link ─► uplink
 *                                      ▲                 ▲
 *                  passive signals ────┘   HealthMonitor ┘ (probes out of each link)
 *
 * start() listens on every configured address (loopback by default) or throws
 * with the address named; stop() stops accepting, lets open connections finish
 * for up to `drainMs`, then closes everything, so the process exits cleanly.
 */
import type { Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';
import type { Link } from '../links/link.js';
import { LinkPool } from '../links/link-pool.js';
import { HealthMonitor } from '../health/monitor.js';
import type { HealthConfig } from '../health/config.js';
import type { HealthInput } from '../health/state-machine.js';
import { createPolicy } from '../scheduler/policies.js';
import { preferLink } from '../scheduler/prefer.js';
import type { Policy } from '../scheduler/snapshot.js';
import { PoolDialer } from '../proxy/pool-dialer.js';
import { RuleSet, type Rule } from '../proxy/rules.js';
import { createSocks5Server, type Socks5Server } from '../proxy/socks5/socks5-server.js';
import { createHttpProxyServer } from '../proxy/http/http-proxy-server.js';
import { startControlServer, type ControlServer } from '../control/control-server.js';
import type { DaemonStatus, LinkStatus, NodeStatus } from '../control/status-types.js';
import { NodeServer } from '../relay/node-server.js';
import { DestinationPolicy } from '../relay/destination-policy.js';
import { parseControlAddress, formatControlAddress, isLoopbackHost } from '../control/control-address.js';
import { systemClock, type Clock } from '../util/clock.js';
import { LinkmuxError, systemCode } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../version.js';
import { LinkResolver } from '../dns/resolver.js';
import type { LinkState } from '../health/state-machine.js';

function stateRank(state: LinkState): number {
  switch (state) {
    case 'online':
      return 0;
    case 'degraded':
      return 1;
    case 'offline':
      return 2;
    default:
      return 0;
  }
}

export interface DaemonOptions {
  links: Link[];
  /** Name lookups through the links (default: one over `links`, system settings). */
  resolver?: LinkResolver;
  listen: { socks?: string | undefined; http?: string | undefined; control?: string | undefined };
  auth?: { username: string; password: string } | undefined;
  /** Listen beyond loopback without credentials (an open proxy): refused unless true. */
  allowOpen?: boolean;
  policy: string;
  weights?: Record<string, number>;
  stickyTtlMs?: number;
  connectTimeoutMs: number;
  failoverAttempts: number;
  staggerMs?: number;
  health: HealthConfig;
  rules: Rule[];
  privateDirect: boolean;
  logger: Logger;
  clock?: Clock;
  /** Also lend this machine's own links to the LAN as a linkmux node. */
  node?: DaemonNodeOptions | undefined;
  /** `up --server`: this link gets every policy-routed connection while it is in service. */
  prefer?: string | undefined;
  /** Extra status sections (the MPTCP paths of `up --server`). */
  extraStatus?: (() => Partial<DaemonStatus>) | undefined;
}

export interface DaemonNodeOptions {
  /** HOST:PORT addresses to listen on. */
  listen: readonly string[];
  certPem: string;
  keyPem: string;
  fingerprint: string;
  secret: string;
  /** CIDRs of private destinations the node relays to anyway. */
  allow: readonly string[];
  /** Ids of this machine's own links: the only ones lent (relayed links never are, so no loops). */
  lend: readonly string[];
}

export class Daemon {
  readonly pool: LinkPool;
  readonly health: HealthMonitor;
  readonly dialer: PoolDialer;
  readonly resolver: LinkResolver;
  private readonly policy: Policy;
  private readonly clock: Clock;
  private socks: Socks5Server | undefined;
  private http: HttpServer | undefined;
  private control: ControlServer | undefined;
  private readonly nodeServers: NodeServer[] = [];
  private readonly nodePool: LinkPool | undefined;
  private readonly nodeDialer: PoolDialer | undefined;
  private readonly bound: { socks?: string; http?: string; control?: string; node?: string[] } = {};
  private readonly startedAt = new Date();

  constructor(private readonly opts: DaemonOptions) {
    this.clock = opts.clock ?? systemClock;
    checkExposure(opts);
    this.health = new HealthMonitor({
      links: opts.links,
      config: opts.health,
      clock: this.clock,
      logger: opts.logger,
    });
    this.pool = new LinkPool(opts.links, {
      clock: this.clock,
      stateOf: (id) => this.health.state(id),
      ...(opts.weights ? { weights: opts.weights } : {}),
    });
    this.resolver = opts.resolver ?? new LinkResolver({ links: () => opts.links, logger: opts.logger });
    // Healthy links carry the queries first; an offline one is asked last, not never.
    this.resolver.preferBy((id) => stateRank(this.health.state(id)));
    const base = createPolicy(opts.policy, opts.stickyTtlMs ? { ttlMs: opts.stickyTtlMs } : {});
    this.policy = opts.prefer !== undefined ? preferLink(opts.prefer, base) : base;
    this.dialer = new PoolDialer({
      pool: this.pool,
      policy: this.policy,
      policies: {
        sticky: createPolicy('sticky', opts.stickyTtlMs ? { ttlMs: opts.stickyTtlMs } : {}),
        'round-robin': createPolicy('round-robin'),
        'least-connections': createPolicy('least-connections'),
        adaptive: createPolicy('adaptive'),
      },
      rules: new RuleSet(opts.rules, opts.privateDirect),
      ...this.dialerBasics(),
    });
    if (opts.node) {
      const lent = opts.links.filter((l) => opts.node?.lend.includes(l.id));
      const guard = new DestinationPolicy(opts.node.allow);
      this.nodePool = new LinkPool(lent, { clock: this.clock, stateOf: (id) => this.health.state(id) });
      this.nodeDialer = new PoolDialer({
        pool: this.nodePool,
        policy: createPolicy('adaptive'),
        rules: new RuleSet([], false),
        guard: (ip) => guard.check(ip),
        ...this.dialerBasics(),
      });
    }
  }

  /** What both dialers (the proxy's and the node's) share: health reports, timeouts, failover. */
  private dialerBasics() {
    const o = this.opts;
    return {
      report: (id: string, input: HealthInput) => this.health.report(id, input),
      resolve: this.resolver.resolve,
      connectTimeoutMs: o.connectTimeoutMs,
      attempts: o.failoverAttempts,
      ...(o.staggerMs !== undefined ? { staggerMs: o.staggerMs } : {}),
      clock: this.clock,
      logger: o.logger,
    };
  }

  /** Where each front end really listens (with the port picked when 0 was asked). */
  get addresses(): { socks?: string; http?: string; control?: string; node?: string[] } {
    return { ...this.bound };
  }

  async start(): Promise<void> {
    const { listen, logger, auth } = this.opts;
    try {
      if (listen.socks) {
        this.socks = createSocks5Server({ dialer: this.dialer, auth, logger });
        this.bound.socks = await listenOn(this.socks, listen.socks, 'SOCKS5');
      }
      if (listen.http) {
        this.http = createHttpProxyServer({ dialer: this.dialer, logger, ...(auth ? { auth } : {}) });
        this.bound.http = await listenOn(this.http, listen.http, 'HTTP proxy');
      }
      if (this.opts.node && this.nodeDialer) {
        const node = this.opts.node;
        this.bound.node = [];
        for (const address of node.listen) {
          const server = new NodeServer({
            certPem: node.certPem,
            keyPem: node.keyPem,
            secret: node.secret,
            dialer: this.nodeDialer,
            links: node.lend,
            logger,
          });
          this.nodeServers.push(server);
          this.bound.node.push(await listenOn(server, address, 'the node'));
        }
      }
      if (listen.control) {
        this.control = await startControlServer({
          listen: listen.control,
          status: () => this.status(),
          logger,
        });
        this.bound.control = this.control.address;
      }
    } catch (err) {
      await this.stop(0);
      throw err;
    }
    this.pool.start();
    this.nodePool?.start();
    this.health.start();
    const links = this.opts.links.map((l) => l.description).join('; ');
    logger.info(
      `up: ${[
        this.bound.socks && `SOCKS5 on ${this.bound.socks}`,
        this.bound.http && `HTTP on ${this.bound.http}`,
        this.bound.control && `control on ${this.bound.control}`,
        this.bound.node && `node on ${this.bound.node.join(', ')}`,
      ]
        .filter(Boolean)
        .join(', ')}; policy ${this.policy.name}; links: ${links}`,
    );
  }

  /** Stops accepting, waits up to drainMs for open connections, then closes everything. */
  async stop(drainMs: number): Promise<void> {
    // Both front ends stop accepting now; their open connections may finish until the deadline.
    this.socks?.close();
    for (const n of this.nodeServers) n.close();
    const httpClosed = new Promise<void>((resolve) =>
      this.http ? this.http.close(() => resolve()) : resolve(),
    );
    const deadline = Date.now() + drainMs;
    const active = () => this.dialer.stats().active + (this.nodeDialer?.stats().active ?? 0);
    while (active() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const left = active();
    if (left > 0) this.opts.logger.info(`closing ${left} connection(s) still open after the drain timeout`);
    this.socks?.closeAllConnections();
    this.http?.closeAllConnections();
    for (const n of this.nodeServers) n.closeAllConnections();
    await httpClosed;
    this.health.stop();
    this.pool.stop();
    this.nodePool?.stop();
    await this.control?.close();
    for (const link of this.opts.links) link.destroy();
  }

  status(): DaemonStatus {
    const now = this.clock.now();
    const wall = Date.now();
    const links: LinkStatus[] = this.opts.links.map((link) => {
      const h = this.health.status(link.id);
      const s = link.stats();
      const r = this.pool.rates(link.id);
      const toIso = (t: number) => new Date(wall - (now - t)).toISOString();
      return {
        id: link.id,
        description: link.description,
        state: h.state,
        ...(h.reason !== undefined ? { stateReason: h.reason } : {}),
        since: toIso(h.since),
        ...(h.lastRttMs !== undefined ? { rttMs: h.lastRttMs } : {}),
        rateIn: r.rateIn,
        rateOut: r.rateOut,
        ...(r.capacity !== undefined ? { capacity: r.capacity } : {}),
        activeConnections:
          this.dialer.connectionsOn(link.id) + (this.nodeDialer?.connectionsOn(link.id) ?? 0),
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        connectFailures: s.connectFailures,
        ...(h.lastFailure
          ? { lastFailure: { at: toIso(h.lastFailure.at), reason: h.lastFailure.reason } }
          : {}),
      };
    });
    return {
      version: VERSION,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((wall - this.startedAt.getTime()) / 1000),
      policy: this.policy.name,
      listen: { ...this.bound },
      connections: this.dialer.stats(),
      links,
      ...(this.opts.node && this.nodeDialer
        ? { node: this.nodeStatus(this.opts.node, this.nodeDialer) }
        : {}),
      ...this.opts.extraStatus?.(),
    };
  }

  private nodeStatus(node: DaemonNodeOptions, dialer: PoolDialer): NodeStatus {
    const tls = this.nodeServers.reduce((n, s) => n + s.stats().tlsFailures, 0);
    const auth = this.nodeServers.reduce((n, s) => n + s.stats().authFailures, 0);
    return {
      listen: [...(this.bound.node ?? [])],
      fingerprint: node.fingerprint,
      lends: [...node.lend],
      relayed: dialer.stats(),
      tlsFailures: tls,
      authFailures: auth,
    };
  }
}

/** No open proxy: a front end beyond loopback needs credentials, or an explicit allowOpen. */
function checkExposure(opts: DaemonOptions): void {
  for (const [name, addr] of [
    ['socks', opts.listen.socks],
    ['http', opts.listen.http],
  ] as const) {
    if (!addr) continue;
    const a = parseControlAddress(addr, `listen.${name}`);
    if (a.kind === 'tcp' && !isLoopbackHost(a.host) && !opts.auth && !opts.allowOpen) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `listen.${name} is ${addr}, beyond loopback, without auth: that would be an open proxy. ` +
          'Set auth.username and auth.password, or listen on 127.0.0.1',
      );
    }
  }
}

async function listenOn(server: Server, address: string, what: string): Promise<string> {
  const a = parseControlAddress(address, what);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (a.kind === 'unix') server.listen(a.path, done);
    else server.listen({ host: a.host, port: a.port }, done);
  }).catch((err: unknown) => {
    const code = systemCode(err);
    const why =
      code === 'EADDRINUSE'
        ? 'the address is in use (another linkmux or proxy?): stop it or choose another port'
        : code === 'EADDRNOTAVAIL'
          ? 'no interface has that address'
          : code === 'EACCES'
            ? 'ports below 1024 need root'
            : String(err);
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `cannot listen for ${what} on ${address}: ${why}`, {
      cause: err,
    });
  });
  const info = server.address();
  if (typeof info === 'string' || info === null) return address;
  return formatControlAddress({ kind: 'tcp', host: info.address, port: info.port });
}
