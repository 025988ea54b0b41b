/**
 * The planner of `linkmux route setup`: policy routing for source-address
 * binding on Linux, one routing table per uplink and one `ip rule from ADDR`
 * per address, so a socket bound to an uplink's address leaves through that
 * uplink (without a rule, the kernel sends it out of the main table's default
 * interface, with the wrong source address).
 *
 * Data path:  socket bound to 198.18.2.2 ─ rule "from 198.18.2.2 table 101" ─
 *             table 101: default via 198.18.2.1 dev u2 ─> out of u2
 *
 * Ownership: linkmux owns the tables tableBase … tableBase+63 and the rules
 * whose priority is in priorityBase … priorityBase+63 AND whose table is one of
 * those (and that select only by source). Guarantees: `plan` is pure; `apply`
 * and `remove` are the routing room's (routing/apply.ts): apply changes only
 * what differs (running it twice changes nothing the second time, stale rules
 * of earlier runs go); `remove` deletes only what linkmux owns and is a no-op
 * the second time. Both read the kernel with `ip -N`, so a table that has a
 * name in rt_tables is still found.
 */
import net from 'node:net';
import { LinkmuxError } from '../util/errors.js';
import type { Runner } from '../util/runner.js';
import { applyRouting, removeRouting } from '../routing/apply.js';
import type { Ownership } from '../routing/diff.js';
import {
  changeArgs,
  hostLength,
  ruleArgs,
  routeArgs,
  type RouteSpec,
  type RuleSpec,
} from '../routing/spec.js';
import { networkOf } from './network-of.js';
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

export interface PolicyPlan {
  readonly tableBase: number;
  readonly priorityBase: number;
  readonly rules: RuleSpec[];
  readonly routes: RouteSpec[];
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
  const rules: RuleSpec[] = [];
  const routes: RouteSpec[] = [];
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
    const mine: RouteSpec[] = [];
    const nets = new Set<string>();
    for (const a of addresses) {
      const dst = `${networkOf(a.address, a.prefixLength)}/${a.prefixLength}`;
      if (nets.has(dst) || a.prefixLength === (family === 4 ? 32 : 128)) continue;
      nets.add(dst);
      mine.push({ family, dst, dev: iface.name, table, src: a.address });
    }
    mine.push({ family, dst: 'default', dev: iface.name, table, gateway });
    const myRules = addresses.map((a): RuleSpec => ({
      family,
      priority,
      from: `${a.address}/${hostLength(family)}`,
      table,
    }));
    routes.push(...mine);
    rules.push(...myRules);
    sections.push({
      comment: `# ${iface.name}: ${addresses.map((a) => a.address).join(', ')} via ${gateway} -> table ${table}`,
      // Routes before rules, so a rule never points at an empty table.
      commands: [...mine.map((r) => routeArgs('replace', r)), ...myRules.map((r) => ruleArgs('add', r))],
    });
  }
  const commands = sections.flatMap((s) => s.commands);
  const owned = policyOwnership({ tableBase, priorityBase });

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
      return (await applyRouting(runner, { rules, routes }, owned)).map(changeArgs);
    },
    async remove(runner) {
      return (await removeRouting(runner, owned)).map(changeArgs);
    },
  };
}

/** What route setup owns: its tables and priorities, rules that select by source only. */
export function policyOwnership(opts: PolicyOptions = {}): Ownership {
  const { tableBase, priorityBase } = validatePolicyOptions(opts);
  return {
    priorities: { first: priorityBase, last: priorityBase + POLICY_SPAN - 1 },
    tables: { first: tableBase, last: tableBase + POLICY_SPAN - 1 },
    selectors: ['from'],
  };
}

function shellLine(args: readonly string[]): string {
  return ['ip', ...args].join(' ');
}
