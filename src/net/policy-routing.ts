/**
 * Policy routing for source-address binding on Linux: one routing table per
 * uplink and one `ip rule from ADDR` per address, so a socket bound to an
 * uplink's address leaves through that uplink (without a rule, the kernel sends
 * it out of the main table's default interface, with the wrong source address).
 *
 * Data path:  socket bound to 198.18.2.2 ─ rule "from 198.18.2.2 table 101" ─
 *             table 101: default via 198.18.2.1 dev u2 ─> out of u2
 *
 * Ownership: linkmux owns the tables tableBase … tableBase+63 and the rules
 * whose priority is in priorityBase … priorityBase+63 AND whose table is one of
 * those (and that select only by source). Guarantees: `plan` is pure; `apply`
 * reads the current rules and routes and changes only what differs (running it
 * twice changes nothing the second time, stale rules of earlier runs go);
 * `remove` deletes only what linkmux owns and is a no-op the second time.
 */
import net from 'node:net';
import { LinkmuxError } from '../util/errors.js';
import type { Runner } from '../util/runner.js';
import type { NetInterface } from './interfaces-types.js';
import { isLinkLocal } from './link-local.js';

/** How many tables and priorities linkmux reserves from each base. */
export const POLICY_SPAN = 64;

export interface PolicyOptions {
  /** First routing table number linkmux uses (default 100). */
  tableBase?: number;
  /** First rule priority linkmux uses (default 10000; must stay below main's 32766). */
  priorityBase?: number;
}

export interface PolicyRule {
  family: 4 | 6;
  from: string;
  prefixLength: number;
  table: number;
  priority: number;
}

export interface PolicyRoute {
  family: 4 | 6;
  /** 'default' or "network/prefix". */
  dst: string;
  dev: string;
  table: number;
  gateway?: string;
  src?: string;
}

export interface PolicyPlan {
  readonly tableBase: number;
  readonly priorityBase: number;
  readonly rules: PolicyRule[];
  readonly routes: PolicyRoute[];
  /** Uplinks that get no rules, and why. */
  readonly skipped: Array<{ name: string; reason: string }>;
  /** `ip` argument arrays that set the plan up on a machine without earlier linkmux rules. */
  readonly commands: string[][];
  /** The plan as shell lines, commented per uplink. */
  render(): string;
  /** Brings the machine to the plan; returns the `ip` argument arrays it ran. */
  apply(runner: Runner): Promise<string[][]>;
  /** Deletes every rule and route linkmux owns (in the ranges); returns what it ran. */
  remove(runner: Runner): Promise<string[][]>;
}

export function validatePolicyOptions(opts: PolicyOptions = {}): Required<PolicyOptions> {
  const tableBase = opts.tableBase ?? 100;
  const priorityBase = opts.priorityBase ?? 10000;
  const last = (base: number) => base + POLICY_SPAN - 1;
  if (!Number.isInteger(tableBase) || tableBase < 1 || last(tableBase) > 0xffffffff) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `--table-base must be an integer from 1 to ${0xffffffff - POLICY_SPAN + 1}, got ${tableBase}`,
    );
  }
  if (tableBase <= 255 && last(tableBase) >= 253) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `--table-base ${tableBase} would reach the kernel's tables 253-255 (default, main, local): ` +
        `use at most ${252 - POLICY_SPAN + 1}, or 256 and above`,
    );
  }
  if (!Number.isInteger(priorityBase) || priorityBase < 1 || last(priorityBase) >= 32766) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `--priority-base must be an integer from 1 to ${32765 - POLICY_SPAN + 1} (rules must come before ` +
        `the main table's priority 32766), got ${priorityBase}`,
    );
  }
  return { tableBase, priorityBase };
}

/** Pure: the tables, routes and rules that steer each uplink's source addresses out of that uplink. */
export function planPolicyRoutes(uplinks: readonly NetInterface[], opts: PolicyOptions = {}): PolicyPlan {
  const { tableBase, priorityBase } = validatePolicyOptions(opts);
  const rules: PolicyRule[] = [];
  const routes: PolicyRoute[] = [];
  const skipped: Array<{ name: string; reason: string }> = [];
  const sections: Array<{ comment: string; commands: string[][] }> = [];
  let slot = 0;
  for (const iface of uplinks) {
    const gateway = iface.gateway;
    if (!gateway) {
      skipped.push({ name: iface.name, reason: 'no default gateway' });
      continue;
    }
    const family: 4 | 6 = net.isIP(gateway) === 6 ? 6 : 4;
    const addresses = iface.addresses.filter((a) => a.family === family && !isLinkLocal(a.address));
    if (addresses.length === 0) {
      skipped.push({ name: iface.name, reason: `no IPv${family} address for gateway ${gateway}` });
      continue;
    }
    if (slot >= POLICY_SPAN) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `policy routing supports at most ${POLICY_SPAN} uplinks: name fewer with --link`,
      );
    }
    const table = tableBase + slot;
    const priority = priorityBase + slot;
    slot++;
    const mine: PolicyRoute[] = [];
    const nets = new Set<string>();
    for (const a of addresses) {
      const dst = `${networkOf(a.address, a.prefixLength)}/${a.prefixLength}`;
      if (nets.has(dst) || a.prefixLength === (family === 4 ? 32 : 128)) continue;
      nets.add(dst);
      mine.push({ family, dst, dev: iface.name, table, src: a.address });
    }
    mine.push({ family, dst: 'default', dev: iface.name, table, gateway });
    const myRules = addresses.map((a): PolicyRule => ({
      family,
      from: a.address,
      prefixLength: family === 4 ? 32 : 128,
      table,
      priority,
    }));
    routes.push(...mine);
    rules.push(...myRules);
    sections.push({
      comment: `# ${iface.name}: ${addresses.map((a) => a.address).join(', ')} via ${gateway} -> table ${table}`,
      // Routes before rules, so a rule never points at an empty table.
      commands: [...mine.map(routeAddArgs), ...myRules.map((r) => ruleArgs('add', r))],
    });
  }
  const commands = sections.flatMap((s) => s.commands);
  const owned: Ownership = { tableBase, priorityBase };

  return {
    tableBase,
    priorityBase,
    rules,
    routes,
    skipped,
    commands,
    render() {
      const lines: string[] = [];
      for (const s of sections) lines.push(s.comment, ...s.commands.map(shellLine));
      for (const s of skipped) lines.push(`# ${s.name}: skipped (${s.reason})`);
      return lines.length ? `${lines.join('\n')}\n` : '';
    },
    async apply(runner) {
      const current = await readPolicyState(runner);
      return runAll(runner, diffPolicy({ rules, routes }, current, owned));
    },
    async remove(runner) {
      const current = await readPolicyState(runner);
      return runAll(runner, removalCommands(current, owned));
    },
  };
}

export interface Ownership {
  tableBase: number;
  priorityBase: number;
}

/** What the kernel holds now, as far as policy routing goes. */
export interface PolicyState {
  rules: Array<PolicyRule & { selectorsOnlySource: boolean }>;
  routes: PolicyRoute[];
}

/** Reads rules and the routes of numbered tables, both families (IPv6 may be disabled: then none). */
export async function readPolicyState(runner: Runner): Promise<PolicyState> {
  const read = async (args: string[]) => (await runner.run('ip', args)).stdout;
  const optional = (args: string[]) => read(args).catch(() => '[]');
  return {
    rules: [
      ...parseIpRules(await read(['-j', '-4', 'rule', 'show']), 4),
      ...parseIpRules(await optional(['-j', '-6', 'rule', 'show']), 6),
    ],
    routes: [
      ...parseTableRoutes(await read(['-j', '-4', 'route', 'show', 'table', 'all']), 4),
      ...parseTableRoutes(await optional(['-j', '-6', 'route', 'show', 'table', 'all']), 6),
    ],
  };
}

const SOURCE_RULE_KEYS = new Set(['priority', 'src', 'srclen', 'table', 'flags', 'protocol']);

/** Parses `ip -j rule show`; only rules that look up a numbered table are kept. */
export function parseIpRules(json: string, family: 4 | 6): PolicyState['rules'] {
  const out: PolicyState['rules'] = [];
  for (const r of parseArray(json) as Array<Record<string, unknown>>) {
    const table = Number(r.table);
    if (typeof r.priority !== 'number' || !Number.isInteger(table) || typeof r.src !== 'string') continue;
    const all = r.src === 'all';
    out.push({
      family,
      from: all ? 'all' : r.src,
      prefixLength: typeof r.srclen === 'number' ? r.srclen : all ? 0 : family === 4 ? 32 : 128,
      table,
      priority: r.priority,
      selectorsOnlySource: Object.keys(r).every((k) => SOURCE_RULE_KEYS.has(k)),
    });
  }
  return out;
}

/** Parses `ip -j route show table all`; only routes in numbered tables are kept. */
export function parseTableRoutes(json: string, family: 4 | 6): PolicyRoute[] {
  const out: PolicyRoute[] = [];
  for (const r of parseArray(json) as Array<Record<string, unknown>>) {
    const table = Number(r.table);
    if (r.table === undefined || !Number.isInteger(table) || typeof r.dst !== 'string') continue;
    if (r.type !== undefined && r.type !== 'unicast') continue;
    if (typeof r.dev !== 'string') continue;
    const dst = r.dst === 'default' || r.dst.includes('/') ? r.dst : `${r.dst}/${family === 4 ? 32 : 128}`;
    out.push({
      family,
      dst,
      dev: r.dev,
      table,
      ...(typeof r.gateway === 'string' ? { gateway: r.gateway } : {}),
      ...(typeof r.prefsrc === 'string' ? { src: r.prefsrc } : {}),
    });
  }
  return out;
}

/** Pure: the commands that turn `current` into `desired`, touching only what linkmux owns. */
export function diffPolicy(
  desired: { rules: readonly PolicyRule[]; routes: readonly PolicyRoute[] },
  current: PolicyState,
  owned: Ownership,
): string[][] {
  const ownedRoutes = current.routes.filter((r) => ownsTable(owned, r.table));
  const ownedRules = current.rules.filter((r) => ownsRule(owned, r));
  const routeAdds = desired.routes.filter((d) => !ownedRoutes.some((c) => routeKey(c) === routeKey(d)));
  // `ip route replace` overwrites the route with the same destination in the same table, so
  // such an old route is already gone by the time the deletions run.
  const staleRoutes = ownedRoutes.filter(
    (c) => !desired.routes.some((d) => routeKey(c) === routeKey(d) || routeSlot(c) === routeSlot(d)),
  );
  // Match rules one to one, so a rule added twice by hand loses its duplicate.
  const unmatched = [...desired.rules];
  const staleRules: PolicyRule[] = [];
  for (const c of ownedRules) {
    const i = unmatched.findIndex((d) => ruleKey(d) === ruleKey(c));
    if (i >= 0) unmatched.splice(i, 1);
    else staleRules.push(c);
  }
  return [
    ...routeAdds.map(routeAddArgs),
    ...unmatched.map((r) => ruleArgs('add', r)),
    ...staleRules.map((r) => ruleArgs('del', r)),
    ...staleRoutes.map(routeDelArgs),
  ];
}

/** Pure: the commands that delete every owned rule, then flush every owned table that has routes. */
export function removalCommands(current: PolicyState, owned: Ownership): string[][] {
  const rules = current.rules.filter((r) => ownsRule(owned, r)).map((r) => ruleArgs('del', r));
  const tables = new Map<string, { family: 4 | 6; table: number }>();
  for (const r of current.routes) {
    if (ownsTable(owned, r.table)) tables.set(`${r.family}/${r.table}`, { family: r.family, table: r.table });
  }
  const flushes = [...tables.values()]
    .sort((a, b) => a.family - b.family || a.table - b.table)
    .map((t) => [...fam(t.family), 'route', 'flush', 'table', String(t.table)]);
  return [...rules, ...flushes];
}

function ownsTable(o: Ownership, table: number): boolean {
  return table >= o.tableBase && table < o.tableBase + POLICY_SPAN;
}

function ownsRule(o: Ownership, r: PolicyState['rules'][number]): boolean {
  return (
    r.selectorsOnlySource &&
    ownsTable(o, r.table) &&
    r.priority >= o.priorityBase &&
    r.priority < o.priorityBase + POLICY_SPAN
  );
}

function ruleKey(r: PolicyRule): string {
  return `${r.family} ${r.from}/${r.prefixLength} ${r.table} ${r.priority}`;
}

function routeSlot(r: PolicyRoute): string {
  return `${r.family} ${r.table} ${r.dst}`;
}

function routeKey(r: PolicyRoute): string {
  return `${r.family} ${r.table} ${r.dst} ${r.gateway ?? '-'} ${r.dev}`;
}

function fam(family: 4 | 6): string[] {
  return family === 6 ? ['-6'] : [];
}

function ruleArgs(verb: 'add' | 'del', r: PolicyRule): string[] {
  const from = r.from === 'all' ? ['from', 'all'] : ['from', `${r.from}/${r.prefixLength}`];
  return [...fam(r.family), 'rule', verb, ...from, 'table', String(r.table), 'priority', String(r.priority)];
}

function routeAddArgs(r: PolicyRoute): string[] {
  const via = r.gateway ? ['via', r.gateway] : [];
  const src = r.src ? ['src', r.src] : [];
  const scope = r.family === 4 && !r.gateway ? ['scope', 'link'] : [];
  return [
    ...fam(r.family),
    'route',
    'replace',
    r.dst,
    ...via,
    'dev',
    r.dev,
    ...src,
    ...scope,
    'table',
    String(r.table),
  ];
}

function routeDelArgs(r: PolicyRoute): string[] {
  const via = r.gateway ? ['via', r.gateway] : [];
  return [...fam(r.family), 'route', 'del', r.dst, ...via, 'dev', r.dev, 'table', String(r.table)];
}

function shellLine(args: readonly string[]): string {
  return ['ip', ...args].join(' ');
}

async function runAll(runner: Runner, commands: string[][]): Promise<string[][]> {
  for (const args of commands) await runner.run('ip', args);
  return commands;
}

/** The network address of `address/prefixLength`, in canonical text. */
export function networkOf(address: string, prefixLength: number): string {
  if (net.isIP(address) === 4) {
    const n = address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    const masked = n & maskOf(32, prefixLength);
    return [24n, 16n, 8n, 0n].map((s) => String((masked >> s) & 0xffn)).join('.');
  }
  const masked = ipv6ToBigInt(address) & maskOf(128, prefixLength);
  const hextets = Array.from({ length: 8 }, (_, i) =>
    ((masked >> BigInt(112 - 16 * i)) & 0xffffn).toString(16),
  );
  return new URL(`http://[${hextets.join(':')}]/`).hostname.slice(1, -1);
}

function maskOf(bits: number, prefixLength: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return (all << BigInt(bits - prefixLength)) & all;
}

function ipv6ToBigInt(address: string): bigint {
  // The URL parser expands nothing, but validates and canonicalises; expand "::" ourselves.
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const middle = Array<string>(8 - left.length - right.length).fill('0');
  const parts = tail === undefined ? left : [...left, ...middle, ...right];
  return parts.reduce((acc, h) => (acc << 16n) | BigInt(parseInt(h, 16)), 0n);
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
