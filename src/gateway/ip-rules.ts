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
 * Ownership (gatewayOwnership): a kernel rule is linkmux's when its priority is
 * within priority … priority + 2 × MAX_GATEWAY_UPLINKS and it looks up one of the
 * tables tableBase + 1 … tableBase + MAX_GATEWAY_UPLINKS, or it is the suppress
 * rule at exactly `priority` — and it has no selector or action linkmux never
 * sets (not, iif, to, ipproto, goto …). Nothing else is ever deleted.
 *
 * This file only plans: reading the kernel (`ip -j -N`, so a name given to table
 * 4201 in rt_tables cannot hide it), the diff and the apply are the routing
 * room's (routing/apply.ts).
 */
import { isIP } from 'node:net';
import { LinkmuxError } from '../util/errors.js';
import type { Ownership } from '../routing/diff.js';
import { ownsRule } from '../routing/diff.js';
import { renderChange, type KernelRule, type RouteSpec, type RuleSpec } from '../routing/spec.js';
import { MAX_GATEWAY_UPLINKS, type GatewayNumbers, type GatewayPlan } from './plan.js';

/** The main table's id: the suppress rule looks it up. */
const MAIN = 254;

/** The mask of the fwmark rules: linkmux's tag bits (markMask) and the low byte holding the uplink index. */
export function fwmarkMask(numbers: GatewayNumbers): number {
  return (numbers.markMask | 0xff) >>> 0;
}

/** Pure: the rules the plan wants, family 4 then 6, each by priority. */
export function planIpRules(plan: GatewayPlan): RuleSpec[] {
  const { numbers } = plan;
  const perUplink: RuleSpec[] = [];
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
  const out: RuleSpec[] = [];
  for (const family of [4, 6] as const) {
    const mine = perUplink.filter((r) => r.family === family);
    if (mine.length === 0) continue;
    out.push(suppressRule(numbers, family));
    out.push(...mine.sort((a, b) => a.priority - b.priority));
  }
  return out;
}

/** `lookup main suppress_prefixlength 0` at the first priority: the one owned rule outside the tables. */
function suppressRule(numbers: GatewayNumbers, family: 4 | 6): RuleSpec {
  return { priority: numbers.priority, family, table: MAIN, suppressPrefixLength: 0 };
}

/** What the gateway owns, whatever the config that made the kernel's state (see the file comment). */
export function gatewayOwnership(numbers: GatewayNumbers): Ownership {
  return {
    priorities: { first: numbers.priority, last: numbers.priority + 2 * MAX_GATEWAY_UPLINKS },
    tables: { first: numbers.tableBase + 1, last: numbers.tableBase + MAX_GATEWAY_UPLINKS },
    selectors: ['from', 'fwmark', 'suppress'],
    exact: [suppressRule(numbers, 4), suppressRule(numbers, 6)],
  };
}

export function isOwnedRule(r: KernelRule, numbers: GatewayNumbers): boolean {
  return ownsRule(gatewayOwnership(numbers), r);
}

/** Pure: one default route per uplink, in its own table, in the family of its gateway. */
export function planRoutes(plan: GatewayPlan): RouteSpec[] {
  return plan.uplinks.map((u) => ({
    family: familyOf(u.gateway, `uplink ${u.name}: gateway`),
    table: u.table,
    dst: 'default',
    dev: u.dev,
    gateway: u.gateway,
  }));
}

export function renderIpRule(rule: RuleSpec): string {
  return renderChange({ kind: 'rule', op: 'add', rule });
}

export function renderRoute(route: RouteSpec): string {
  return renderChange({ kind: 'route', op: 'replace', route });
}

function familyOf(address: string, what: string): 4 | 6 {
  const family = isIP(address);
  if (family === 0) {
    throw new LinkmuxError('LINKMUX_ERR_CONFIG', `gateway: ${what} "${address}" is not an IP address`);
  }
  return family === 6 ? 6 : 4;
}
