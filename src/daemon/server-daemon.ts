/**
 * `linkmux server`: a node whose listener is an MPTCP socket and whose one link
 * is this machine's own routing table. Clients reach it over one MPTCP
 * connection per proxied connection, whose subflows come in over every uplink
 * of the client (each from a different ISP address: the kernel accepts them
 * with MP_JOIN, within `ip mptcp limits` subflows), then TLS 1.3 (pinned
 * certificate) and SOCKS5 (the token's secret), then the relayed connection:
 *
 *   client ═MPTCP(subflow per uplink)═► server ─TLS─► SOCKS5 auth ─► guard(dst) ─► DirectLink ─► dst
 *
 * Guarantees: nothing is relayed without the secret; destinations are checked
 * after resolution against the node's policy plus this machine's own addresses;
 * the limits it raised are put back on stop(); stop() stops accepting, lets
 * relays finish for `drainMs`, then cuts them. Without kernel MPTCP it serves
 * plain TCP and says why (clients then get one path).
 */
import net from 'node:net';
import { NodeServer } from '../relay/node-server.js';
import { serverGuard, type AddressSource } from '../relay/server-guard.js';
import { DirectLink } from '../links/direct-link.js';
import { LinkPool } from '../scheduler/link-pool.js';
import { PoolDialer } from '../proxy/pool-dialer.js';
import { RuleSet } from '../proxy/rules.js';
import { createPolicy } from '../scheduler/policies.js';
import { startControlServer, type ControlServer } from '../control/control-server.js';
import type { DaemonStatus } from '../control/status-types.js';
import { formatControlAddress } from '../control/control-address.js';
import { bindMptcpListener, closeFd } from '../net/mptcp-socket.js';
import { SERVER_CONGESTION, setListenerCongestion } from '../relay/server-socket.js';
import type { MptcpKernel } from '../mptcp/kernel.js';
import { limitsSetArgs, MAX_LIMIT } from '../mptcp/ip-mptcp.js';
import { LinkmuxError, describe } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { VERSION } from '../version.js';

export interface ServerDaemonOptions {
  listen: { host: string; port: number };
  certPem: string;
  keyPem: string;
  fingerprint: string;
  secret: string;
  /** CIDRs of private destinations relayed anyway. */
  allow: readonly string[];
  /** Control API address (loopback or unix socket); undefined = none. */
  control?: string | undefined;
  logger: Logger;
  /** Sets the limits the server needs (root); undefined = leave them, only say what to run. */
  kernel?: MptcpKernel | undefined;
  ownAddresses?: AddressSource;
  connectTimeoutMs?: number;
  /**
   * TCP congestion control of the MPTCP connections and their subflows (default
   * SERVER_CONGESTION, "cubic"); false = the system's (net.ipv4.tcp_congestion_control).
   */
  congestionControl?: string | false;
}

/** Subflows one client connection may add: enough for 8 uplinks, the kernel's maximum. */
export const SERVER_LIMITS = { subflows: MAX_LIMIT, addAddrAccepted: 0 };

export class ServerDaemon {
  private readonly link = new DirectLink('internet');
  private readonly pool = new LinkPool([this.link]);
  private readonly dialer: PoolDialer;
  private readonly server: NodeServer;
  private control: ControlServer | undefined;
  private bound = '';
  private mptcp = false;
  private readonly startedAt = new Date();

  constructor(private readonly opts: ServerDaemonOptions) {
    const guard = serverGuard(opts.allow, opts.ownAddresses);
    this.dialer = new PoolDialer({
      pool: this.pool,
      policy: createPolicy('adaptive'),
      rules: new RuleSet([], false),
      guard,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      attempts: 1,
      logger: opts.logger,
    });
    this.server = new NodeServer({
      certPem: opts.certPem,
      keyPem: opts.keyPem,
      secret: opts.secret,
      dialer: this.dialer,
      links: [],
      logger: opts.logger,
    });
  }

  get address(): string {
    return this.bound;
  }

  get controlAddress(): string | undefined {
    return this.control?.address;
  }

  async start(): Promise<void> {
    const { logger } = this.opts;
    await this.setLimits();
    const { host, port } = this.opts.listen;
    let fd: number | undefined;
    try {
      fd = this.openListener(host, port);
    } catch (err) {
      if (err instanceof LinkmuxError && err.code === 'LINKMUX_ERR_MPTCP') {
        logger.warn(`${err.message}. Serving plain TCP: clients get one path, not the sum of their uplinks`);
      } else {
        throw err;
      }
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      const done = () => {
        this.server.off('error', reject);
        resolve();
      };
      if (fd !== undefined) this.server.listen({ fd }, done);
      else this.server.listen({ host, port }, done);
    }).catch((err: unknown) => {
      if (fd !== undefined) closeFd(fd);
      throw new LinkmuxError('LINKMUX_ERR_USAGE', `cannot listen on ${host}:${port}: ${describe(err)}`, {
        cause: err,
      });
    });
    this.mptcp = fd !== undefined;
    const info = this.server.address() as net.AddressInfo;
    this.bound = formatControlAddress({ kind: 'tcp', host: info.address, port: info.port });
    if (this.opts.control) {
      this.control = await startControlServer({
        listen: this.opts.control,
        status: () => this.status(),
        logger,
      });
    }
    this.pool.start();
    logger.info(
      `server: ${this.mptcp ? 'MPTCP' : 'plain TCP'} on ${this.bound}` +
        (this.control ? `, control on ${this.control.address}` : '') +
        `; certificate sha256:${this.opts.fingerprint}`,
    );
  }

  /** '::' falls back to every IPv4 address when IPv6 is off here. */
  private openListener(host: string, port: number): number {
    try {
      const fd = bindMptcpListener(host, port);
      this.tune(fd);
      return fd;
    } catch (err) {
      if (host !== '::' || !/EAFNOSUPPORT|EADDRNOTAVAIL/.test(describe(err) + describe((err as Error).cause)))
        throw err;
      const fd = bindMptcpListener('0.0.0.0', port);
      this.tune(fd);
      return fd;
    }
  }

  /** The subflows' congestion control (relay/server-socket.ts says why it is not the system's). */
  private tune(fd: number): void {
    const cc = this.opts.congestionControl ?? SERVER_CONGESTION;
    if (cc === false) return;
    const refused = setListenerCongestion(fd, cc);
    if (refused) this.opts.logger.warn(`server: cannot use ${cc} for the MPTCP subflows: ${refused}`);
    else this.opts.logger.debug(`server: MPTCP subflows use ${cc}`);
  }

  private async setLimits(): Promise<void> {
    const { kernel, logger } = this.opts;
    const fix = `ip mptcp limits set ${limitsSetArgs(SERVER_LIMITS).slice(3).join(' ')}`;
    if (!kernel) {
      logger.warn(
        `server: not root, so the MPTCP limits are left as they are; a client's extra subflows need ` +
          `\`subflows\` ≥ its uplinks − 1 (default 2): run \`sudo ${fix}\` once if clients have more than 3 uplinks`,
      );
      return;
    }
    try {
      const ran = await kernel.raiseLimits(SERVER_LIMITS);
      if (ran.length > 0) logger.info(`server: ${ran.map((a) => `ip ${a.join(' ')}`).join('; ')}`);
    } catch (err) {
      logger.warn(`server: cannot raise the MPTCP limits (${describe(err)}): run \`sudo ${fix}\``);
    }
  }

  async stop(drainMs: number): Promise<void> {
    this.server.close();
    const deadline = Date.now() + drainMs;
    while (this.dialer.stats().active > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    this.server.closeAllConnections();
    this.pool.stop();
    await this.control?.close();
    this.link.destroy();
    if (this.opts.kernel) {
      try {
        await this.opts.kernel.cleanup({ rules: false });
      } catch (err) {
        this.opts.logger.warn(`server: could not restore the MPTCP limits: ${describe(err)}`);
      }
    }
  }

  status(): DaemonStatus {
    const s = this.link.stats();
    const r = this.pool.rates(this.link.id);
    const counters = this.server.stats();
    const wall = Date.now();
    return {
      version: VERSION,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((wall - this.startedAt.getTime()) / 1000),
      policy: 'direct',
      listen: { node: [this.bound], ...(this.control ? { control: this.control.address } : {}) },
      connections: this.dialer.stats(),
      links: [
        {
          id: this.link.id,
          description: this.link.description,
          state: 'online',
          since: this.startedAt.toISOString(),
          rateIn: r.rateIn,
          rateOut: r.rateOut,
          activeConnections: this.dialer.connectionsOn(this.link.id),
          bytesIn: s.bytesIn,
          bytesOut: s.bytesOut,
          connectFailures: s.connectFailures,
        },
      ],
      node: {
        listen: [this.bound],
        fingerprint: this.opts.fingerprint,
        lends: [this.link.id],
        relayed: this.dialer.stats(),
        tlsFailures: counters.tlsFailures,
        authFailures: counters.authFailures,
      },
    };
  }
}
