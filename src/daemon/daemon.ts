/**
 * `linkmux up`: the proxy daemon's lifecycle. It wires one link pool, one
 * health monitor, one policy and one dialer under the front ends:
 *
 *   app ─► SOCKS5 / HTTP proxy ─► PoolDialer ─► policy(pool snapshot) ─► link ─► uplink
 *                                      ▲                 ▲
 *                  passive signals ────┘   HealthMonitor ┘ (probes out of each link)
 *
 * start() listens on every configured address (loopback by default) or throws
 * with the address named; stop() stops accepting, drains every link (their
 * `close()`, the direct route's included) for up to `drainMs`, then closes
 * everything, so the process exits cleanly.
 */
import type { Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';
import type { Link } from '../links/link.js';
import { LinkPool } from '../scheduler/link-pool.js';
import { HealthMonitor } from '../health/monitor.js';
import type { HealthInput } from '../health/state-machine.js';
import { createPolicy, createPolicySet } from '../scheduler/policies.js';
import { preferLink } from '../scheduler/prefer.js';
import type { Policy } from '../scheduler/snapshot.js';
import { PoolDialer } from '../proxy/pool-dialer.js';
import { RuleSet } from '../proxy/rules.js';
import { createSocks5Server, type Socks5Server } from '../proxy/socks5/socks5-server.js';
import { createHttpProxyServer } from '../proxy/http/http-proxy-server.js';
import { startControlServer, type ControlServer } from '../control/control-server.js';
import type { DaemonStatus, LinkStatus, NodeStatus } from '../control/status-types.js';
import { clockToIso, linkStatusRow, statusHeader } from '../control/status-builder.js';
import { NodeServer } from '../relay/node-server.js';
import { DestinationPolicy } from '../relay/destination-policy.js';
import { formatControlAddress } from '../control/control-address.js';
import { systemClock, type Clock } from '../util/clock.js';
import { LinkmuxError, systemCode } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { LinkResolver } from '../dns/resolver.js';
import type { LinkState } from '../health/state-machine.js';
import type { ListenAddress, RuntimeConfig } from '../config/runtime.js';
import type { HostPort } from '../net/address.js';
import { nodeHostGuard, proxyHostGuard } from '../proxy/own-host-guard.js';
import { setRelayHold } from '../proxy/pipe-sockets.js';
import { Protection } from './protection.js';
import { startMallocTuning, type MallocTuning } from '../net/malloc-tuning.js';
import type { RpcService, RpcServiceOptions } from '../rpc/rpc-service.js';
import { jsonRpcRoute } from '../rpc/rpc-endpoint.js';

/** The aria2 JSON-RPC's settings; the daemon supplies the links and the logger. */
export type DaemonRpcOptions = Omit<RpcServiceOptions, 'links' | 'logger'>;
import { DirectLink } from '../links/direct-link.js';

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
  /**
   * The frozen runtime config (config/runtime.ts `toRuntime`, or `runtimeDefaults`
   * in tests): listen addresses (parsed), auth, policy and its options, weights,
   * timeouts, failover, health (its targets complete: targets-at-start.ts), rules,
   * privateDirect, limits, node.allow. Validated by the schema, so not re-checked here.
   */
  config: RuntimeConfig;
  links: Link[];
  /** Name lookups through the links (default: one over `links`, system settings). */
  resolver?: LinkResolver;
  logger: Logger;
  clock?: Clock;
  /** Also lend this machine's own links to the LAN as a linkmux node. */
  node?: DaemonNodeOptions | undefined;
  /** The sub-command running it, which starts its start line (default 'up'). */
  command?: 'up' | 'node';
  /** Serve the aria2 JSON-RPC (its own listener and /jsonrpc on the control address). */
  rpc?: DaemonRpcOptions | undefined;
  /** `up --server`: this link gets every policy-routed connection while it is in service. */
  prefer?: string | undefined;
  /** Extra status sections (the MPTCP paths of `up --server`). */
  extraStatus?: (() => Partial<DaemonStatus>) | undefined;
}

export interface DaemonNodeOptions {
  /** Addresses to listen on (node-setup.ts resolved `node.listen`). */
  listen: readonly HostPort[];
  certPem: string;
  keyPem: string;
  fingerprint: string;
  secret: string;
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
  private rpcService: RpcService | undefined;
  private readonly nodeServers: NodeServer[] = [];
  private readonly nodePool: LinkPool | undefined;
  private readonly nodeDialer: PoolDialer | undefined;
  private readonly bound: { socks?: string; http?: string; control?: string; node?: string[]; rpc?: string } =
    {};
  private readonly startedAt = new Date();
  /** Carries what the rules (or privateDirect) send past the uplinks. */
  private readonly direct = new DirectLink();
  readonly protection: Protection;
  /** glibc arena cap and periodic malloc_trim (net/malloc-tuning.ts): RSS follows the tunnels down. */
  private malloc: MallocTuning | undefined;

  constructor(private readonly opts: DaemonOptions) {
    const cfg = opts.config;
    this.clock = opts.clock ?? systemClock;
    this.protection = new Protection({
      maxConnections: cfg.limits.maxConnections,
      maxPerClient: cfg.limits.maxPerClient,
      reserve: cfg.limits.fdReserve,
      loginLogIntervalMs: cfg.limits.loginLogIntervalMs,
      logger: opts.logger,
      clock: this.clock,
    });
    const isOwn = (ip: string) => this.protection.hostAddresses.has(ip);
    this.health = new HealthMonitor({
      links: opts.links,
      config: cfg.health,
      clock: this.clock,
      logger: opts.logger,
    });
    this.pool = new LinkPool(opts.links, {
      clock: this.clock,
      stateOf: (id) => this.health.state(id),
      weights: cfg.weights,
    });
    this.resolver = opts.resolver ?? new LinkResolver({ links: () => opts.links, logger: opts.logger });
    // Healthy links carry the queries first; an offline one is asked last, not never.
    this.resolver.preferBy((id) => stateRank(this.health.state(id)));
    const base = createPolicy(cfg.policy, cfg.policyOptions);
    this.policy = opts.prefer !== undefined ? preferLink(opts.prefer, base) : base;
    this.dialer = new PoolDialer({
      pool: this.pool,
      policy: this.policy,
      // Every name a rule may write (`policy:<name>`), with the config's policy options.
      policies: createPolicySet(cfg.policyOptions),
      direct: this.direct,
      rules: new RuleSet(
        cfg.rules.map((r) => ({ match: { ...r.match }, action: r.action })),
        cfg.privateDirect,
      ),
      // No door into this host for clients from other machines (own-host-guard.ts).
      clientGuard: (ip, ctx, ruleNamed) =>
        ctx.clientIp === undefined ? { allowed: true } : proxyHostGuard(ip, ctx.clientIp, isOwn, ruleNamed),
      ...this.dialerBasics(),
    });
    if (opts.node) {
      const lent = opts.links.filter((l) => opts.node?.lend.includes(l.id));
      const guard = new DestinationPolicy(cfg.node.allow);
      this.nodePool = new LinkPool(lent, { clock: this.clock, stateOf: (id) => this.health.state(id) });
      this.nodeDialer = new PoolDialer({
        pool: this.nodePool,
        policy: createPolicy('adaptive'),
        rules: new RuleSet([], false),
        // Its ranges first, then every address of this host, unless node.allow names it.
        guard: (ip) => {
          const verdict = guard.check(ip);
          return verdict.allowed ? nodeHostGuard(ip, isOwn, (a) => guard.allows(a)) : verdict;
        },
        ...this.dialerBasics(),
      });
    }
  }

  /** What both dialers (the proxy's and the node's) share: health reports, timeouts, failover. */
  private dialerBasics() {
    const cfg = this.opts.config;
    return {
      report: (id: string, input: HealthInput) => this.health.report(id, input),
      resolve: this.resolver.resolve,
      connectTimeoutMs: cfg.connectTimeoutMs,
      attempts: cfg.failover.attempts,
      staggerMs: cfg.failover.staggerMs,
      clock: this.clock,
      logger: this.opts.logger,
    };
  }

  /** Where each front end really listens (with the port picked when 0 was asked). */
  get addresses(): { socks?: string; http?: string; control?: string; node?: string[]; rpc?: string } {
    return { ...this.bound };
  }

  async start(): Promise<void> {
    const { logger } = this.opts;
    const { listen, auth, limits: lim } = this.opts.config;
    const p = this.protection;
    const dialer = p.watchDialer(this.dialer);
    setRelayHold(lim.relayHoldMs);
    try {
      if (listen.socks) {
        this.socks = createSocks5Server({
          dialer,
          auth,
          logger,
          handshakeTimeoutMs: lim.handshakeTimeoutMs,
          idleTimeoutMs: lim.idleTimeoutMs,
          gate: p.frontEndGate(),
          onLoginFailure: p.loginFailure('socks5'),
        });
        this.bound.socks = await listenOn(this.socks, listen.socks, 'SOCKS5');
        p.watchServer(this.socks, `SOCKS5 ${this.bound.socks}`);
      }
      if (listen.http) {
        this.http = createHttpProxyServer({
          dialer,
          logger,
          ...(auth ? { auth } : {}),
          headersTimeoutMs: lim.headersTimeoutMs,
          idleTimeoutMs: lim.idleTimeoutMs,
          gate: p.frontEndGate(),
          onLoginFailure: p.loginFailure('http'),
        });
        this.bound.http = await listenOn(this.http, listen.http, 'HTTP proxy');
        p.watchServer(this.http, `HTTP proxy ${this.bound.http}`);
      }
      if (this.opts.node && this.nodeDialer) {
        const node = this.opts.node;
        this.bound.node = [];
        for (const address of node.listen) {
          const server = new NodeServer({
            certPem: node.certPem,
            keyPem: node.keyPem,
            secret: node.secret,
            dialer: p.watchDialer(this.nodeDialer),
            links: node.lend,
            logger,
            handshakeTimeoutMs: lim.handshakeTimeoutMs,
            idleTimeoutMs: lim.idleTimeoutMs,
            gate: p.frontEndGate(),
            onLoginFailure: p.loginFailure('node'),
          });
          this.nodeServers.push(server);
          const at = await listenOn(server, { kind: 'tcp', ...address }, 'the node');
          this.bound.node.push(at);
          p.watchServer(server, `node ${at}`);
        }
      }
      if (this.opts.rpc) {
        const { startRpcService } = await import('../rpc/rpc-service.js');
        this.rpcService = await startRpcService({
          ...this.opts.rpc,
          links: () => this.downloadLinks(),
          logger,
        });
        if (this.rpcService.address) this.bound.rpc = this.rpcService.address;
      }
      if (listen.control) {
        this.control = await startControlServer({
          listen: listen.control,
          status: () => this.status(),
          logger,
          ...(this.rpcService ? { routes: [jsonRpcRoute(this.rpcService.endpoint)] } : {}),
        });
        this.bound.control = this.control.address;
      }
    } catch (err) {
      await this.stop(0);
      throw err;
    }
    this.protection.start();
    this.malloc = startMallocTuning();
    if (!this.malloc.active) logger.debug(`allocator left as it is: ${this.malloc.reason}`);
    this.pool.start();
    this.nodePool?.start();
    this.health.start();
    const links = this.opts.links.map((l) => l.description).join('; ');
    logger.info(
      `${this.opts.command ?? 'up'}: ${[
        this.bound.socks && `SOCKS5 on ${this.bound.socks}`,
        this.bound.http && `HTTP on ${this.bound.http}`,
        this.bound.control && `control on ${this.bound.control}`,
        this.bound.node && `node on ${this.bound.node.join(', ')}`,
        this.rpcService &&
          `aria2 JSON-RPC on ${[this.bound.rpc, this.bound.control && `${this.bound.control}/jsonrpc`].filter(Boolean).join(' and ')}`,
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
    // No probe may start on a draining link (it would fail, and count as a failure).
    this.health.stop();
    // Running downloads stop here and are saved as waiting, resumed at the next start;
    // their connections then leave the links' drain.
    await this.rpcService?.close();
    const links = [...this.opts.links, this.direct];
    const drained = Promise.all(links.map((l) => l.close())).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), drainMs)));
    const done = await Promise.race([drained, deadline]);
    clearTimeout(timer);
    if (!done) {
      const left = links.reduce((n, l) => n + l.stats().activeConnections, 0);
      this.opts.logger.info(`closing ${left} connection(s) still open after the drain timeout`);
    }
    this.socks?.closeAllConnections();
    this.http?.closeAllConnections();
    for (const n of this.nodeServers) n.closeAllConnections();
    await httpClosed;
    this.protection.stop();
    if (this.malloc?.active) {
      const m = this.malloc.stats();
      this.opts.logger.debug(
        `malloc_trim: ${m.trims} calls (${m.released} gave memory back), ${m.totalMs.toFixed(1)} ms in all, longest ${m.maxMs.toFixed(1)} ms`,
      );
    }
    this.malloc?.stop();
    this.pool.stop();
    this.nodePool?.stop();
    await this.control?.close();
    for (const link of links) link.destroy();
  }

  /** The links an RPC download starts on: every link not offline (all of them if none is up). */
  private downloadLinks(): Link[] {
    const up = this.opts.links.filter((l) => this.health.state(l.id) !== 'offline');
    return up.length > 0 ? up : [...this.opts.links];
  }

  /** The RPC's download manager, when the RPC is enabled (for the dashboard's status). */
  get downloads() {
    return this.rpcService?.manager;
  }

  status(): DaemonStatus {
    const wall = Date.now();
    const toIso = clockToIso(this.clock.now(), wall);
    const links: LinkStatus[] = this.opts.links.map((link) => {
      const s = link.stats();
      const r = this.pool.rates(link.id);
      return linkStatusRow(
        { id: link.id, description: link.description },
        this.health.status(link.id),
        {
          rateIn: r.rateIn,
          rateOut: r.rateOut,
          ...(r.capacity !== undefined ? { capacity: r.capacity } : {}),
          activeConnections:
            this.dialer.connectionsOn(link.id) + (this.nodeDialer?.connectionsOn(link.id) ?? 0),
          bytesIn: s.bytesIn,
          bytesOut: s.bytesOut,
          connectFailures: s.connectFailures,
        },
        toIso,
      );
    });
    return {
      ...statusHeader(this.startedAt, wall, {
        policy: this.policy.name,
        listen: { ...this.bound },
        connections: this.dialer.stats(),
      }),
      links,
      ...(this.opts.node && this.nodeDialer
        ? { node: this.nodeStatus(this.opts.node, this.nodeDialer) }
        : {}),
      protection: this.protection.status(),
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

async function listenOn(server: Server, a: ListenAddress, what: string): Promise<string> {
  const address = formatControlAddress(a);
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
    if (code === 'EADDRINUSE') {
      throw new LinkmuxError(
        'LINKMUX_ERR_ADDRESS_IN_USE',
        `cannot listen for ${what} on ${address}: the address is in use (another linkmux or proxy?): ` +
          'stop that program, or choose another port in the config (listen)',
        { cause: err },
      );
    }
    const why =
      code === 'EADDRNOTAVAIL'
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
