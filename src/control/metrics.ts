/**
 * Prometheus metrics of the daemon, served at the control API's GET /metrics.
 *
 * Guarantees:
 * - Every linkmux_* value is computed at scrape time from the same
 *   `() => DaemonStatus` callback that answers GET /status, so the two never
 *   disagree and the data path pays nothing per connection or per byte.
 * - One scrape calls `status()` once: every collect callback of that scrape reads
 *   the same snapshot, so e.g. the per-link state gauges cannot straddle a change.
 * - A link that disappears from the status disappears from the metrics (series are
 *   rebuilt on every scrape, never left stale).
 * - prom-client's default process metrics (CPU, memory, file descriptors, event
 *   loop lag, GC) are in the same registry.
 *
 * The metrics (label `link` is LinkStatus.id; `direction` is "in" = received
 * from the far end (downloads), "out" = sent):
 *
 * | name | type | labels | value |
 * |---|---|---|---|
 * | linkmux_info | gauge | version, policy | always 1 |
 * | linkmux_link_up | gauge | link | 1 online, 0.5 degraded or unverified, 0 offline |
 * | linkmux_link_state | gauge | link, state | 1 for the current state, 0 for the other three |
 * | linkmux_link_state_info | gauge | link, state, reason | 1; why the link is in its state (absent until a change) |
 * | linkmux_link_rtt_seconds | gauge | link | last probe RTT; absent until measured |
 * | linkmux_link_rate_bytes_per_second | gauge | link, direction | measured rate |
 * | linkmux_link_capacity_bytes_per_second | gauge | link | learned capacity; absent until learned |
 * | linkmux_link_bytes_total | counter | link, direction | bytes since the daemon started |
 * | linkmux_link_active_connections | gauge | link | open connections through the link |
 * | linkmux_link_connect_failures_total | counter | link | failed connects through the link |
 * | linkmux_connections_active | gauge | | open client connections |
 * | linkmux_connections_total | counter | | client connections accepted |
 * | linkmux_connections_failed_total | counter | | client connections never connected to their destination |
 * | linkmux_connections_shed_total, linkmux_failed_logins_total, … | | | see protection-metrics.ts |
 * | linkmux_mptcp_endpoint | gauge | uplink | `up --server`: 1 while linkmux's MPTCP endpoint for the uplink is installed, else 0 |
 * | linkmux_mptcp_subflows | gauge | uplink | open MPTCP subflows to the server from the uplink's address |
 * | linkmux_mptcp_subflow_bytes | gauge | uplink, direction | bytes of those open subflows (a gauge: a closed subflow's bytes leave the sum) |
 *
 * Why linkmux_link_up is fractional rather than a state label: a degraded link
 * still carries traffic (used when nothing better exists), so 0 would overstate
 * the problem and 1 would hide it; `sum(linkmux_link_up)` reads as "usable
 * links" and `linkmux_link_up < 1` is the alert. The exact state, for graphs
 * and for `== 0.5`-free alerting, is the one-hot linkmux_link_state. An
 * unverified link (every link fails its probes: the targets look blocked) is
 * 0.5 too: it carries traffic, but nothing proves it works, and the alert
 * should fire so someone sets health.targets.
 *
 * Counters are taken from the daemon's cumulative totals, which only grow while
 * it runs; a daemon restart resets them to 0, which Prometheus' rate() treats as
 * an ordinary counter reset.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { LINK_STATES, type LinkState } from '../health/state-machine.js';
import type { DaemonStatus } from './status-types.js';
import { registerProtectionMetrics } from './protection-metrics.js';
import { registerMptcpMetrics } from './mptcp-metrics.js';

const STATES: readonly LinkState[] = LINK_STATES;
const UP_VALUE: Record<LinkState, number> = { online: 1, degraded: 0.5, unverified: 0.5, offline: 0 };

/** What the control server serves at /metrics. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/**
 * The linkmux metrics (read from `status` at each scrape) and the
 * process-wide default metrics. Serve it with `metrics()` and `contentType`.
 * Each call makes an independent registry. The default metrics start at the
 * first scrape: their event-loop monitor wakes the loop 10 times a second,
 * which a daemon nobody scrapes should not pay for (so the first scrape's
 * event-loop lag and GC figures cover only the time since it began).
 */
export function createMetricsRegistry(status: () => DaemonStatus): MetricsSource {
  const own = new Registry();
  const snapshot = scrapeSnapshot(status);
  const registers = [own];

  // Each collect() rebuilds its series from the snapshot: reset() drops links
  // that have gone, and counters are "reset then inc(total)" because prom-client
  // has no set() for counters.
  new Gauge({
    name: 'linkmux_info',
    help: 'Always 1; labels carry the daemon version and scheduling policy.',
    labelNames: ['version', 'policy'],
    registers,
    collect() {
      const s = snapshot();
      this.reset();
      this.set({ version: s.version, policy: s.policy }, 1);
    },
  });
  perLinkGauge(
    'linkmux_link_up',
    'Link health: 1 online, 0.5 degraded or unverified, 0 offline.',
    (l) => UP_VALUE[l.state],
  );
  new Gauge({
    name: 'linkmux_link_state',
    help: 'Link health state, one-hot: 1 for the current state of the link.',
    labelNames: ['link', 'state'],
    registers,
    collect() {
      this.reset();
      for (const l of snapshot().links) {
        for (const state of STATES) this.set({ link: l.id, state }, l.state === state ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'linkmux_link_state_info',
    help: 'Always 1; labels carry the link state and the reason for it (absent until the state changed once).',
    labelNames: ['link', 'state', 'reason'],
    registers,
    collect() {
      this.reset();
      for (const l of snapshot().links) {
        if (l.stateReason !== undefined) this.set({ link: l.id, state: l.state, reason: l.stateReason }, 1);
      }
    },
  });
  perLinkGauge(
    'linkmux_link_rtt_seconds',
    'Round-trip time of the last successful probe through the link.',
    (l) => (l.rttMs === undefined ? undefined : l.rttMs / 1000),
  );
  new Gauge({
    name: 'linkmux_link_rate_bytes_per_second',
    help: 'Measured throughput through the link; direction "in" is received, "out" is sent.',
    labelNames: ['link', 'direction'],
    registers,
    collect() {
      this.reset();
      for (const l of snapshot().links) {
        this.set({ link: l.id, direction: 'in' }, l.rateIn);
        this.set({ link: l.id, direction: 'out' }, l.rateOut);
      }
    },
  });
  perLinkGauge(
    'linkmux_link_capacity_bytes_per_second',
    'Capacity of the link learned from observed throughput (absent until learned).',
    (l) => l.capacity,
  );
  new Counter({
    name: 'linkmux_link_bytes_total',
    help: 'Bytes carried by the link since the daemon started; direction "in" is received, "out" is sent.',
    labelNames: ['link', 'direction'],
    registers,
    collect() {
      this.reset();
      for (const l of snapshot().links) {
        this.inc({ link: l.id, direction: 'in' }, l.bytesIn);
        this.inc({ link: l.id, direction: 'out' }, l.bytesOut);
      }
    },
  });
  perLinkGauge(
    'linkmux_link_active_connections',
    'Connections currently open through the link.',
    (l) => l.activeConnections,
  );
  new Counter({
    name: 'linkmux_link_connect_failures_total',
    help: 'Connects through the link that failed since the daemon started.',
    labelNames: ['link'],
    registers,
    collect() {
      this.reset();
      for (const l of snapshot().links) this.inc({ link: l.id }, l.connectFailures);
    },
  });
  new Gauge({
    name: 'linkmux_connections_active',
    help: 'Client connections currently open through the proxy.',
    registers,
    collect() {
      this.set(snapshot().connections.active);
    },
  });
  new Counter({
    name: 'linkmux_connections_total',
    help: 'Client connections accepted since the daemon started.',
    registers,
    collect() {
      this.reset();
      this.inc(snapshot().connections.total);
    },
  });
  new Counter({
    name: 'linkmux_connections_failed_total',
    help: 'Client connections that could not be connected to their destination since the daemon started.',
    registers,
    collect() {
      this.reset();
      this.inc(snapshot().connections.failed);
    },
  });

  /** A gauge with one series per link; `value` returning undefined leaves the link out. */
  function perLinkGauge(
    name: string,
    help: string,
    value: (l: DaemonStatus['links'][number]) => number | undefined,
  ): void {
    new Gauge({
      name,
      help,
      labelNames: ['link'],
      registers,
      collect() {
        this.reset();
        for (const l of snapshot().links) {
          const v = value(l);
          if (v !== undefined) this.set({ link: l.id }, v);
        }
      },
    });
  }

  registerProtectionMetrics(registers, snapshot);
  registerMptcpMetrics(registers, snapshot);

  let merged: Registry | undefined;
  return {
    metrics: () => (merged ??= Registry.merge([own, processRegistry()])).metrics(),
    contentType: own.contentType,
  };
}

/**
 * Memoizes `status()` for one scrape. Registry.metrics() runs every collect()
 * synchronously in one loop before its first await, so a memo dropped at the
 * next microtask spans exactly one scrape and never serves stale data to the next.
 */
function scrapeSnapshot(status: () => DaemonStatus): () => DaemonStatus {
  let current: DaemonStatus | undefined;
  return () => {
    if (current === undefined) {
      current = status();
      queueMicrotask(() => {
        current = undefined;
      });
    }
    return current;
  };
}

let defaults: Registry | undefined;
/** The event-loop delay monitor's sampling period (prom-client's default: 10 ms). */
const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * The default process metrics, created once per process and shared by every
 * registry: collectDefaultMetrics starts an event-loop-delay monitor and a GC
 * observer that are never released, so one set per control server would pile up
 * (tests start many), and the numbers describe the process anyway. The
 * event-loop monitor samples every 100 ms, not prom-client's 10: its timer's
 * 100 wake-ups a second were most of an idle daemon's CPU (14.6 → 6.2 CPU-s
 * per hour, bench:memory's idle phase), and lag shows as well at 100 ms.
 */
function processRegistry(): Registry {
  if (defaults === undefined) {
    defaults = new Registry();
    collectDefaultMetrics({ register: defaults, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }
  return defaults;
}
