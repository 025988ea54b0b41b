/**
 * What policy routing is made of, as linkmux wants it (specs) and as the kernel
 * holds it (read back by reader.ts), and the one spelling of the `ip` commands
 * that change it. Planners (route setup, the gateway) produce specs; diff.ts
 * turns specs + kernel state into changes; apply.ts runs them.
 *
 * Guarantees: pure; a change prints as the `ip` arguments that apply.ts runs
 * (so a printed plan and an applied one never differ); tables are numbers
 * everywhere (253/254/255 print as default/main/local), so a name given to a
 * table in rt_tables cannot make two spellings of one rule.
 */
export type Family = 4 | 6;

/** A rule linkmux wants. */
export interface RuleSpec {
  family: Family;
  priority: number;
  /** Table id; 254 is main. */
  table: number;
  /** An address (a /32 or /128) or "address/prefix"; absent: from all. Printed as given. */
  from?: string;
  fwmark?: { mark: number; mask: number };
  suppressPrefixLength?: number;
}

/** A route linkmux wants in one of its tables. */
export interface RouteSpec {
  family: Family;
  table: number;
  /** 'default' or "network/prefix". */
  dst: string;
  dev: string;
  gateway?: string;
  /** Preferred source address. */
  src?: string;
}

/** A rule as the kernel holds it (`ip -j -N rule show`), normalised. */
export interface KernelRule {
  family: Family;
  priority: number;
  /** Table id; undefined when the rule looks up no table (goto, unreachable …) or ip printed a name. */
  table?: number;
  /** "address/prefix" as the kernel holds it; absent: from all. */
  from?: string;
  fwmark?: { mark: number; mask: number };
  suppressPrefixLength?: number;
  /** JSON keys of selectors and actions linkmux never sets (not, iif, to, goto, action …). */
  other: string[];
}

/** A route as the kernel holds it (`ip -j -N route show table all`). */
export interface KernelRoute {
  family: Family;
  table: number;
  /** 'default' or "network/prefix" (a host route gets its full length). */
  dst: string;
  dev?: string;
  gateway?: string;
  src?: string;
  /** Absent for unicast. */
  type?: string;
}

export interface RoutingState {
  rules: KernelRule[];
  routes: KernelRoute[];
}

/** What linkmux wants the kernel to hold, in the tables and priorities it owns. */
export interface DesiredRouting {
  rules: readonly RuleSpec[];
  routes: readonly RouteSpec[];
}

/** One change to the kernel. Further kinds (MPTCP endpoints) join this union. */
export type RoutingChange =
  | { kind: 'route'; op: 'replace' | 'del'; route: RouteSpec | KernelRoute }
  | { kind: 'rule'; op: 'add' | 'del'; rule: RuleSpec | KernelRule }
  | { kind: 'table'; op: 'flush'; family: Family; table: number };

const TABLE_NAMES: Record<number, string> = { 253: 'default', 254: 'main', 255: 'local' };

/** "0x4c01": how iproute2 prints marks and masks. */
export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

export function tableArg(table: number): string {
  return TABLE_NAMES[table] ?? String(table);
}

export function hostLength(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** `-4 rule add priority P [from X] [fwmark M/K] lookup T [suppress_prefixlength N]`. */
export function ruleArgs(op: 'add' | 'del', r: RuleSpec | KernelRule): string[] {
  return [
    `-${r.family}`,
    'rule',
    op,
    'priority',
    String(r.priority),
    ...(r.from !== undefined ? ['from', r.from] : []),
    ...(r.fwmark ? ['fwmark', `${hex(r.fwmark.mark >>> 0)}/${hex(r.fwmark.mask >>> 0)}`] : []),
    ...(r.table !== undefined ? ['lookup', tableArg(r.table)] : []),
    ...(r.suppressPrefixLength !== undefined
      ? ['suppress_prefixlength', String(r.suppressPrefixLength)]
      : []),
  ];
}

/** `replace`: the same route twice changes nothing; a changed next hop overwrites the old one. */
export function routeArgs(op: 'replace' | 'del', r: RouteSpec | KernelRoute): string[] {
  const via = r.gateway ? ['via', r.gateway] : [];
  const dev = r.dev !== undefined ? ['dev', r.dev] : [];
  if (op === 'del') return [`-${r.family}`, 'route', 'del', r.dst, ...via, ...dev, 'table', String(r.table)];
  const src = r.src ? ['src', r.src] : [];
  const scope = r.family === 4 && !r.gateway ? ['scope', 'link'] : [];
  return [
    `-${r.family}`,
    'route',
    'replace',
    r.dst,
    ...via,
    ...dev,
    ...src,
    ...scope,
    'table',
    String(r.table),
  ];
}

/** The `ip` arguments of one change. */
export function changeArgs(c: RoutingChange): string[] {
  switch (c.kind) {
    case 'route':
      return routeArgs(c.op, c.route);
    case 'rule':
      return ruleArgs(c.op, c.rule);
    case 'table':
      return [`-${c.family}`, 'route', 'flush', 'table', String(c.table)];
  }
}

/** "ip -4 rule add …": a change as a shell line. */
export function renderChange(c: RoutingChange): string {
  return ['ip', ...changeArgs(c)].join(' ');
}
