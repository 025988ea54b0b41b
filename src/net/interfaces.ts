/**
 * Discovers this machine's network interfaces and their default routes.
 *
 * On Linux the truth comes from `ip -j addr show` and the main table's default
 * routes (`ip -j route show default`, IPv4, and `ip -j -6 route show default`), parsed by
 * the pure functions below; an interface without one may still have a default
 * route in a policy table that an `ip rule from ADDR` selects (see
 * policy-default-routes.ts: read only when some interface lacks a main one). Elsewhere Node's `os.networkInterfaces()` is all we
 * have: addresses but no gateway, so usability cannot check for a default route.
 *
 * Guarantees: link-local addresses (fe80::/10, 169.254.0.0/16) never appear in
 * `addresses` (they cannot reach the internet and cannot be a link's source);
 * `metric` is set exactly when the interface carries a default route in the main
 * table, or else in a policy table selecting its address (then `policyRoute` says
 * which), with `gateway` when that route has one (a point-to-point default route
 * has none); main wins when both exist. When an interface has several default routes, the IPv4 one with the
 * lowest metric wins, then IPv6.
 */
import os from 'node:os';
import { LinkmuxError, describe } from '../util/errors.js';
import type { Runner } from '../util/runner.js';
import type { DefaultRoute, InterfaceAddress, NetInterface } from './interfaces-types.js';
import { isLinkLocal } from './link-local.js';
import {
  attachPolicyDefaultRoutes,
  policyCandidates,
  ruleShowArgs,
  tableDefaultArgs,
  tableKey,
  tablesToRead,
} from './policy-default-routes.js';
import { parseIpRules } from '../routing/reader.js';

/** One default route of the main table, as `ip -j route show default` lists it. */
export type { DefaultRoute } from './interfaces-types.js';

export async function discoverInterfaces(
  runner: Runner,
  platform: NodeJS.Platform = process.platform,
): Promise<NetInterface[]> {
  if (platform !== 'linux') return fromNodeInterfaces(os.networkInterfaces());
  // The three queries are independent: run at once, they cost one `ip` run of wall time, not three.
  const [addrs, v4, v6] = await Promise.all([
    runner.run('ip', ['-j', 'addr', 'show']),
    runner.run('ip', ['-j', 'route', 'show', 'default']),
    // A kernel booted with IPv6 disabled makes the -6 query fail: no IPv6 routes then.
    runner.run('ip', ['-j', '-6', 'route', 'show', 'default']).catch(() => ({ stdout: '[]' })),
  ]);
  const routes = [...parseDefaultRoutes(v4.stdout, 4), ...parseDefaultRoutes(v6.stdout, 6)];
  return readPolicyDefaultRoutes(runner, attachDefaultRoutes(parseIpAddr(addrs.stdout), routes));
}

/**
 * For interfaces without a main-table default route: reads the ip rules and the
 * default routes of the tables they select (policy-default-routes.ts decides).
 * Runs nothing when no interface needs it. Rules of a family that cannot be read
 * (IPv6 disabled) and tables that do not exist (ip fails) contribute nothing.
 */
async function readPolicyDefaultRoutes(runner: Runner, interfaces: NetInterface[]): Promise<NetInterface[]> {
  if (policyCandidates(interfaces).length === 0) return interfaces;
  const read = (args: string[]) => runner.run('ip', args).then((r) => r.stdout);
  const [rules4, rules6] = await Promise.all([
    read(ruleShowArgs(4)).catch(() => '[]'),
    read(ruleShowArgs(6)).catch(() => '[]'),
  ]);
  const rules = [...parseIpRules(rules4, 4), ...parseIpRules(rules6, 6)];
  const wanted = tablesToRead(interfaces, rules);
  const outputs = await Promise.all(wanted.map((t) => read(tableDefaultArgs(t)).catch(() => '[]')));
  const tables = new Map<string, DefaultRoute[]>();
  wanted.forEach((t, i) => tables.set(tableKey(t), parseDefaultRoutes(outputs[i] ?? '[]', t.family)));
  return attachPolicyDefaultRoutes(interfaces, rules, tables);
}

interface IpAddrInfo {
  family?: unknown;
  local?: unknown;
  prefixlen?: unknown;
  scope?: unknown;
  dadfailed?: unknown;
}

interface IpLink {
  ifname?: unknown;
  flags?: unknown;
  operstate?: unknown;
  link_type?: unknown;
  addr_info?: unknown;
}

/** Parses `ip -j addr show`. Throws LINKMUX_ERR_COMMAND_FAILED on output that is not ip's JSON. */
export function parseIpAddr(json: string): NetInterface[] {
  const links = parseJsonArray(json, 'ip -j addr show') as IpLink[];
  const out: NetInterface[] = [];
  for (const link of links) {
    if (typeof link?.ifname !== 'string') continue;
    const flags = Array.isArray(link.flags) ? link.flags.map(String) : [];
    const state = typeof link.operstate === 'string' ? link.operstate : 'UNKNOWN';
    const addresses: InterfaceAddress[] = [];
    for (const info of (Array.isArray(link.addr_info) ? link.addr_info : []) as IpAddrInfo[]) {
      const family = info.family === 'inet' ? 4 : info.family === 'inet6' ? 6 : undefined;
      if (family === undefined || typeof info.local !== 'string' || typeof info.prefixlen !== 'number')
        continue;
      if (info.scope === 'link' || info.dadfailed === true || isLinkLocal(info.local)) continue;
      addresses.push({ address: info.local, family, prefixLength: info.prefixlen });
    }
    out.push({
      name: link.ifname,
      // Administratively up AND carrier present; loopback and tun devices report UNKNOWN.
      up: flags.includes('UP') && !flags.includes('NO-CARRIER') && (state === 'UP' || state === 'UNKNOWN'),
      loopback: flags.includes('LOOPBACK') || link.link_type === 'loopback',
      addresses,
    });
  }
  return out;
}

interface IpRoute {
  dst?: unknown;
  type?: unknown;
  dev?: unknown;
  gateway?: unknown;
  metric?: unknown;
  nexthops?: unknown;
}

/**
 * Parses `ip -j [-6] route show default`. A multipath route yields one entry
 * per next hop, each with the route's metric. Non-unicast routes (unreachable,
 * blackhole, prohibit) are not ways out and are dropped.
 */
export function parseDefaultRoutes(json: string, family?: 4 | 6): DefaultRoute[] {
  const routes = parseJsonArray(json, 'ip -j route show default') as IpRoute[];
  const out: DefaultRoute[] = [];
  for (const route of routes) {
    if (route?.dst !== 'default' || (route.type !== undefined && route.type !== 'unicast')) continue;
    const metric = typeof route.metric === 'number' ? route.metric : 0;
    const hops = Array.isArray(route.nexthops) ? (route.nexthops as IpRoute[]) : [route];
    for (const hop of hops) {
      if (typeof hop?.dev !== 'string') continue;
      const gateway = typeof hop.gateway === 'string' ? hop.gateway : undefined;
      const fam = family ?? (gateway?.includes(':') ? 6 : 4);
      out.push({ dev: hop.dev, family: fam, metric, ...(gateway ? { gateway } : {}) });
    }
  }
  return out;
}

/** Sets `gateway`/`metric` from the best default route of each interface (IPv4 first, then lowest metric). */
export function attachDefaultRoutes(interfaces: NetInterface[], routes: DefaultRoute[]): NetInterface[] {
  return interfaces.map((iface) => {
    const best = routes
      .filter((r) => r.dev === iface.name)
      .sort((a, b) => a.family - b.family || a.metric - b.metric)[0];
    if (!best) return iface;
    return { ...iface, metric: best.metric, ...(best.gateway ? { gateway: best.gateway } : {}) };
  });
}

/** Converts `os.networkInterfaces()` (no gateway or metric known). */
export function fromNodeInterfaces(map: NodeJS.Dict<os.NetworkInterfaceInfo[]>): NetInterface[] {
  const out: NetInterface[] = [];
  for (const [name, infos = []] of Object.entries(map)) {
    const addresses: InterfaceAddress[] = [];
    for (const info of infos) {
      // Node 18.0-18.3 reported the family as a number; later versions as 'IPv4'/'IPv6'.
      const family = String(info.family) === 'IPv6' || String(info.family) === '6' ? 6 : 4;
      if (isLinkLocal(info.address)) continue;
      const prefixLength = Number(info.cidr?.split('/')[1] ?? (family === 4 ? 32 : 128));
      addresses.push({ address: info.address, family, prefixLength });
    }
    // Node lists only configured interfaces and does not expose their state.
    out.push({ name, up: true, loopback: infos.some((i) => i.internal), addresses });
  }
  return out;
}

/**
 * Why an interface cannot serve as an uplink, or undefined when it can: up, not
 * loopback, a non-link-local address and (on Linux, where routes are known) a
 * default route.
 */
export function uplinkProblem(
  iface: NetInterface,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  if (iface.loopback) return 'loopback';
  if (!iface.up) return 'down';
  if (!iface.addresses.some((a) => !isLinkLocal(a.address))) return 'no address';
  if (platform === 'linux' && iface.metric === undefined) return 'no default route';
  return undefined;
}

export function isUsableUplink(iface: NetInterface, platform: NodeJS.Platform = process.platform): boolean {
  return uplinkProblem(iface, platform) === undefined;
}

function parseJsonArray(json: string, what: string): unknown[] {
  let value: unknown;
  try {
    value = json.trim() === '' ? [] : JSON.parse(json);
  } catch (err) {
    throw new LinkmuxError(
      'LINKMUX_ERR_COMMAND_FAILED',
      `\`${what}\` printed output that is not JSON (${describe(err)}): install iproute2 4.14 or newer`,
      { cause: err },
    );
  }
  if (!Array.isArray(value)) {
    throw new LinkmuxError(
      'LINKMUX_ERR_COMMAND_FAILED',
      `\`${what}\` printed JSON that is not a list: install iproute2 4.14 or newer`,
    );
  }
  return value;
}
