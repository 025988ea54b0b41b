/**
 * The /metrics series of `up --server` (the MPTCP paths to the server), read at
 * scrape time from DaemonStatus.mptcp like every other linkmux_* value
 * (metrics.ts). Absent when the status has no mptcp section. Label `uplink` is
 * the uplink's interface (the endpoint's dev).
 *
 * | name | type | labels | value |
 * |---|---|---|---|
 * | linkmux_mptcp_endpoint | gauge | uplink | 1 while linkmux's endpoint for the uplink is installed, else 0 |
 * | linkmux_mptcp_subflows | gauge | uplink | open subflows to the server from the uplink's address |
 * | linkmux_mptcp_subflow_bytes | gauge | uplink, direction | bytes of those open subflows, "in" received, "out" sent and acked |
 *
 * The bytes are a gauge, not a counter: they are summed over the subflows open at
 * scrape time, so they drop when a subflow closes. Per-uplink totals over time
 * are the links' own linkmux_link_bytes_total.
 */
import { Gauge, type Registry } from 'prom-client';
import type { DaemonStatus } from './status-types.js';

export function registerMptcpMetrics(registers: Registry[], snapshot: () => DaemonStatus): void {
  new Gauge({
    name: 'linkmux_mptcp_endpoint',
    help: "up --server: 1 while linkmux's MPTCP endpoint for the uplink is installed, else 0.",
    labelNames: ['uplink'],
    registers,
    collect() {
      this.reset();
      for (const u of snapshot().mptcp?.uplinks ?? []) this.set({ uplink: u.dev }, u.endpoint ? 1 : 0);
    },
  });
  new Gauge({
    name: 'linkmux_mptcp_subflows',
    help: 'up --server: open MPTCP subflows to the server from the uplink address.',
    labelNames: ['uplink'],
    registers,
    collect() {
      this.reset();
      for (const u of snapshot().mptcp?.uplinks ?? []) this.set({ uplink: u.dev }, u.subflows);
    },
  });
  new Gauge({
    name: 'linkmux_mptcp_subflow_bytes',
    help: 'up --server: bytes of the open MPTCP subflows from the uplink; direction "in" is received, "out" is sent and acked.',
    labelNames: ['uplink', 'direction'],
    registers,
    collect() {
      this.reset();
      for (const u of snapshot().mptcp?.uplinks ?? []) {
        this.set({ uplink: u.dev, direction: 'in' }, u.bytesIn);
        this.set({ uplink: u.dev, direction: 'out' }, u.bytesOut);
      }
    },
  });
}
