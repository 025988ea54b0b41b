/**
 * The testbed variant whose machines have NO default route in the main table:
 * each uplink's default route lives in a table of its own, which one rule selects
 * for the uplink's address, as on hosts set up for source routing by hand:
 *
 *   ip rule add from 198.18.<i+1>.2 lookup <201+i> priority <5000+i>
 *   ip route replace default via 198.18.<i+1>.1 dev up<i> table <201+i>
 *
 * So only traffic whose source is an uplink's address gets out at all; a socket
 * bound to a device but not to its address finds no route (the bug this variant
 * exists to catch). Pure: commands only, run by testbed.ts.
 *
 * Table and priority ranges stay clear of `linkmux route setup`'s defaults
 * (tables 100–163, priorities 10000–10063) and of the gateway's (4200…).
 */
import { LinkmuxError } from '../util/errors.js';
import type { Command } from './commands.js';
import type { RouteState, TopologyPlan, UplinkPlan } from './topology-types.js';

export const POLICY_TABLE_BASE = 201;
export const POLICY_PRIORITY_BASE = 5000;

/** The routing table holding uplink `index`'s default route. */
export function policyTableOf(index: number): number {
  return POLICY_TABLE_BASE + index;
}

const ip = (...args: string[]): Command => ({ cmd: 'ip', args });

/** One `ip rule from ADDR lookup TABLE` per uplink, in the namespace of the machine owning it. */
export function policyRuleCommands(plan: TopologyPlan): Command[] {
  return plan.uplinks.map((u) =>
    ip(
      '-n',
      u.hostNs,
      'rule',
      'add',
      'from',
      u.address,
      'lookup',
      String(policyTableOf(u.index)),
      'priority',
      String(POLICY_PRIORITY_BASE + u.index),
    ),
  );
}

/**
 * The policy variant of topology.ts `routeCommands`: every uplink's default route,
 * in its own table, put back or (admin down) deleted; the rules are left alone
 * (they do not depend on the device). ECMP has no meaning here and is refused.
 */
export function policyRouteCommands(plan: TopologyPlan, state: RouteState): Command[] {
  if (state.ecmp) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      'testbed: ECMP needs main-table default routes; it is not available with policyTables',
    );
  }
  return plan.uplinks.map((u: UplinkPlan) => {
    const table = ['table', String(policyTableOf(u.index))];
    return state.down.has(u.index)
      ? ip('-n', u.hostNs, 'route', 'del', 'default', ...table)
      : ip('-n', u.hostNs, 'route', 'replace', 'default', 'via', u.gateway, 'dev', u.dev, ...table);
  });
}
