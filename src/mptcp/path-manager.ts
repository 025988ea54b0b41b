/**
 * Keeps the kernel's MPTCP endpoints in step with link health on the client of
 * a `linkmux server`: one endpoint per uplink in service, none for an offline
 * one (the kernel closes its subflows, so traffic moves at once), the endpoint
 * back when the uplink heals (the kernel's path manager then adds the subflow to
 * every open connection). Also picks the address the first subflow of a new
 * connection starts from: the first uplink in service, whose source rule sends
 * it out of that uplink.
 *
 * It follows health by polling the state function (every `intervalMs`), so it
 * needs no hook in the health monitor; applies are serialised and only run when
 * the set of uplinks in service changed. `stop()` removes everything it added.
 */
import type { NetInterface } from '../net/interfaces-types.js';
import type { LinkState } from '../health/state-machine.js';
import { LinkmuxError, describe } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { silentLogger } from '../util/logger.js';
import type { MptcpKernel } from './kernel.js';
import { pathUplinks, type PathUplink } from './plan.js';
import type { MptcpStatus } from '../control/status-types.js';
import type { Runner } from '../util/runner.js';
import { SS_ARGS, parseSubflows, type SubflowTotals } from './subflows.js';
import type { OwnerLock } from './owner-lock.js';

export interface PathManagerOptions {
  /** The local links' interfaces, in preference order (the first in service carries new connections' first subflow). */
  interfaces: readonly NetInterface[];
  stateOf: (id: string) => LinkState;
  kernel: MptcpKernel;
  logger?: Logger;
  /** How often health is looked at, ms (default 200). */
  intervalMs?: number;
  /** Address family of the server (default 4). */
  family?: 4 | 6;
  /** The server's port: subflows to it are counted per uplink for status (needs `runner`). */
  serverPort?: number;
  /** Runs `ss` for the subflow counts; none = no counts. */
  runner?: Runner;
  /**
   * Withdraw a degraded uplink's endpoint too, not only an offline one's (default true):
   * a blackholed uplink is degraded after its first failed probe, seconds before it is
   * offline, and every second its subflow stays the connection waits on it. While no
   * uplink is online, the degraded ones keep their endpoints.
   */
  withdrawDegraded?: boolean;
  /** One client per network namespace (owner-lock.ts): taken before anything is cleaned up or added. */
  lock?: OwnerLock;
}

export type PathStatus = MptcpStatus['uplinks'][number];

/** Refuses early, with the fix, when endpoints cannot be installed here. */
export function checkCanManagePaths(uid = process.getuid?.(), platform = process.platform): void {
  if (platform !== 'linux') {
    throw new LinkmuxError(
      'LINKMUX_ERR_MPTCP',
      `kernel MPTCP exists only on Linux (this is ${platform}): connections are balanced per connection over the local links instead`,
    );
  }
  if (uid !== 0) {
    throw new LinkmuxError(
      'LINKMUX_ERR_MPTCP',
      'installing MPTCP endpoints (`ip mptcp endpoint add ADDR dev IF subflow`) needs root: run `sudo linkmux up --server …`; ' +
        'meanwhile connections are balanced per connection over the local links',
    );
  }
}

export class MptcpPathManager {
  private timer: NodeJS.Timeout | undefined;
  private applying: Promise<void> = Promise.resolve();
  private lastKey = '';
  private installed = new Set<string>();
  private subflows = new Map<string, SubflowTotals>();
  private counting = false;
  private lastError = '';
  private ticks = 0;
  /** start() got past the lock: this process owns the namespace's paths (and stop() cleans them). */
  private owner = false;
  private readonly logger: Logger;

  constructor(private readonly opts: PathManagerOptions) {
    this.logger = opts.logger ?? silentLogger;
  }

  private uplinks(): PathUplink[] {
    const family = this.opts.family ?? 4;
    const usable = (dev: string) => this.opts.stateOf(dev) !== 'offline';
    if (this.opts.withdrawDegraded === false) return pathUplinks(this.opts.interfaces, usable, family);
    const good = (dev: string) => usable(dev) && this.opts.stateOf(dev) !== 'degraded';
    const strict = pathUplinks(this.opts.interfaces, good, family);
    return strict.some((u) => u.inService) ? strict : pathUplinks(this.opts.interfaces, usable, family);
  }

  /** Clears what a crashed run left, installs the source rules, limits and endpoints, then follows health. */
  async start(): Promise<void> {
    // Refused here, nothing of the other client's is touched, and stop() removes nothing.
    await this.opts.lock?.acquire();
    this.owner = true;
    await this.opts.kernel.cleanup();
    await this.opts.kernel.applyRules(this.opts.interfaces);
    await this.sync();
    this.timer = setInterval(() => {
      this.applying = this.applying.then(() => this.sync()).catch(() => undefined);
      if (++this.ticks % 5 === 0) void this.count();
    }, this.opts.intervalMs ?? 200);
    this.timer.unref();
  }

  /** The source address of a new connection's first subflow: the first uplink in service. */
  primaryAddress(): string | undefined {
    return this.uplinks().find((u) => u.inService)?.address;
  }

  status(): PathStatus[] {
    return this.uplinks().map((u) => {
      const t = this.subflows.get(u.address);
      return {
        ...u,
        endpoint: this.installed.has(u.dev),
        subflows: t?.subflows ?? 0,
        bytesIn: t?.bytesIn ?? 0,
        bytesOut: t?.bytesOut ?? 0,
      };
    });
  }

  /** Refreshes the subflow counts (at most one `ss` at a time). */
  private async count(): Promise<void> {
    const { runner, serverPort } = this.opts;
    if (!runner || serverPort === undefined || this.counting) return;
    this.counting = true;
    try {
      this.subflows = parseSubflows((await runner.run('ss', SS_ARGS)).stdout, serverPort);
    } catch (err) {
      this.logger.debug(`mptcp: cannot count subflows: ${describe(err)}`);
    } finally {
      this.counting = false;
    }
  }

  private async sync(): Promise<void> {
    const uplinks = this.uplinks();
    const key = uplinks.map((u) => `${u.dev}=${u.inService}`).join(',');
    if (key === this.lastKey) return;
    try {
      const { ran, skipped } = await this.opts.kernel.apply(uplinks);
      this.lastKey = key;
      this.installed = new Set(
        uplinks.filter((u) => u.inService && !skipped.some((s) => s.dev === u.dev)).map((u) => u.dev),
      );
      for (const s of skipped) this.logger.warn(`mptcp: ${s.dev}: ${s.reason}`);
      if (ran.length > 0) this.logger.info(`mptcp: ${ran.map((a) => `ip ${a.join(' ')}`).join('; ')}`);
      this.lastError = '';
    } catch (err) {
      const text = describe(err);
      // Retried every tick: said once per distinct failure, not five times a second.
      if (text !== this.lastError)
        this.logger.warn(`mptcp: could not update the endpoints (${text}); retrying`);
      this.lastError = text;
    }
  }

  /** Stops following health and removes every endpoint, limit, rule and route it added. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.applying;
    if (!this.owner) return;
    await this.opts.kernel.cleanup();
    this.installed.clear();
    this.owner = false;
    await this.opts.lock?.release();
  }
}
