// Fakes for the health monitor's tests: a link that is never dialled and a
// prober scripted per link and target, both on FakeTimers (no sockets, no waiting).
import type { Socket } from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';
import type { ProbeTarget } from '../../src/health/config.js';
import type { ProbeOutcome, Prober } from '../../src/health/prober.js';
import type { FakeTimers } from '../../src/health/timers.js';
import type { Link, LinkStats } from '../../src/links/link.js';
import type { FakeClock } from '../../src/util/clock.js';

/** A link that is never dialled (the prober is fake); only its byte counter matters. */
export class FakeLink implements Link {
  readonly description: string;
  capabilities: Link['capabilities'] = { udp: true, remoteNames: false, families: new Set<4 | 6>([4, 6]) };
  bytesIn = 0;
  constructor(readonly id: string) {
    this.description = `${id} (fake)`;
  }
  connect(): Promise<Socket> {
    return Promise.reject(new Error('FakeLink cannot connect'));
  }
  openUdp(): Promise<UdpSocket> {
    return Promise.reject(new Error('FakeLink has no UDP'));
  }
  stats(): LinkStats {
    return { bytesIn: this.bytesIn, bytesOut: 0, activeConnections: 0, connectFailures: 0 };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): void {}
}

/** How a target answers through a link: after `ms` with ok or a reason, or never (until aborted). */
export type Behaviour =
  { answer: 'ok'; ms: number } | { answer: 'fail'; ms: number; reason: string } | { answer: 'silent' };

export const A: ProbeTarget = { kind: 'tcp', host: '127.0.0.1', port: 1 };
export const B: ProbeTarget = { kind: 'tcp', host: '127.0.0.1', port: 2 };
export const OK: Behaviour = { answer: 'ok', ms: 20 };
export const SILENT: Behaviour = { answer: 'silent' };

/** A prober scripted per link and target; records every probe's start time and whether it was aborted. */
export function scriptedProber(timers: FakeTimers, clock: FakeClock) {
  const behaviour = new Map<string, Behaviour>();
  const starts: Array<{ link: string; target: string; at: number }> = [];
  let inFlight = 0;
  const key = (link: string, t: ProbeTarget) => `${link} ${t.kind === 'http' ? t.url : t.port}`;
  const prober: Prober = (link, target, { signal }) => {
    starts.push({ link: link.id, target: key(link.id, target), at: clock.now() });
    const b = behaviour.get(key(link.id, target)) ?? behaviour.get(link.id) ?? OK;
    inFlight++;
    return new Promise<ProbeOutcome>((resolve) => {
      const done = (o: ProbeOutcome) => {
        inFlight--;
        timers.clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(o);
      };
      const onAbort = () => done({ ok: false, reason: 'aborted' });
      signal.addEventListener('abort', onAbort, { once: true });
      const timer =
        b.answer === 'silent'
          ? timers.setTimeout(() => {}, 1e12)
          : timers.setTimeout(
              () => done(b.answer === 'ok' ? { ok: true } : { ok: false, reason: b.reason }),
              b.ms,
            );
    });
  };
  return {
    prober,
    starts,
    inFlight: () => inFlight,
    /** Sets how every target of `link` (or one target, when given) answers from now on. */
    set(link: string, b: Behaviour, target?: ProbeTarget) {
      if (target) behaviour.set(key(link, target), b);
      else {
        for (const k of [...behaviour.keys()]) if (k.startsWith(`${link} `)) behaviour.delete(k);
        behaviour.set(link, b);
      }
    },
  };
}
