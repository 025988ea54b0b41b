/**
 * Admission of client connections: a global cap and a cap per client address,
 * shared by every front end of one process (SOCKS5, HTTP proxy, node), plus a
 * "pressure" pause entered when the process ran out of descriptors.
 *
 * Pure accounting, no sockets: `admit(address, now)` either hands out a lease
 * (release it exactly once, when the connection closes) or says why not.
 *
 * Guarantees: the counts never go negative and a lease released twice counts
 * once; the per-client map holds only addresses with open connections, so a
 * flood from many addresses costs memory only while their connections live;
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack listener reports) counts
 * as its IPv4 address, so one client cannot double its share by family.
 */
import { AcceptBackoff } from './accept-backoff.js';

export type ShedReason = 'global' | 'per-client' | 'pressure';

export interface GateLimits {
  /** Client connections open at once, all front ends together. */
  maxConnections: number;
  /** Client connections open at once from one address. */
  maxPerClient: number;
}

export interface Lease {
  release(): void;
}

export type Admission = { ok: true; lease: Lease } | { ok: false; reason: ShedReason };

export interface GateCounters {
  open: number;
  /** Connections refused since start, by reason (counters). */
  shed: Record<ShedReason, number>;
}

export class ConnectionGate {
  private open = 0;
  private readonly perClient = new Map<string, number>();
  private readonly shed: Record<ShedReason, number> = { global: 0, 'per-client': 0, pressure: 0 };
  readonly backoff = new AcceptBackoff();

  constructor(readonly limits: GateLimits) {}

  admit(address: string | undefined, now: number): Admission {
    if (this.backoff.paused(now)) return this.refuse('pressure');
    if (this.open >= this.limits.maxConnections) return this.refuse('global');
    const key = clientKey(address);
    const mine = this.perClient.get(key) ?? 0;
    if (mine >= this.limits.maxPerClient) return this.refuse('per-client');
    this.open++;
    this.perClient.set(key, mine + 1);
    let released = false;
    return {
      ok: true,
      lease: {
        release: () => {
          if (released) return;
          released = true;
          this.open--;
          const left = (this.perClient.get(key) ?? 1) - 1;
          if (left <= 0) this.perClient.delete(key);
          else this.perClient.set(key, left);
        },
      },
    };
  }

  /** Connections open now from one address (for tests and status). */
  openFrom(address: string | undefined): number {
    return this.perClient.get(clientKey(address)) ?? 0;
  }

  counters(): GateCounters {
    return { open: this.open, shed: { ...this.shed } };
  }

  private refuse(reason: ShedReason): Admission {
    this.shed[reason]++;
    return { ok: false, reason };
  }
}

function clientKey(address: string | undefined): string {
  if (address === undefined) return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address.toLowerCase();
}
