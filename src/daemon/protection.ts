/**
 * What keeps the daemon serving under hostile clients and exhausted
 * resources, in one place the front ends share:
 *
 * - the descriptor budget: the soft RLIMIT_NOFILE raised to the hard limit at
 *   start (said at debug level), and the connection caps derived from it
 *   minus a reserve for the control API and the probes (fd-limit.ts);
 * - one ConnectionGate for every front end (SOCKS5, HTTP, node), whose
 *   refusals are counted and logged at most once per LOG_EVERY_MS;
 * - EMFILE/ENFILE, wherever seen (accept, a dial): LINKMUX_ERR_NO_DESCRIPTORS,
 *   logged at most once per LOG_EVERY_MS, and a pause of new connections
 *   (100 ms doubling to 1 s, accept-backoff.ts) instead of blaming any link;
 * - failed logins, aggregated per client address (login-failures.ts);
 * - the host's own addresses, for the own-host guards (own-host-guard.ts).
 *
 * Guarantees: never throws into a front end; its timer is unref'd and
 * stopped by stop(); counters only grow (they feed /metrics).
 */
import type { Server } from 'node:net';
import type { Dialer } from '../proxy/dialer.js';
import { ConnectionGate, type ShedReason } from '../proxy/connection-gate.js';
import { LoginFailures, type FrontEnd } from '../proxy/login-failures.js';
import type { FrontEndGate, GatedFrontEnd } from '../proxy/shed.js';
import { HostAddresses } from '../net/host-addresses.js';
import { deriveCaps, openFdCount, raiseFdLimit, readFdLimit } from '../net/fd-limit.js';
import type { CapSettings } from '../net/fd-limit.js';
import type { Clock } from '../util/clock.js';
import { isDescriptorExhaustion, systemCode, describe } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { ProtectionStatus } from '../control/status-types.js';

export interface ProtectionOptions extends CapSettings {
  loginLogIntervalMs: number;
  logger: Logger;
  clock: Clock;
  /** Raise RLIMIT_NOFILE at start (default true; tests running in-process turn it off). */
  raiseLimit?: boolean;
}

/** At most one line per topic (shed, descriptors) per this many ms. */
const LOG_EVERY_MS = 10_000;

export class Protection {
  readonly gate: ConnectionGate;
  readonly logins: LoginFailures;
  readonly hostAddresses = new HostAddresses();
  readonly caps: ReturnType<typeof deriveCaps>;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private flushTimer: NodeJS.Timeout | undefined;
  private shedSinceLog: Partial<Record<string, number>> = {};
  private shedLoggedAt = -Infinity;
  private exhaustedSinceLog = 0;
  private exhaustedLoggedAt = -Infinity;

  constructor(opts: ProtectionOptions) {
    this.logger = opts.logger;
    this.clock = opts.clock;
    if (opts.raiseLimit ?? true) {
      const r = raiseFdLimit();
      if (r.ok && r.after.soft !== r.before.soft) {
        opts.logger.debug(
          `file descriptor limit raised from ${r.before.soft} to ${r.after.soft} (hard limit)`,
        );
      } else if (r.ok) {
        opts.logger.debug(`file descriptor limit ${r.after.soft} (already the hard limit)`);
      } else {
        opts.logger.debug(`file descriptor limit left as it is: ${r.reason}`);
      }
    }
    this.caps = deriveCaps(opts, readFdLimit()?.soft);
    this.gate = new ConnectionGate({
      maxConnections: this.caps.maxConnections,
      maxPerClient: this.caps.maxPerClient,
    });
    this.logins = new LoginFailures(opts.loginLogIntervalMs);
    opts.logger.debug(
      `connection caps: ${this.caps.maxConnections} in all, ${this.caps.maxPerClient} per client address ` +
        `(descriptor limit ${this.caps.limit}, ${this.caps.reserve} kept for the control API and probes)`,
    );
  }

  start(): void {
    this.flushTimer = setInterval(() => {
      for (const line of this.logins.flush(this.clock.now())) this.logger.warn(line);
    }, this.logins.intervalMs);
    this.flushTimer.unref();
  }

  stop(): void {
    clearInterval(this.flushTimer);
    for (const line of this.logins.flush(this.clock.now())) this.logger.warn(line);
  }

  /** What a front end needs to apply the caps. */
  frontEndGate(): FrontEndGate {
    return {
      gate: this.gate,
      clock: this.clock,
      onShed: (reason, frontEnd) => this.onShed(reason, frontEnd),
    };
  }

  /** The callback a front end calls on a failed login. */
  loginFailure(frontEnd: FrontEnd): (address: string | undefined) => void {
    return (address) => {
      const line = this.logins.record(address, frontEnd, this.clock.now());
      if (line) this.logger.warn(line);
    };
  }

  /** The process ran out of descriptors (seen by `where`): pause new connections, log rate-limited. */
  descriptorsExhausted(where: string, err: unknown): void {
    const pause = this.gate.backoff.fail(this.clock.now());
    this.exhaustedSinceLog++;
    const now = this.clock.now();
    if (now - this.exhaustedLoggedAt < LOG_EVERY_MS) return;
    this.logger.error(
      `out of file descriptors (${systemCode(err) ?? describe(err)}, ${where}; ${this.exhaustedSinceLog} time(s) ` +
        `since the last report): new connections paused for ${pause} ms; no link is blamed. Raise ulimit -n ` +
        `or lower limits.maxConnections [LINKMUX_ERR_NO_DESCRIPTORS]`,
    );
    this.exhaustedLoggedAt = now;
    this.exhaustedSinceLog = 0;
  }

  /** Keeps a listening server alive through accept errors: EMFILE/ENFILE pause, others are logged. */
  watchServer(server: Server, what: string): void {
    server.on('error', (err) => {
      if (isDescriptorExhaustion(err)) this.descriptorsExhausted(`accept on ${what}`, err);
      else this.logger.error(`${what}: ${describe(err)}`);
    });
  }

  /** The dialer the front ends use: descriptor exhaustion while dialing starts the pause too. */
  watchDialer(inner: Dialer): Dialer {
    const seen = (err: unknown) => {
      if (isDescriptorExhaustion(err)) this.descriptorsExhausted('opening an outbound connection', err);
      throw err;
    };
    return {
      dial: (dst, ctx) => inner.dial(dst, ctx).catch(seen),
      openUdp: (family, ctx) => inner.openUdp(family, ctx).catch(seen),
    };
  }

  status(): ProtectionStatus {
    const c = this.gate.counters();
    const fds = openFdCount();
    return {
      maxConnections: this.caps.maxConnections,
      maxConnectionsPerClient: this.caps.maxPerClient,
      fdLimit: this.caps.limit,
      fdReserve: this.caps.reserve,
      ...(fds !== undefined ? { openFds: fds } : {}),
      clientConnections: c.open,
      shed: { global: c.shed.global, perClient: c.shed['per-client'], pressure: c.shed.pressure },
      descriptorExhaustion: this.gate.backoff.failures,
      failedLogins: { ...this.logins.totals },
    };
  }

  private onShed(reason: ShedReason, frontEnd: GatedFrontEnd): void {
    const key = `${frontEnd} ${reason}`;
    this.shedSinceLog[key] = (this.shedSinceLog[key] ?? 0) + 1;
    const now = this.clock.now();
    if (now - this.shedLoggedAt < LOG_EVERY_MS) return;
    const parts = Object.entries(this.shedSinceLog).map(([k, n]) => `${n} ${k}`);
    this.logger.warn(
      `refused new connections over the caps (${this.caps.maxConnections} in all, ` +
        `${this.caps.maxPerClient} per client): ${parts.join(', ')} since the last report`,
    );
    this.shedLoggedAt = now;
    this.shedSinceLog = {};
  }
}
