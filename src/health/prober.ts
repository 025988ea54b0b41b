/**
 * Active probes, each forced out of one link: a TCP connect through
 * `link.connect` (success = handshake done), an HTTP GET through an undici
 * Agent whose connections use the link (success = any response status, since
 * a 404 or 503 still proves the path works), or one DNS query to a nameserver
 * through the link (success = any reply that answers the query: NXDOMAIN,
 * SERVFAIL and REFUSED prove the path as well as an answer does). `probeRound` runs one round over
 * every target in parallel: it succeeds as soon as any target answers, fails
 * when all have failed or the timeout has passed, and always settles by the
 * deadline, whatever the prober does — a prober that ignores its signal cannot
 * stall the monitor. Losers are aborted so no probe socket outlives its round.
 *
 * RTT is measured by the round with the injected clock, from start to the first
 * answer: one round trip for a TCP target, two (three or more with TLS) for an
 * HTTP one, which is worth knowing when setting `slowRttMs`.
 */
import type { Link } from '../links/link.js';
import { createLinkAgent } from '../links/link-agent.js';
import type { TlsOptions } from '../links/link-agent.js';
import type { Clock } from '../util/clock.js';
import { LinkmuxError, describe, systemCode } from '../util/errors.js';
import { VERSION } from '../version.js';
import { queryThroughLink } from '../dns/link-query.js';
import type { Question } from '../dns/message.js';
import type { ProbeTarget } from './config.js';
import { formatProbeTarget } from './probe-target.js';
import type { Timers } from './timers.js';

export interface ProbeOptions {
  /** The probe must give up after this many ms. */
  timeoutMs: number;
  /** Aborted when the round is over (another target answered, the deadline passed, or the monitor stopped). */
  signal: AbortSignal;
}

export type ProbeOutcome = { ok: true } | { ok: false; reason: string };

/**
 * Probes one target through one link. Should resolve (not reject) with a short
 * failure reason ("timeout", "refused" …); a rejection is turned into a failure.
 */
export type Prober = (link: Link, target: ProbeTarget, opts: ProbeOptions) => Promise<ProbeOutcome>;

/** TCP: connect through the link, then close at once (no byte is sent). */
export async function probeTcp(
  link: Link,
  target: Extract<ProbeTarget, { kind: 'tcp' }>,
  opts: ProbeOptions,
): Promise<ProbeOutcome> {
  try {
    const socket = await link.connect(
      { host: target.host, port: target.port },
      { timeoutMs: opts.timeoutMs, signal: opts.signal },
    );
    socket.destroy();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: failureReason(err) };
  }
}

/** HTTP(S): GET through a throwaway Agent on the link; any status is a success, the body is not read. */
export async function probeHttp(
  link: Link,
  target: Extract<ProbeTarget, { kind: 'http' }>,
  opts: ProbeOptions,
  tls: TlsOptions = {},
): Promise<ProbeOutcome> {
  // A fresh agent per probe: reusing a kept-alive connection would not test that
  // the link can still open connections, which is what the proxy needs from it.
  const agent = createLinkAgent(link, { connectTimeoutMs: opts.timeoutMs, tls, signal: opts.signal });
  try {
    const url = new URL(target.url);
    // agent.request, not undici's request(): the index costs start-up time (see undici-core.ts).
    const res = await agent.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      signal: opts.signal,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      headers: { 'user-agent': `linkmux/${VERSION} (health probe)` },
    });
    res.body.on('error', () => {});
    res.body.destroy();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: failureReason(err) };
  } finally {
    agent.destroy().catch(() => {});
  }
}

/**
 * The question of a DNS probe: a name under `.invalid`, which RFC 6761 reserves
 * and tells resolvers to answer NXDOMAIN themselves. So the reply is quick and
 * the same on every network, the resolver sends nothing upstream on our behalf
 * (what is probed is the path to it, not its own uplink), and no real name is
 * looked up once a second.
 */
export const DNS_PROBE_QUESTION: Readonly<Question> = Object.freeze({
  name: 'linkmux-health-probe.invalid',
  type: 'A',
});

/**
 * DNS: one query through the link (UDP from a socket the link opened; TCP only
 * if the reply is truncated). Rounds never give it a link without UDP
 * (`probeRound` reads the capability); a direct caller that does gets a
 * failure saying so at once.
 */
export async function probeDns(
  link: Link,
  target: Extract<ProbeTarget, { kind: 'dns' }>,
  opts: ProbeOptions,
): Promise<ProbeOutcome> {
  if (!link.capabilities.udp) return { ok: false, reason: 'link carries no UDP' };
  // The round aborts its signal at its deadline; this one is the probe's own, for direct callers.
  const signal = AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]);
  try {
    await queryThroughLink(link, { address: target.host, port: target.port }, DNS_PROBE_QUESTION, signal);
    return { ok: true };
  } catch (err) {
    if (signal.aborted && !opts.signal.aborted) return { ok: false, reason: 'timeout' };
    return { ok: false, reason: failureReason(err) };
  }
}

/** The real prober: TCP, HTTP or DNS by the target's kind. */
export function createProber(tls: TlsOptions = {}): Prober {
  return (link, target, opts) => {
    switch (target.kind) {
      case 'tcp':
        return probeTcp(link, target, opts);
      case 'dns':
        return probeDns(link, target, opts);
      case 'http':
        return probeHttp(link, target, opts, tls);
    }
  };
}

export const defaultProber: Prober = createProber();

/** The reason of a probe that failed because this process had no descriptor left: never the link's fault. */
export const OUT_OF_DESCRIPTORS = 'out of file descriptors (this process, not the link)';

/** A short reason for logs and status: "timeout", "refused", "unreachable" …, else the error's text. */
export function failureReason(err: unknown): string {
  if (err instanceof LinkmuxError) {
    if (err.code === 'LINKMUX_ERR_TIMEOUT') return 'timeout';
    if (err.code === 'LINKMUX_ERR_REFUSED') return 'refused';
    if (err.code === 'LINKMUX_ERR_UNREACHABLE') return 'unreachable';
    if (err.code === 'LINKMUX_ERR_ABORTED') return 'aborted';
    if (err.code === 'LINKMUX_ERR_DNS') return 'dns failed';
    if (err.code === 'LINKMUX_ERR_BIND_FAILED') return 'cannot bind to the link';
    if (err.code === 'LINKMUX_ERR_NO_DESCRIPTORS') return OUT_OF_DESCRIPTORS;
  }
  const code = systemCode(err instanceof LinkmuxError ? err.cause : err) ?? systemCode(err);
  switch (code) {
    case 'EMFILE':
    case 'ENFILE':
      return OUT_OF_DESCRIPTORS;
    case 'ECONNREFUSED':
      return 'refused';
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return 'unreachable';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'reset';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'timeout';
    case 'EADDRNOTAVAIL':
      return 'link address gone';
    case 'ABORT_ERR':
    case 'UND_ERR_ABORTED':
      return 'aborted';
  }
  if (code && /CERT|SSL|TLS/.test(code)) return `tls: ${code}`;
  const text = describe(err);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

export interface RoundOptions {
  prober: Prober;
  clock: Clock;
  timers: Timers;
  timeoutMs: number;
  /** Ends the round at once (the monitor stopped). */
  signal?: AbortSignal;
}

export type RoundResult =
  | { ok: true; rttMs: number; /** The target that answered first. */ target: string }
  | {
      ok: false;
      reason: string;
      /** True when the round was cut short by the caller's signal. */ aborted?: true;
      /** True when a probe failed for lack of descriptors here: the round says nothing about the link. */
      local?: true;
    };

/**
 * One probe round: every target the link can carry at once (a dns target needs
 * `capabilities.udp`: relays are probed by their tcp and http targets); the
 * first answer wins. Never rejects.
 */
export function probeRound(
  link: Link,
  allTargets: readonly ProbeTarget[],
  opts: RoundOptions,
): Promise<RoundResult> {
  if (allTargets.length === 0) return Promise.resolve({ ok: false, reason: 'no probe targets' });
  const targets = allTargets.filter((t) => t.kind !== 'dns' || link.capabilities.udp);
  if (targets.length === 0) {
    return Promise.resolve({
      ok: false,
      reason: 'only dns probe targets, and this link carries no UDP: add a tcp or http target',
    });
  }
  const { clock, timers, timeoutMs, signal } = opts;
  const start = clock.now();
  const cancel = new AbortController();
  const reasons: Array<string | undefined> = targets.map(() => undefined);
  let remaining = targets.length;

  return new Promise<RoundResult>((resolve) => {
    let settled = false;
    const finish = (result: RoundResult) => {
      if (settled) return;
      settled = true;
      timers.clearTimeout(deadline);
      signal?.removeEventListener('abort', onAbort);
      cancel.abort(new LinkmuxError('LINKMUX_ERR_ABORTED', `probe round of link ${link.id} is over`));
      resolve(result);
    };
    const failed = (): RoundResult => ({
      ok: false,
      reason: combineReasons(targets, reasons),
      ...(reasons.includes(OUT_OF_DESCRIPTORS) ? { local: true as const } : {}),
    });
    const onAbort = () => finish({ ok: false, reason: 'aborted', aborted: true });
    const deadline = timers.setTimeout(() => {
      for (let i = 0; i < reasons.length; i++) reasons[i] ??= 'timeout';
      finish(failed());
    }, timeoutMs);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });

    targets.forEach((target, i) => {
      let pending: Promise<ProbeOutcome>;
      try {
        pending = opts.prober(link, target, { timeoutMs, signal: cancel.signal });
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending
        .catch((err: unknown): ProbeOutcome => ({ ok: false, reason: failureReason(err) }))
        .then((outcome) => {
          if (settled) return;
          if (outcome.ok) {
            finish({ ok: true, rttMs: clock.now() - start, target: formatProbeTarget(target) });
            return;
          }
          reasons[i] = outcome.reason;
          if (--remaining === 0) finish(failed());
        });
    });
  });
}

/** "timeout" when every target failed the same way, else "tcp://a:443 timeout; tcp://b:443 refused". */
function combineReasons(targets: readonly ProbeTarget[], reasons: ReadonlyArray<string | undefined>): string {
  const distinct = new Set(reasons);
  if (distinct.size === 1) return reasons[0] ?? 'failed';
  return targets.map((t, i) => `${formatProbeTarget(t)} ${reasons[i] ?? 'failed'}`).join('; ');
}
