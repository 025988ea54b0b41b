/**
 * Uplinks whose default route lives only in a policy table: no default route in
 * the main table, but an `ip rule from ADDR lookup N` that selects one of the
 * interface's addresses, and a default route through the interface in table N.
 *
 *   ip rule add from 198.18.1.2 lookup 101
 *   ip route add default via 198.18.1.1 dev up0 table 101   → up0 is an uplink
 *
 * Such an interface reaches the internet from its own address (which is what a
 * link's sockets use), so discovery must count it. Rules come from the one rule
 * reader (routing/reader.ts `parseIpRules`), read with `ip -j -N` so a table
 * named in /etc/iproute2/rt_tables still shows its number.
 *
 * Pure: interfaces.ts `discoverInterfaces` runs the commands (ruleShowArgs, then
 * tableDefaultArgs for each of tablesToRead) and hands the output here.
 *
 * Guarantees: nothing here touches the machine; a rule counts
 * only when it selects by source alone (a rule with fwmark, iif, not, to,
 * suppress_prefixlength, uidrange … does not apply to every packet of the
 * address, so it is ignored) and looks up a numbered table other than main and
 * local; an interface that has a main-table default route keeps it (main wins);
 * among the rules that select an address, the lowest priority whose table holds
 * a default route through the interface wins (the kernel walks rules in that
 * order, and a device-bound socket skips routes through other devices), IPv4
 * before IPv6 as for main-table routes.
 */
import type { DefaultRoute, NetInterface } from './interfaces-types.js';
import { isLinkLocal } from './link-local.js';
import { networkOf } from './network-of.js';
import { selectsBySourceOnly } from '../routing/diff.js';
import { ruleShowArgs } from '../routing/reader.js';
import { hostLength, type KernelRule as Rule } from '../routing/spec.js';

export { ruleShowArgs };

/** Tables the kernel reserves that never count as a policy table here (main is read on its own). */
const MAIN_TABLE = 254;
const LOCAL_TABLE = 255;

/** One table to read: `ip -j [-6] route show table N default`. */
export interface TableRef {
  family: 4 | 6;
  table: number;
}

/** Default routes of policy tables, by `tableKey`. */
export type TableRoutes = ReadonlyMap<string, readonly DefaultRoute[]>;

export function tableKey(t: TableRef): string {
  return `${t.family}/${t.table}`;
}

/** `ip` arguments that print a table's default route(s) as JSON. */
export function tableDefaultArgs(t: TableRef): string[] {
  return ['-j', ...(t.family === 6 ? ['-6'] : []), 'route', 'show', 'table', String(t.table), 'default'];
}

/** Pure: the interfaces that may need a policy table (up, not loopback, an address, no main default route). */
export function policyCandidates(interfaces: readonly NetInterface[]): NetInterface[] {
  return interfaces.filter(
    (i) => i.up && !i.loopback && i.metric === undefined && i.addresses.some((a) => !isLinkLocal(a.address)),
  );
}

/** Pure: does `rule` send every packet from `address` to its table? */
export function ruleSelects(rule: Rule, address: string, family: 4 | 6): boolean {
  if (rule.family !== family || !selectsBySourceOnly(rule) || rule.table === undefined) return false;
  if (rule.table === MAIN_TABLE || rule.table === LOCAL_TABLE || rule.table <= 0) return false;
  const { from, prefixLength } = source(rule);
  if (from === 'all' || prefixLength === 0) return true;
  try {
    return networkOf(address, prefixLength) === networkOf(from, prefixLength);
  } catch {
    return false; // a rule address ip printed in a form we cannot read selects nothing we know of
  }
}

/** Pure: the tables worth reading, in rule order, each once. */
export function tablesToRead(interfaces: readonly NetInterface[], rules: readonly Rule[]): TableRef[] {
  const out = new Map<string, TableRef>();
  for (const iface of policyCandidates(interfaces)) {
    for (const a of iface.addresses) {
      if (isLinkLocal(a.address)) continue;
      for (const r of rules) {
        if (ruleSelects(r, a.address, a.family) && r.table !== undefined) {
          out.set(tableKey({ family: r.family, table: r.table }), { family: r.family, table: r.table });
        }
      }
    }
  }
  return [...out.values()];
}

/** How `ip rule` spells a rule's source: "198.18.1.2", "198.18.1.0/24" or "all". */
export function ruleFrom(rule: Rule): string {
  const { from, prefixLength } = source(rule);
  if (from === 'all' || prefixLength === 0) return 'all';
  return prefixLength === hostLength(rule.family) ? from : `${from}/${prefixLength}`;
}

/** A rule's source as address and length ("all", 0 for from all). */
function source(rule: Rule): { from: string; prefixLength: number } {
  if (rule.from === undefined) return { from: 'all', prefixLength: 0 };
  const [from = '', bits] = rule.from.split('/');
  return { from, prefixLength: bits === undefined ? hostLength(rule.family) : Number(bits) };
}

/**
 * Pure: sets `gateway`/`metric` and `policyRoute` on interfaces that have no
 * main-table default route but a policy table's default route through them.
 */
export function attachPolicyDefaultRoutes(
  interfaces: readonly NetInterface[],
  rules: readonly Rule[],
  tables: TableRoutes,
): NetInterface[] {
  const ordered = [...rules].sort((a, b) => a.family - b.family || a.priority - b.priority);
  const eligible = new Set(policyCandidates(interfaces));
  return interfaces.map((iface) => {
    if (!eligible.has(iface)) return iface;
    for (const rule of ordered) {
      if (rule.table === undefined) continue;
      const table = rule.table;
      const selected = iface.addresses.some(
        (a) => !isLinkLocal(a.address) && ruleSelects(rule, a.address, a.family),
      );
      if (!selected) continue;
      const best = (tables.get(tableKey({ family: rule.family, table })) ?? [])
        .filter((r) => r.dev === iface.name)
        .sort((a, b) => a.metric - b.metric)[0];
      if (!best) continue;
      return {
        ...iface,
        metric: best.metric,
        ...(best.gateway ? { gateway: best.gateway } : {}),
        policyRoute: { table, from: ruleFrom(rule) },
      };
    }
    return iface;
  });
}
