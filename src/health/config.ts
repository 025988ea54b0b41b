/**
 * Health-check settings: types and defaults only (the daemon's zod schema in
 * src/config/schema.ts takes its defaults from here, so there is one truth).
 * Every field states its unit and default.
 *
 * Detection bound: the monitor (src/health/monitor.ts) re-probes at once after
 * a failed round ("fast re-probe"), so a link that silently drops its traffic is
 * offline at most max(interval, timeout) + failThreshold × timeout after the
 * break: 1 s + 3 × 0.5 s = 2.5 s with the defaults, inside the 3 s the proxy
 * promises (`detectionBoundMs` in monitor.ts). That is why the default timeout is
 * 500 ms: with 1 s it would be 4 s.
 * Passive signals (connect failures, stalls) mark the link degraded sooner,
 * which already moves new connections away while the probes confirm.
 *
 * Slow probes: slowRttMs (500) is not below the timeout (500), so by default a
 * probe is never "slow" and only failures move a link. On purpose: a link busy
 * with our own downloads answers probes slowly (its queue), and marking it
 * degraded would push traffic off exactly the links doing the work. Set
 * slowRttMs below timeoutMs to turn the check on.
 */
import { BlockList, isIP } from 'node:net';
import type { HealthThresholds } from './state-machine.js';
import { DEFAULT_THRESHOLDS } from './state-machine.js';

/** Where a probe goes, forced out of the link under test. */
export type ProbeTarget =
  /** A TCP connect to host:port; success = the handshake completed. Use IP literals to keep DNS out of it. */
  | { kind: 'tcp'; host: string; port: number }
  /** An HTTP GET of url; success = a response arrived before the timeout. */
  | { kind: 'http'; url: string }
  /**
   * One DNS query to the nameserver host:port (an IP address) through the link;
   * success = any reply, NXDOMAIN, SERVFAIL and REFUSED included: the server
   * answering proves the path, whatever it thinks of the question.
   */
  | { kind: 'dns'; host: string; port: number };

/** failThreshold (default 3), riseThreshold (default 2) and slowRttMs (default 500) come from HealthThresholds. */
export interface HealthConfig extends HealthThresholds {
  /** Time between two probes of one link, in ms. Default 1000. */
  intervalMs: number;
  /**
   * A probe not answered within this many ms counts as failed. Default 500: a TCP
   * handshake takes one RTT, and the detection bound grows by failThreshold × this.
   * Raise it for links slower than that at rest (satellite).
   */
  timeoutMs: number;
  /**
   * Probe targets. A probe round of a link succeeds when any target answers, so one
   * target being down does not take every link offline. Default:
   * `defaultProbeTargets(system nameservers)` (the daemon reads them at start);
   * without nameservers, the four public hosts alone.
   */
  targets: readonly ProbeTarget[];
}

/**
 * Public hosts of four operators, TCP 443 (any handshake counts), by IP
 * address so no DNS is needed: one operator's outage or one blocked address
 * leaves three, and a network must block them all before the monitor suspects
 * the targets (see suspicion.ts).
 */
const PUBLIC_TARGETS: readonly ProbeTarget[] = Object.freeze([
  { kind: 'tcp', host: '1.1.1.1', port: 443 }, // Cloudflare
  { kind: 'tcp', host: '8.8.8.8', port: 443 }, // Google
  { kind: 'tcp', host: '9.9.9.9', port: 443 }, // Quad9
  { kind: 'tcp', host: '208.67.222.222', port: 443 }, // Cisco OpenDNS
] as const);

/**
 * The default targets: the public hosts, plus a dns:// probe of each system
 * nameserver (from /etc/resolv.conf) that has a public address, such as an
 * ISP's resolver: a network that blocks the public hosts still answers it.
 *
 * Nameservers at loopback, private, shared (CGNAT), link-local or unique-local
 * addresses are left out on purpose. A reply from them proves the path to the
 * LAN, not the uplink behind it: a home router or a local unbound answers a
 * probe from its cache (or, for `.invalid`, by itself) while its WAN is dead,
 * and since any target answering makes a round succeed, such a target would
 * keep a dead link online, which is the failure linkmux exists to catch. Where
 * every public target is blocked and only a LAN resolver answers, the monitor
 * suspects the targets and keeps the links in service as unverified instead.
 * Duplicates are dropped; the order is kept. Pure.
 */
export function defaultProbeTargets(nameservers: readonly string[]): ProbeTarget[] {
  const out: ProbeTarget[] = PUBLIC_TARGETS.map((t) => ({ ...t }));
  const seen = new Set<string>();
  for (const raw of nameservers) {
    // resolv.conf may carry a zone id ("fe80::1%eth0"), which only link-local addresses need.
    const host = raw.trim().replace(/%.*$/, '');
    const family = isIP(host);
    if (family === 0 || seen.has(host) || NOT_BEYOND_THE_LAN.check(host, family === 4 ? 'ipv4' : 'ipv6')) {
      continue;
    }
    seen.add(host);
    out.push({ kind: 'dns', host, port: 53 });
  }
  return out;
}

/**
 * Addresses whose answer does not prove an uplink (a subset of the ranges in
 * proxy/ip-ranges.ts, which health may not import: it sits above). BlockList
 * matches IPv4-mapped IPv6 forms too.
 */
const NOT_BEYOND_THE_LAN = (() => {
  const list = new BlockList();
  for (const [net, prefix] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
  ] as const) {
    list.addSubnet(net, prefix, 'ipv4');
  }
  for (const [net, prefix] of [
    ['::', 127], // :: and ::1
    ['fc00::', 7],
    ['fe80::', 10],
  ] as const) {
    list.addSubnet(net, prefix, 'ipv6');
  }
  return list;
})();

export const DEFAULT_HEALTH_CONFIG: Readonly<HealthConfig> = Object.freeze({
  intervalMs: 1_000,
  timeoutMs: 500,
  ...DEFAULT_THRESHOLDS,
  targets: Object.freeze(defaultProbeTargets([])),
});

/** The defaults overlaid with whatever the caller set. */
export function withHealthDefaults(partial: Partial<HealthConfig> = {}): HealthConfig {
  return { ...DEFAULT_HEALTH_CONFIG, ...partial };
}
