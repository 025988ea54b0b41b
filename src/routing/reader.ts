/**
 * The one reader of the kernel's policy routing: `ip -j -N rule show` and
 * `ip -j -N route show table all`, both families.
 *
 * Why -N: without it ip prints a table's name from /etc/iproute2/rt_tables
 * ("isp1") instead of its number, and a reader that skips names misses the
 * rule — route setup once did, so `--apply` added a duplicate and `--remove`
 * left it behind. With -N every table is a number (main is 254).
 *
 * Guarantees: pure parsers (readRouting runs the four commands through the
 * Runner); every rule is returned, also foreign ones, with the selectors and
 * actions linkmux never sets listed in `other`, so ownership can refuse them;
 * an IPv6 query that fails (IPv6 disabled) reads as no rules and no routes;
 * output that is not ip's JSON is LINKMUX_ERR_COMMAND_FAILED.
 */
import { LinkmuxError } from '../util/errors.js';
import type { Runner } from '../util/runner.js';
import { hostLength, type Family, type KernelRoute, type KernelRule, type RoutingState } from './spec.js';

/** `ip` arguments that print a family's rules as JSON with numeric table ids. */
export function ruleShowArgs(family: Family): string[] {
  return ['-j', '-N', `-${family}`, 'rule', 'show'];
}

/** `ip` arguments that print a family's routes of every table as JSON with numeric table ids. */
export function routeShowArgs(family: Family): string[] {
  return ['-j', '-N', `-${family}`, 'route', 'show', 'table', 'all'];
}

/** Reads rules and routes of both families. */
export async function readRouting(runner: Runner): Promise<RoutingState> {
  const read = async (args: string[]) => (await runner.run('ip', args)).stdout;
  const optional = (args: string[]) => read(args).catch(() => '[]');
  return {
    rules: [
      ...parseIpRules(await read(ruleShowArgs(4)), 4),
      ...parseIpRules(await optional(ruleShowArgs(6)), 6),
    ],
    routes: [
      ...parseIpRoutes(await read(routeShowArgs(4)), 4),
      ...parseIpRoutes(await optional(routeShowArgs(6)), 6),
    ],
  };
}

/** Keys linkmux's rules can carry (and neutral ones: protocol, flags); any other makes a rule foreign. */
const MODELLED_KEYS = new Set([
  'priority',
  'src',
  'srclen',
  'fwmark',
  'fwmask',
  'table',
  'suppress_prefixlen',
  'protocol',
  'flags',
]);

const TABLE_IDS: Record<string, number> = { default: 253, main: 254, local: 255 };

/** Parses `ip -j -N -4|-6 rule show` (iproute2 ≥ 4.14; without -N a named table reads as no table). */
export function parseIpRules(json: string, family: Family): KernelRule[] {
  const out: KernelRule[] = [];
  for (const raw of parseArray(json)) {
    if (typeof raw !== 'object' || raw === null) continue;
    const r = raw as Record<string, unknown>;
    const rule: KernelRule = {
      family,
      priority: typeof r.priority === 'number' ? r.priority : 0,
      other: Object.keys(r).filter((k) => !MODELLED_KEYS.has(k)),
    };
    const table = tableId(r.table);
    if (table !== undefined) rule.table = table;
    if (typeof r.src === 'string' && r.src !== 'all') {
      rule.from = `${r.src}/${typeof r.srclen === 'number' ? r.srclen : hostLength(family)}`;
    }
    const mark = parseMark(r.fwmark);
    if (mark !== undefined) rule.fwmark = { mark, mask: parseMark(r.fwmask) ?? 0xffffffff };
    if (typeof r.suppress_prefixlen === 'number') rule.suppressPrefixLength = r.suppress_prefixlen;
    out.push(rule);
  }
  return out;
}

/** Parses `ip -j -N -4|-6 route show table all`; a route without "table" is main's. */
export function parseIpRoutes(json: string, family: Family): KernelRoute[] {
  const out: KernelRoute[] = [];
  for (const raw of parseArray(json)) {
    if (typeof raw !== 'object' || raw === null) continue;
    const r = raw as Record<string, unknown>;
    const table = r.table === undefined ? 254 : tableId(r.table);
    if (table === undefined || typeof r.dst !== 'string') continue;
    const dst = r.dst === 'default' || r.dst.includes('/') ? r.dst : `${r.dst}/${hostLength(family)}`;
    // With -N the type is a number: 1 is unicast (ip prints no type for unicast routes).
    const type = r.type === undefined || r.type === 'unicast' || r.type === '1' ? undefined : String(r.type);
    out.push({
      family,
      table,
      dst,
      ...(typeof r.dev === 'string' ? { dev: r.dev } : {}),
      ...(typeof r.gateway === 'string' ? { gateway: r.gateway } : {}),
      ...(typeof r.prefsrc === 'string' ? { src: r.prefsrc } : {}),
      ...(type !== undefined ? { type } : {}),
    });
  }
  return out;
}

/** The array `ip -j` printed ([] for empty output); LINKMUX_ERR_COMMAND_FAILED when it is not JSON. */
export function parseArray(json: string): unknown[] {
  if (json.trim() === '') return [];
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new LinkmuxError(
      'LINKMUX_ERR_COMMAND_FAILED',
      'ip printed rules or routes that are not JSON: install iproute2 4.14 or newer',
      { cause: err },
    );
  }
  return Array.isArray(value) ? value : [];
}

function tableId(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  return TABLE_IDS[value];
}

/** iproute2 prints marks as hex strings ("0x4c01"; before 4.19 without "0x"). */
function parseMark(value: unknown): number | undefined {
  if (typeof value === 'number') return value >>> 0;
  if (typeof value !== 'string') return undefined;
  const m = /^(?:0x)?([0-9a-f]{1,8})$/i.exec(value.trim());
  return m?.[1] !== undefined ? parseInt(m[1], 16) >>> 0 : undefined;
}
