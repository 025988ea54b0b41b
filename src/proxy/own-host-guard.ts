/**
 * No door into the host that runs linkmux, for clients that are not on it.
 *
 * - `nodeHostGuard`: what a node refuses on top of its destination policy:
 *   every address of every interface of the node's host (public uplink
 *   addresses included: a web server bound to 0.0.0.0 on the lending machine
 *   answers on them), unless `node.allow` names them. Unspecified (0.0.0.0,
 *   ::), loopback and their IPv4-mapped forms are refused by the policy's
 *   ranges already.
 * - `proxyHostGuard`: what `linkmux up` refuses to a client that is NOT on
 *   loopback: this host's loopback (127.0.0.0/8, ::1), the unspecified
 *   addresses (connecting to 0.0.0.0 reaches loopback on Linux) and this
 *   host's own interface addresses (a connection from the host to itself
 *   bypasses firewall rules keyed on the LAN source, and reaches services
 *   bound to addresses the LAN cannot route to). A config rule that names the
 *   destination (any action but deny) opens it. Loopback clients (the user on
 *   this machine) keep today's behaviour: they could connect themselves.
 *
 * Pure decisions over an injected `isOwn(ip)` (HostAddresses in production).
 */
import { canonicalIp } from '../net/address.js';
import { specialAddressKind } from '../net/ip-ranges.js';

export type GuardVerdict = { allowed: true } | { allowed: false; reason: string };

const ALLOWED: GuardVerdict = { allowed: true };

/**
 * Answers by address text, remembered: the guard asks about the client's
 * address on every connection, and parsing it costs more than the rest of the
 * check. Bounded: cleared when full (a pure function of the text, so a miss is
 * only slower).
 */
const seen = new Map<string, boolean>();
const SEEN_MAX = 4096;

/** True for 127.0.0.0/8, ::1, 0.0.0.0/8, :: and their other spellings (IPv4-mapped included). */
export function isLoopbackOrUnspecified(ip: string): boolean {
  let answer = seen.get(ip);
  if (answer === undefined) {
    if (seen.size >= SEEN_MAX) seen.clear();
    seen.set(ip, (answer = classify(ip)));
  }
  return answer;
}

function classify(ip: string): boolean {
  const c = canonicalIp(ip);
  if (!c) return false;
  const kind = specialAddressKind(c);
  // 0.0.0.0/8 and ::a.b.c.d as well: some stacks route them to the host itself.
  return (
    kind === 'loopback' || kind === 'unspecified' || kind === 'this-network' || kind === 'ipv4-compatible'
  );
}

/**
 * The node's own-host check. `allowed(ip)` is true when node.allow names the
 * address; `isOwn(ip)` when it is an address of this host.
 */
export function nodeHostGuard(
  ip: string,
  isOwn: (ip: string) => boolean,
  allowed: (ip: string) => boolean,
): GuardVerdict {
  if (!isOwn(ip) || allowed(ip)) return ALLOWED;
  return {
    allowed: false,
    reason: `${ip} is an address of this node's own host; add it to node.allow to open it`,
  };
}

/**
 * The proxy's own-host check for one client. `clientIp` undefined (unknown)
 * counts as not loopback: failing closed. `ruleNamed` is true when a config
 * rule (other than deny) matched the destination explicitly.
 */
export function proxyHostGuard(
  ip: string,
  clientIp: string | undefined,
  isOwn: (ip: string) => boolean,
  ruleNamed: boolean,
): GuardVerdict {
  if (ruleNamed) return ALLOWED;
  if (clientIp !== undefined && isLoopbackOrUnspecified(clientIp)) return ALLOWED;
  if (isLoopbackOrUnspecified(ip)) {
    return {
      allowed: false,
      reason: `${ip} is this host's loopback, refused to a client from another machine; a rule naming it opens it`,
    };
  }
  if (isOwn(ip)) {
    return {
      allowed: false,
      reason: `${ip} is an address of this host, refused to a client from another machine; a rule naming it opens it`,
    };
  }
  return ALLOWED;
}
