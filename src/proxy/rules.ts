/**
 * Where a proxied connection goes, decided before any socket is opened: pure
 * matching of a destination (name, resolved IP, port) against the configured
 * rules. The first rule whose every given field matches wins; then, when
 * `privateDirect` is on, loopback/private/link-local destinations go direct
 * (the LAN is not reached through an uplink); everything else uses the policy.
 */
import { BlockList, isIP } from 'node:net';
import { LinkmuxError } from '../util/errors.js';
import { parseCidr } from '../net/address.js';
import { cidrBlockList, specialRangesList } from '../net/ip-ranges.js';

export interface RuleMatch {
  /** ".example.org" matches example.org and every subdomain; "example.org" only that name. */
  domain?: string;
  /** IPv4 or IPv6 network, "10.0.0.0/8". */
  cidr?: string;
  /** A port or an inclusive range "8000-8999". */
  port?: number | string;
}

export type RuleAction = 'direct' | 'deny' | `link:${string}` | `policy:${string}`;

export interface Rule {
  match: RuleMatch;
  action: RuleAction;
}

export type Route =
  | { kind: 'direct'; reason: string }
  | { kind: 'deny'; reason: string }
  | { kind: 'link'; link: string; reason: string }
  | { kind: 'policy'; policy?: string; reason: string };

export interface RouteQuery {
  /** The name the client asked for, when it gave one. */
  name?: string;
  /**
   * The resolved (or given) IP address; undefined when a name goes unresolved
   * to a link that resolves it on the far side (then no cidr rule matches).
   */
  ip?: string | undefined;
  port: number;
}

interface CompiledRule {
  index: number;
  rule: Rule;
  domain?: { suffix: boolean; name: string };
  cidr?: BlockList;
  ports?: [number, number];
}

// The LAN: what a connection reaches without any uplink (RFC 1918, CGNAT, loopback, link-local, ULA, 0/8).
const privateList = specialRangesList([
  'this-network',
  'private',
  'shared',
  'loopback',
  'link-local',
  'unique-local',
]);

/** Loopback, RFC 1918, CGNAT, link-local and their IPv6 counterparts (IPv4-mapped included). */
export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return privateList.check(ip, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    if (mapped?.[1]) return privateList.check(mapped[1], 'ipv4');
    return privateList.check(ip, 'ipv6');
  }
  return false;
}

export class RuleSet {
  private readonly compiled: CompiledRule[];

  constructor(
    rules: readonly Rule[],
    private readonly privateDirect = true,
  ) {
    this.compiled = rules.map((rule, index) => compile(rule, index));
  }

  /** True when some rule matches on addresses, so a name must be resolved here to be judged. */
  get matchesAddresses(): boolean {
    return this.compiled.some((c) => c.cidr !== undefined);
  }

  route(q: RouteQuery): Route {
    for (const c of this.compiled) {
      if (matches(c, q)) return toRoute(c.rule.action, `rule ${c.index + 1}`);
    }
    if (this.privateDirect && ((q.ip !== undefined && isPrivateAddress(q.ip)) || q.name === 'localhost')) {
      return { kind: 'direct', reason: 'private destination' };
    }
    return { kind: 'policy', reason: 'default' };
  }
}

function compile(rule: Rule, index: number): CompiledRule {
  const where = `rules[${index}]`;
  const out: CompiledRule = { index, rule };
  const m = rule.match;
  if (m.domain !== undefined) {
    const d = m.domain.trim().toLowerCase();
    if (!/^\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/.test(d)) {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONFIG',
        `${where}.match.domain: "${m.domain}" is not a domain name`,
      );
    }
    out.domain = { suffix: d.startsWith('.'), name: d.replace(/^\./, '').replace(/\.$/, '') };
  }
  if (m.cidr !== undefined) {
    const cidr = parseCidr(m.cidr);
    if (!cidr) {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONFIG',
        `${where}.match.cidr: "${m.cidr}" is not a network like 10.0.0.0/8`,
      );
    }
    out.cidr = cidrBlockList(cidr);
  }
  if (m.port !== undefined) {
    const text = String(m.port);
    const r = /^(\d+)(?:-(\d+))?$/.exec(text);
    const lo = Number(r?.[1]);
    const hi = Number(r?.[2] ?? r?.[1]);
    if (!r || lo < 1 || hi > 65535 || lo > hi) {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONFIG',
        `${where}.match.port: "${text}" is not a port or a range like 8000-8999`,
      );
    }
    out.ports = [lo, hi];
  }
  if (!out.domain && !out.cidr && !out.ports) {
    throw new LinkmuxError('LINKMUX_ERR_CONFIG', `${where}.match: give at least one of domain, cidr, port`);
  }
  toRoute(rule.action, where);
  return out;
}

function matches(c: CompiledRule, q: RouteQuery): boolean {
  if (c.domain) {
    const name = q.name?.toLowerCase().replace(/\.$/, '');
    if (!name) return false;
    const exact = name === c.domain.name;
    if (!(exact || (c.domain.suffix && name.endsWith(`.${c.domain.name}`)))) return false;
  }
  if (c.cidr) {
    const family = q.ip === undefined ? 0 : isIP(q.ip);
    if (!family || !c.cidr.check(q.ip as string, family === 4 ? 'ipv4' : 'ipv6')) return false;
  }
  if (c.ports && (q.port < c.ports[0] || q.port > c.ports[1])) return false;
  return true;
}

function toRoute(action: RuleAction, reason: string): Route {
  if (action === 'direct') return { kind: 'direct', reason };
  if (action === 'deny') return { kind: 'deny', reason };
  if (action.startsWith('link:') && action.length > 5) return { kind: 'link', link: action.slice(5), reason };
  if (action.startsWith('policy:') && action.length > 7)
    return { kind: 'policy', policy: action.slice(7), reason };
  throw new LinkmuxError(
    'LINKMUX_ERR_CONFIG',
    `${reason}: action "${action}" is not one of direct, deny, link:<id>, policy:<name>`,
  );
}
