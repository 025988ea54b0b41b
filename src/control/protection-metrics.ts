/**
 * The /metrics series about hostile clients and exhausted resources, read at
 * scrape time from DaemonStatus.protection like every other linkmux_* value
 * (metrics.ts). Absent when the status has no protection section.
 *
 * | name | type | labels | value |
 * |---|---|---|---|
 * | linkmux_connections_shed_total | counter | reason (global, per_client, pressure) | client connections refused |
 * | linkmux_failed_logins_total | counter | frontend (socks5, http, node) | failed logins |
 * | linkmux_descriptor_exhaustion_total | counter | | EMFILE/ENFILE seen by the daemon |
 * | linkmux_connection_cap | gauge | scope (global, per_client) | caps in force |
 * | linkmux_client_connections | gauge | | client connections open, all front ends |
 * | linkmux_fd_limit | gauge | | the soft RLIMIT_NOFILE after raising it |
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DaemonStatus } from './status-types.js';

export function registerProtectionMetrics(registers: Registry[], snapshot: () => DaemonStatus): void {
  new Counter({
    name: 'linkmux_connections_shed_total',
    help: 'Client connections refused over the caps (SOCKS5/node: closed, HTTP: 503) since the daemon started.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      const p = snapshot().protection;
      if (!p) return;
      this.inc({ reason: 'global' }, p.shed.global);
      this.inc({ reason: 'per_client' }, p.shed.perClient);
      this.inc({ reason: 'pressure' }, p.shed.pressure);
    },
  });
  new Counter({
    name: 'linkmux_failed_logins_total',
    help: 'Failed logins (wrong credentials or secret) since the daemon started, by front end.',
    labelNames: ['frontend'],
    registers,
    collect() {
      this.reset();
      const p = snapshot().protection;
      if (!p) return;
      for (const [frontend, n] of Object.entries(p.failedLogins)) this.inc({ frontend }, n);
    },
  });
  new Counter({
    name: 'linkmux_descriptor_exhaustion_total',
    help: 'Times the daemon ran out of file descriptors (EMFILE/ENFILE) since it started.',
    registers,
    collect() {
      this.reset();
      const p = snapshot().protection;
      if (p) this.inc(p.descriptorExhaustion);
    },
  });
  new Gauge({
    name: 'linkmux_connection_cap',
    help: 'Client connections allowed at once: in all (global) and from one address (per_client).',
    labelNames: ['scope'],
    registers,
    collect() {
      this.reset();
      const p = snapshot().protection;
      if (!p) return;
      this.set({ scope: 'global' }, p.maxConnections);
      this.set({ scope: 'per_client' }, p.maxConnectionsPerClient);
    },
  });
  new Gauge({
    name: 'linkmux_client_connections',
    help: 'Client connections open now, all front ends (SOCKS5, HTTP, node).',
    registers,
    collect() {
      this.reset();
      const p = snapshot().protection;
      if (p) this.set(p.clientConnections);
    },
  });
  new Gauge({
    name: 'linkmux_fd_limit',
    help: 'The soft file descriptor limit of the daemon (RLIMIT_NOFILE, after raising it to the hard limit).',
    registers,
    collect() {
      this.reset();
      const p = snapshot().protection;
      if (p) this.set(p.fdLimit);
    },
  });
}
