/**
 * The gateway's policy routing: per uplink a routing table (default via its
 * gateway) and ip rules that send its marked connections and its own address
 * there; the `ip` arguments that set them; and reading and diffing what the
 * kernel holds, so applying changes only what differs (the same plan twice:
 * nothing) and a cleanup after a crash removes linkmux's rules whatever the
 * old config was.
 *
 * Rules, per family present (numbers from plan.ts):
 *   priority          lookup main suppress_prefixlength 0   LAN and other specific routes first
 *   priority + 1 + 2i fwmark MARK/FWMASK lookup TABLE        connections nft placed on uplink i
 *   priority + 2 + 2i from ADDRESS lookup TABLE              the uplink's own traffic (probes)
 * FWMASK is markMask plus the low byte that holds i + 1: with markMask alone
 * (0x4c01/0xff00) every linkmux mark would match uplink 0's rule.
 *
 * Ownership: a kernel rule is linkmux's when its priority is within
 * priority … priority + 2 × MAX_GATEWAY_UPLINKS and it looks up one of the tables
 * tableBase + 1 … tableBase + MAX_GATEWAY_UPLINKS, or it is the suppress rule
 * at exactly `priority` — and it has no selector or action linkmux never sets
 * (not, iif, to, ipproto, goto …). Nothing else is ever deleted.
 *
 * Read the kernel with ipRuleShowArgs (`ip -j -N`): numeric table ids, so a
 * name given to table 4201 in rt_tables cannot hide it.
 */
import { isIP } from 'node:net';
import { LinkmuxError } from '../util/errors.js';
import { networkOf, parseArray } from '../net/policy-routing.js';
import { MAX_GATEWAY_UPLINKS, hex, type GatewayNumbers, type GatewayPlan } from './plan.js';

export interface IpRuleSpec {
  priority: number;
  family: 4 | 6;
  table: number | 'main';
  fwmark?: { mark: number; mask: number };
  /** An address (a /32 or /128) or "address/prefix". */
  from?: string;
  suppressPrefixLength?: number;
}

export interface RouteSpec {
  family: 4 | 6;
  table: number;
  dev: string;
  gateway: string;
}

/** A rule as `ip -j rule show` prints it, normalised (hex marks, "main" for 254). */
export interface KernelRule {
  priority: number;
  family: 4 | 6;
  /** "main", "local", "default" or a decimal id; "" when the rule looks up no table (goto, unreachable …). */
  table: string;
  /** "0x4c01". */
  fwmark?: string;
  /** "0xffff"; "0xffffffff" when ip printed none (all bits compared). */
  fwmask?: string;
  /** Source address; undefined for "from all". */
  src?: string;
  /** Source prefix length; the host length when ip printed none. */
  srclen?: number;
  suppressPrefixLength?: number;
  /** JSON keys of selectors and actions linkmux never sets (not, iif, dst, goto …): such a rule is never linkmux's. */
  otherKeys?: string[];
  raw: unknown;
}

/** The mask of the fwmark rules: linkmux's tag bits (markMask) and the low byte holding the uplink index. */
export function fwmarkMask(numbers: GatewayNumbers): number {
  return (numbers.markMask | 0xff) >>> 0;
}

/** `ip` arguments that print a family's rules as JSON with numeric table ids. */
export function ipRuleShowArgs(family: 4 | 6): string[] {
  return ['-j', '-N', `-${family}`, 'rule', 'show'];
}

/** Pure: the rules the plan wants, family 4 then 6, each by priority. */
export function planIpRules(plan: GatewayPlan): IpRuleSpec[] {
  const { numbers } = plan;
  const perUplink: IpRuleSpec[] = [];
  for (const u of plan.uplinks) {
    perUplink.push({
      priority: u.priorities[0],
      family: familyOf(u.gateway, `uplink ${u.name}: gateway`),
      table: u.table,
      fwmark: { mark: u.mark, mask: fwmarkMask(numbers) },
    });
    if (u.address !== undefined) {
      perUplink.push({
        priority: u.priorities[1],
        family: familyOf(u.address.split('/')[0] ?? '', `uplink ${u.name}: address`),
        table: u.table,
        from: u.address,
      });
    }
  }
  const out: IpRuleSpec[] = [];
  for (const family of [4, 6] as const) {
    const mine = perUplink.filter((r) => r.family === family);
    if (mine.length === 0) continue;
    out.push({ priority: numbers.priority, family, table: 'main', suppressPrefixLength: 0 });
    out.push(...mine.sort((a, b) => a.priority - b.priority));
  }
  return out;
}

export function ipRuleArgs(rule: IpRuleSpec, op: 'add' | 'del'): string[] {
  return [
    `-${rule.family}`,
    'rule',
    op,
    'priority',
    String(rule.priority),
    ...(rule.from !== undefined ? ['from', rule.from] : []),
    ...(rule.fwmark ? ['fwmark', `${hex(rule.fwmark.mark)}/${hex(rule.fwmark.mask >>> 0)}`] : []),
    'lookup',
    String(rule.table),
    ...(rule.suppressPrefixLength !== undefined
      ? ['suppress_prefixlength', String(rule.suppressPrefixLength)]
      : []),
  ];
}

/** Pure: one default route per uplink, in its own table, in the family of its gateway. */
export function planRoutes(plan: GatewayPlan): RouteSpec[] {
  return plan.uplinks.map((u) => ({
    family: familyOf(u.gateway, `uplink ${u.name}: gateway`),
    table: u.table,
    dev: u.dev,
    gateway: u.gateway,
  }));
}

/** `replace`: the same route twice changes nothing, a changed gateway overwrites the old one. */
export function routeArgs(r: RouteSpec): string[] {
  return [
    `-${r.family}`,
    'route',
    'replace',
    'default',
    'via',
    r.gateway,
    'dev',
    r.dev,
    'table',
    String(r.table),
  ];
}

/** Keys of `ip -j rule show` objects that linkmux's own rules can carry. */
const OWN_KEYS = new Set([
  'priority',
  'src',
  'srclen',
  'fwmark',
  'fwmask',
  'table',
  'suppress_prefixlen',
  'protocol',
]);

const TABLE_NAMES: Record<string, string> = { '253': 'default', '254': 'main', '255': 'local' };

/** Parses `ip -j -4 rule show` / `ip -j -6 rule show` (iproute2 ≥ 4.14; with or without -N). */
export function parseIpRules(json: string, family: 4 | 6): KernelRule[] {
  const out: KernelRule[] = [];
  for (const raw of parseArray(json)) {
    if (typeof raw !== 'object' || raw === null) continue;
    const r = raw as Record<string, unknown>;
    const priority = typeof r.priority === 'number' ? r.priority : 0;
    const rule: KernelRule = { priority, family, table: tableName(r.table), raw };
    const mark = parseMark(r.fwmark);
    if (mark !== undefined) {
      rule.fwmark = hex(mark);
      rule.fwmask = hex(parseMark(r.fwmask) ?? 0xffffffff);
    }
    if (typeof r.src === 'string' && r.src !== 'all') {
      rule.src = r.src;
      rule.srclen = typeof r.srclen === 'number' ? r.srclen : family === 4 ? 32 : 128;
    }
    if (typeof r.suppress_prefixlen === 'number') rule.suppressPrefixLength = r.suppress_prefixlen;
    const other = Object.keys(r).filter((k) => !OWN_KEYS.has(k));
    if (other.length > 0) rule.otherKeys = other;
    out.push(rule);
  }
  return out;
}

export function isOwnedRule(r: KernelRule, numbers: GatewayNumbers): boolean {
  if (r.otherKeys !== undefined && r.otherKeys.length > 0) return false;
  if (r.priority < numbers.priority || r.priority > numbers.priority + 2 * MAX_GATEWAY_UPLINKS) return false;
  const table = /^\d+$/.test(r.table) ? Number(r.table) : undefined;
  if (table !== undefined) {
    return table > numbers.tableBase && table <= numbers.tableBase + MAX_GATEWAY_UPLINKS;
  }
  return (
    r.table === 'main' &&
    r.suppressPrefixLength === 0 &&
    r.priority === numbers.priority &&
    r.src === undefined &&
    r.fwmark === undefined
  );
}

/**
 * Pure: what to add and what to delete so the kernel holds exactly `desired` of
 * linkmux's rules. Rules are matched one to one, so a duplicate is deleted.
 * Run the adds first: a rule and its replacement are then never both missing.
 */
export function diffRules(
  current: readonly KernelRule[],
  desired: readonly IpRuleSpec[],
  numbers: GatewayNumbers,
): { add: IpRuleSpec[]; del: KernelRule[] } {
  const add = [...desired];
  const del: KernelRule[] = [];
  for (const c of current) {
    if (!isOwnedRule(c, numbers)) continue;
    const key = kernelKey(c);
    const i = add.findIndex((d) => specKey(d) === key);
    if (i >= 0) add.splice(i, 1);
    else del.push(c);
  }
  return { add, del };
}

/** Deletes exactly that rule: the kernel deletes the first rule matching every selector given. */
export function kernelRuleArgs(r: KernelRule, op: 'del'): string[] {
  return [
    `-${r.family}`,
    'rule',
    op,
    'priority',
    String(r.priority),
    ...(r.src !== undefined ? ['from', `${r.src}/${r.srclen ?? hostLength(r.family)}`] : []),
    ...(r.fwmark !== undefined
      ? ['fwmark', r.fwmask !== undefined ? `${r.fwmark}/${r.fwmask}` : r.fwmark]
      : []),
    ...(r.table !== '' ? ['lookup', r.table] : []),
    ...(r.suppressPrefixLength !== undefined
      ? ['suppress_prefixlength', String(r.suppressPrefixLength)]
      : []),
  ];
}

export function renderIpRule(rule: IpRuleSpec): string {
  return ['ip', ...ipRuleArgs(rule, 'add')].join(' ');
}

export function renderRoute(r: RouteSpec): string {
  return ['ip', ...routeArgs(r)].join(' ');
}

function specKey(s: IpRuleSpec): string {
  const mark = s.fwmark ? `${hex(s.fwmark.mark >>> 0)}/${hex(s.fwmark.mask >>> 0)}` : '-';
  let from = 'all';
  if (s.from !== undefined) {
    const [address = '', bits] = s.from.split('/');
    from = prefixKey(address, bits === undefined ? hostLength(s.family) : Number(bits));
  }
  return [s.family, s.priority, String(s.table), mark, from, s.suppressPrefixLength ?? '-'].join(' ');
}

function kernelKey(r: KernelRule): string {
  const mark = r.fwmark !== undefined ? `${r.fwmark}/${r.fwmask ?? '0xffffffff'}` : '-';
  const from = r.src !== undefined ? prefixKey(r.src, r.srclen ?? hostLength(r.family)) : 'all';
  return [r.family, r.priority, r.table, mark, from, r.suppressPrefixLength ?? '-'].join(' ');
}

/** One spelling per network, so 2001:DB8::1 in the config equals the kernel's 2001:db8::1. */
function prefixKey(address: string, bits: number): string {
  if (isIP(address) === 0 || !Number.isInteger(bits)) return `${address}/${bits}`;
  return `${networkOf(address, bits)}/${bits}`;
}

function hostLength(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

function familyOf(address: string, what: string): 4 | 6 {
  const family = isIP(address);
  if (family === 0) {
    throw new LinkmuxError('LINKMUX_ERR_CONFIG', `gateway: ${what} "${address}" is not an IP address`);
  }
  return family === 6 ? 6 : 4;
}

function tableName(value: unknown): string {
  if (typeof value === 'number') value = String(value);
  if (typeof value !== 'string') return '';
  if (/^\d+$/.test(value)) {
    const id = String(Number(value));
    return TABLE_NAMES[id] ?? id;
  }
  return value;
}

/** iproute2 prints marks as hex strings ("0x4c01"; before 4.19 without "0x"). */
function parseMark(value: unknown): number | undefined {
  if (typeof value === 'number') return value >>> 0;
  if (typeof value !== 'string') return undefined;
  const m = /^(?:0x)?([0-9a-f]{1,8})$/i.exec(value.trim());
  return m?.[1] !== undefined ? parseInt(m[1], 16) >>> 0 : undefined;
}
