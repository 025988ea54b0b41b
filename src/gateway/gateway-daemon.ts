/**
 * `linkmux gateway`: keeps the kernel's balancing in step with the uplinks'
 * health and measured capacity. linkmux is not in the data path: the kernel
 * forwards, nft places new connections, conntrack keeps them placed.
 *
 *   HealthMonitor (probes bound to each uplink) ─┐
 *   per-uplink byte counters ─► CapacityEstimator ┼─► planGateway ─► GatewayKernel.apply
 *                                                 └─ an uplink gone offline: conntrack flush of its mark
 *
 * Guarantees: applies are serialized (one at a time, in order); a failed
 * re-apply is logged and retried on the next change or weight tick, while the
 * last good state stays in the kernel; stop() removes everything linkmux added
 * (cleanup), whatever happened before; status() is cheap (a snapshot refreshed
 * every second) and its byte counters never decrease.
 */
import type { Link } from '../links/link.js';
import { HealthMonitor } from '../health/monitor.js';
import type { HealthConfig } from '../health/config.js';
import { CapacityEstimator } from '../scheduler/capacity.js';
import { startControlServer, type ControlServer } from '../control/control-server.js';
import type { DaemonStatus, LinkStatus } from '../control/status-types.js';
import { clockToIso, linkStatusRow, statusHeader } from '../control/status-builder.js';
import { systemClock, type Clock } from '../util/clock.js';
import { describe } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { GatewayKernel, UplinkCounters } from './kernel.js';
import { planGateway } from './plan.js';
import { interfaceRxBytes, sysfsIfindex } from '../net/interface-bytes.js';
import type { GatewayNumbers, GatewayPlan, GatewayRule, UplinkDecl } from './plan.js';

export interface GatewayDaemonOptions {
  kernel: GatewayKernel;
  uplinks: readonly UplinkDecl[];
  lan: readonly string[];
  rules: readonly GatewayRule[];
  numbers: GatewayNumbers;
  /** One link per uplink, ids = the uplinks' devices: what the health probes go through. */
  links: readonly Link[];
  health: HealthConfig;
  weightIntervalMs: number;
  control?: string | undefined;
  logger: Logger;
  clock?: Clock;
  /** An uplink device's received bytes (default: sysfs, once it matches this namespace). */
  rxBytes?: (dev: string) => number | undefined;
}

interface Sample {
  at: number;
  rx: number;
  tx: number;
}

const SAMPLE_MS = 1_000;
const CONNTRACK_EVERY = 5;

/** Bytes/s an uplink must have carried before its learned capacity weighs (256 kbit/s; probes are far below). */
export const MIN_MEASURED_RATE = 32 * 1024;

/**
 * The learned capacities that weigh in the plan: all of them, or none. Capacity
 * known for only some uplinks would starve the others, and the probes' own few
 * hundred bytes a second are no measurement (counted, they gave an idle uplink
 * 1 slot against 30, and it never got the traffic that would show its rate).
 */
export function measuredWeights(capacities: ReadonlyMap<string, number | undefined>): Map<string, number> {
  const measured = new Map<string, number>();
  for (const [name, c] of capacities) if (c !== undefined && c >= MIN_MEASURED_RATE) measured.set(name, c);
  return measured.size === capacities.size ? measured : new Map();
}

export class GatewayDaemon {
  private readonly health: HealthMonitor;
  private readonly clock: Clock;
  private readonly capacity = new Map<string, CapacityEstimator>();
  private readonly last = new Map<string, Sample>();
  private readonly base = new Map<string, { rx: number; tx: number }>();
  private readonly rates = new Map<
    string,
    { rateIn: number; rateOut: number; bytesIn: number; bytesOut: number }
  >();
  private connections = new Map<number, number>();
  private plan: GatewayPlan | undefined;
  private queue: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private control: ControlServer | undefined;
  private readonly startedAt = new Date();
  private stopped = false;
  /** sysfs shows this namespace's uplinks (same ifindex as netlink): its counters may be read. */
  private sysfsTrusted = false;
  /** The kernel's counters as of the latest sample. */
  private lastCounters = new Map<string, UplinkCounters>();

  constructor(private readonly opts: GatewayDaemonOptions) {
    this.clock = opts.clock ?? systemClock;
    this.health = new HealthMonitor({
      links: opts.links,
      config: opts.health,
      clock: this.clock,
      logger: opts.logger,
      // Forwarded traffic never passes through these links' sockets: the interface's counter
      // tells a busy uplink (probes queued behind the LAN's downloads) from a dead one.
      trafficCountsAsAlive: true,
      traffic: {
        bytesIn: (link) => (this.sysfsTrusted ? (opts.rxBytes ?? interfaceRxBytes)(link.id) : undefined),
        min: (roundMs) => (MIN_MEASURED_RATE * roundMs) / 1000,
      },
      onEvent: (e) => {
        const wasOffline = e.to === 'offline';
        const uplink = opts.uplinks.find((u) => u.dev === e.link);
        this.enqueue(`${e.link} ${e.to}`, async () => {
          await this.reapply();
          if (wasOffline && uplink) await this.flushUplink(uplink.name);
        });
      },
    });
    for (const u of opts.uplinks) this.capacity.set(u.name, new CapacityEstimator());
  }

  /** Applies the first plan (every uplink assumed online until probed), then starts probing and measuring. */
  async start(): Promise<void> {
    await this.sample();
    this.sysfsTrusted = this.sysfsMatches();
    this.plan = this.compute();
    await this.opts.kernel.apply(this.plan);
    try {
      if (this.opts.control) {
        this.control = await startControlServer({
          listen: this.opts.control,
          status: () => this.status(),
          logger: this.opts.logger,
        });
      }
    } catch (err) {
      await this.opts.kernel.cleanup().catch(() => {});
      throw err;
    }
    this.health.start();
    this.timers.push(setInterval(() => void this.sample().catch(() => {}), SAMPLE_MS));
    this.timers.push(
      setInterval(() => this.enqueue('weights', () => this.reapply()), this.opts.weightIntervalMs),
    );
    const ups = this.plan.uplinks.map(
      (u) => `${u.name} (${u.dev} via ${u.gateway}, mark 0x${u.mark.toString(16)})`,
    );
    this.opts.logger.info(
      `gateway: LAN ${this.opts.lan.join(', ')} over ${ups.join(', ')}` +
        (this.control ? `; control on ${this.control.address}` : ''),
    );
  }

  /**
   * Whether sysfs belongs to this network namespace: every uplink's ifindex there
   * equals netlink's. An injected `rxBytes` is trusted as it is.
   */
  private sysfsMatches(): boolean {
    if (this.opts.rxBytes) return true;
    const same = this.opts.uplinks.every((u) => {
      const ifindex = this.lastCounters.get(u.dev)?.ifindex;
      return ifindex !== undefined && ifindex === sysfsIfindex(u.dev);
    });
    if (!same) {
      this.opts.logger.debug(
        "gateway: /sys/class/net shows another network namespace: a busy uplink's failed probes count as failures",
      );
    }
    return same;
  }

  /** Stops probing and removes every rule, route and table linkmux added. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.health.stop();
    await this.queue;
    await this.control?.close();
    for (const l of this.opts.links) l.destroy();
    await this.opts.kernel.cleanup();
  }

  status(): DaemonStatus {
    const wall = Date.now();
    const toIso = clockToIso(this.clock.now(), wall);
    const links: LinkStatus[] = (this.plan?.uplinks ?? []).map((u) => {
      const h = this.health.status(u.dev);
      const r = this.rates.get(u.name) ?? { rateIn: 0, rateOut: 0, bytesIn: 0, bytesOut: 0 };
      const capacity = this.capacity.get(u.name)?.capacity;
      const link = {
        id: u.name,
        description: `${u.dev} via ${u.gateway} (mark 0x${u.mark.toString(16)}, table ${u.table}, ${u.slots} slot(s))`,
        // "offline" once the kernel no longer sends new connections there (the re-apply follows the probe).
        state: h.state === 'offline' && u.online ? ('degraded' as const) : h.state,
      };
      return linkStatusRow(
        link,
        h,
        {
          rateIn: r.rateIn,
          rateOut: r.rateOut,
          ...(capacity !== undefined ? { capacity } : {}),
          activeConnections: this.connections.get(u.mark) ?? 0,
          bytesIn: r.bytesIn,
          bytesOut: r.bytesOut,
          connectFailures: 0,
        },
        toIso,
      );
    });
    const active = [...this.connections.values()].reduce((a, b) => a + b, 0);
    return {
      ...statusHeader(this.startedAt, wall, {
        policy: 'gateway (weighted round-robin in nftables)',
        listen: this.control ? { control: this.control.address } : {},
        connections: { active, total: this.seenConnections, failed: 0 },
      }),
      links,
    };
  }

  private samples = 0;
  private seenConnections = 0;
  private seenIds = new Set<string>();

  private compute(): GatewayPlan {
    const online = new Map<string, boolean>();
    for (const u of this.opts.uplinks) {
      online.set(u.name, this.plan === undefined ? true : this.health.state(u.dev) !== 'offline');
    }
    const measured = measuredWeights(
      new Map(this.opts.uplinks.map((u) => [u.name, this.capacity.get(u.name)?.capacity])),
    );
    return planGateway({
      lan: this.opts.lan,
      uplinks: this.opts.uplinks,
      rules: this.opts.rules,
      numbers: this.opts.numbers,
      online,
      measured,
    });
  }

  private async reapply(): Promise<void> {
    if (this.stopped) return;
    const next = this.compute();
    const before = this.plan && JSON.stringify(this.plan);
    if (before === JSON.stringify(next)) return;
    await this.opts.kernel.apply(next);
    this.plan = next;
    const shares = next.uplinks.map((u) => `${u.name} ${u.online ? u.slots : 'offline'}`).join(', ');
    this.opts.logger.info(`gateway: round-robin now ${shares}`);
  }

  private async flushUplink(name: string): Promise<void> {
    const u = this.plan?.uplinks.find((x) => x.name === name);
    if (!u) return;
    const n = await this.opts.kernel.flush(u.mark);
    this.opts.logger.info(
      `gateway: ${name} offline: dropped ${n} connection(s) pinned to it, so clients reconnect elsewhere`,
    );
  }

  private enqueue(what: string, job: () => Promise<void>): void {
    this.queue = this.queue.then(job).catch((err: unknown) => {
      this.opts.logger.error(`gateway: ${what}: ${describe(err)}; will retry on the next change`);
    });
  }

  /** Counters → rates → capacity estimates; conntrack → connections per uplink. */
  private async sample(): Promise<void> {
    const now = this.clock.now();
    const counters = await this.opts.kernel.counters();
    this.lastCounters = counters;
    for (const u of this.opts.uplinks) {
      const c = counters.get(u.dev);
      if (!c) continue;
      const base = this.base.get(u.name) ?? { rx: c.rxBytes, tx: c.txBytes };
      this.base.set(u.name, base);
      const prev = this.last.get(u.name);
      const rate = (now2: Sample, then?: Sample) => {
        if (!then || now2.at <= then.at) return { rateIn: 0, rateOut: 0 };
        const s = (now2.at - then.at) / 1000;
        return {
          rateIn: Math.max(0, (now2.rx - then.rx) / s),
          rateOut: Math.max(0, (now2.tx - then.tx) / s),
        };
      };
      const cur: Sample = { at: now, rx: c.rxBytes, tx: c.txBytes };
      const r = rate(cur, prev);
      this.last.set(u.name, cur);
      const old = this.rates.get(u.name);
      this.rates.set(u.name, {
        ...r,
        bytesIn: Math.max(old?.bytesIn ?? 0, c.rxBytes - base.rx),
        bytesOut: Math.max(old?.bytesOut ?? 0, c.txBytes - base.tx),
      });
      if (prev) this.capacity.get(u.name)?.observe(Math.max(r.rateIn, r.rateOut), now);
    }
    // Listing conntrack costs in proportion to the router's connections: every 5th sample is enough for status.
    if (this.samples++ % CONNTRACK_EVERY !== 0) return;
    const { byMark, ids } = await this.opts.kernel.connections();
    this.connections = byMark;
    for (const id of ids) if (!this.seenIds.has(id)) this.seenConnections++;
    this.seenIds = ids;
  }
}
