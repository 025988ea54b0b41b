/**
 * Ownership and the diff: which of the kernel's rules and routes are linkmux's,
 * and the changes that turn the kernel's state into the desired one.
 *
 * Ownership is by range, whatever the config that made the state: a rule is
 * owned when its priority AND its table are in the caller's ranges and it
 * carries no selector the caller never sets (rules the caller names exactly,
 * like the gateway's `lookup main suppress_prefixlength 0`, are owned too); a
 * route is owned when its table is. So a cleanup after a crash finds every
 * rule of an old, bigger config, and nothing outside the ranges is ever
 * touched.
 *
 * Guarantees: pure; rules match one to one (a duplicate is deleted); addresses
 * compare by value, not spelling; changes come in the order that never leaves
 * a rule pointing at an empty table or a wanted rule missing: route replaces,
 * rule adds, rule deletes, route deletes.
 */
import { isIP } from 'node:net';
import { networkOf } from '../net/network-of.js';
import {
  hex,
  hostLength,
  type DesiredRouting,
  type KernelRoute,
  type KernelRule,
  type RouteSpec,
  type RoutingChange,
  type RoutingState,
  type RuleSpec,
} from './spec.js';

/** Inclusive. */
export interface NumberRange {
  first: number;
  last: number;
}

/** The rules and routes a caller (route setup, the gateway) owns. */
export interface Ownership {
  priorities: NumberRange;
  tables: NumberRange;
  /** Selectors an owned rule may carry besides `priority` and `table`. */
  selectors: ReadonlyArray<'from' | 'fwmark' | 'suppress'>;
  /** Rules outside the ranges that are owned too, matched exactly. */
  exact?: readonly RuleSpec[];
}

export function inRange(r: NumberRange, n: number | undefined): boolean {
  return n !== undefined && n >= r.first && n <= r.last;
}

export function ownsRule(o: Ownership, r: KernelRule): boolean {
  if (r.other.length > 0) return false;
  if (o.exact?.some((e) => ruleKey(e) === ruleKey(r))) return true;
  if (!inRange(o.priorities, r.priority) || !inRange(o.tables, r.table)) return false;
  if (r.from !== undefined && !o.selectors.includes('from')) return false;
  if (r.fwmark !== undefined && !o.selectors.includes('fwmark')) return false;
  if (r.suppressPrefixLength !== undefined && !o.selectors.includes('suppress')) return false;
  return true;
}

export function ownsRoute(o: Ownership, r: KernelRoute): boolean {
  return inRange(o.tables, r.table);
}

/** Does `rule` select every packet from its source alone (no mark, no suppress, nothing else)? */
export function selectsBySourceOnly(r: KernelRule): boolean {
  return r.other.length === 0 && r.fwmark === undefined && r.suppressPrefixLength === undefined;
}

/** Pure: the changes that make linkmux's part of `current` exactly `desired`. */
export function diffRouting(
  desired: DesiredRouting,
  current: RoutingState,
  owned: Ownership,
): RoutingChange[] {
  // Only unicast routes through a device are compared; others in our tables go at cleanup.
  const ownedRoutes = current.routes.filter(
    (r) => ownsRoute(owned, r) && r.type === undefined && r.dev !== undefined,
  );
  const routeAdds = desired.routes.filter((d) => !ownedRoutes.some((c) => routeKey(c) === routeKey(d)));
  // `ip route replace` overwrites the route with the same destination in the same table, so
  // such an old route is already gone by the time the deletions run.
  const staleRoutes = ownedRoutes.filter(
    (c) => !desired.routes.some((d) => routeKey(c) === routeKey(d) || routeSlot(c) === routeSlot(d)),
  );
  const unmatched = [...desired.rules];
  const staleRules: KernelRule[] = [];
  for (const c of current.rules) {
    if (!ownsRule(owned, c)) continue;
    const i = unmatched.findIndex((d) => ruleKey(d) === ruleKey(c));
    if (i >= 0) unmatched.splice(i, 1);
    else staleRules.push(c);
  }
  return [
    ...routeAdds.map((route): RoutingChange => ({ kind: 'route', op: 'replace', route })),
    ...unmatched.map((rule): RoutingChange => ({ kind: 'rule', op: 'add', rule })),
    ...staleRules.map((rule): RoutingChange => ({ kind: 'rule', op: 'del', rule })),
    ...staleRoutes.map((route): RoutingChange => ({ kind: 'route', op: 'del', route })),
  ];
}

/** Pure: delete every owned rule, then flush every owned table that has routes (family 4 first). */
export function cleanupChanges(current: RoutingState, owned: Ownership): RoutingChange[] {
  const rules = current.rules
    .filter((r) => ownsRule(owned, r))
    .map((rule): RoutingChange => ({ kind: 'rule', op: 'del', rule }));
  const tables = new Map<string, { family: 4 | 6; table: number }>();
  for (const r of current.routes) {
    if (ownsRoute(owned, r)) tables.set(`${r.family}/${r.table}`, { family: r.family, table: r.table });
  }
  const flushes = [...tables.values()]
    .sort((a, b) => a.family - b.family || a.table - b.table)
    .map((t): RoutingChange => ({ kind: 'table', op: 'flush', ...t }));
  return [...rules, ...flushes];
}

/** One spelling per rule, for specs and kernel rules alike. */
export function ruleKey(r: RuleSpec | KernelRule): string {
  const mark = r.fwmark ? `${hex(r.fwmark.mark >>> 0)}/${hex(r.fwmark.mask >>> 0)}` : '-';
  return [r.family, r.priority, r.table ?? '-', mark, fromKey(r), r.suppressPrefixLength ?? '-'].join(' ');
}

function fromKey(r: RuleSpec | KernelRule): string {
  if (r.from === undefined) return 'all';
  const [address = '', bits] = r.from.split('/');
  const length = bits === undefined ? hostLength(r.family) : Number(bits);
  if (length === 0) return 'all';
  // One spelling per network, so 2001:DB8::1 in a config equals the kernel's 2001:db8::1.
  if (isIP(address) === 0 || !Number.isInteger(length)) return `${address}/${length}`;
  return `${networkOf(address, length)}/${length}`;
}

function routeSlot(r: RouteSpec | KernelRoute): string {
  return `${r.family} ${r.table} ${r.dst}`;
}

function routeKey(r: RouteSpec | KernelRoute): string {
  return `${r.family} ${r.table} ${r.dst} ${r.gateway ?? '-'} ${r.dev ?? '-'}`;
}
