/**
 * The gateway's side effects, all through one Runner (ip, nft, conntrack,
 * sysctl), so tests swap in a fake and compare what would run:
 *
 *   preflight()  read-only checks; every problem is reported at once, before anything changes
 *                (check(): the same findings as data; a dry run needs no nft, conntrack or forwarding)
 *   apply(plan)  routes and ip rules through the routing room (routing/apply.ts: read with
 *                ip -N, diff, run: routes replaced, missing rules added, ours not wanted deleted)
 *                → nft table (atomic replace, skipped when the text is what we applied last)
 *   cleanup()    removes the nft table, every rule linkmux owns and the routes of its tables;
 *                works after a crash (it finds ours by number range, whatever the old config)
 *   flush(mark)  deletes the conntrack entries pinned to an uplink that went offline
 *
 * Guarantees: apply() with the state already in place runs no command that
 * changes anything; a failed apply() cleans up what it added and rethrows, so
 * nothing is left half-applied; rules, routes and tables outside linkmux's
 * ranges are never touched.
 */
import net from 'node:net';
import { LinkmuxError, describe } from '../util/errors.js';
import type { Runner } from '../util/runner.js';
import type { NetInterface } from '../net/interfaces-types.js';
import type { GatewayNumbers, GatewayPlan, UplinkDecl } from './plan.js';
import { hex } from './plan.js';
import { renderCleanupRuleset, renderRuleset } from './render.js';
import { fwmarkMask, gatewayOwnership, isOwnedRule, planIpRules, planRoutes } from './ip-rules.js';
import { applyRouting, removeRouting } from '../routing/apply.js';
import { inRange } from '../routing/diff.js';
import { readRouting } from '../routing/reader.js';
import type { RoutingState } from '../routing/spec.js';

export interface UplinkCounters {
  rxBytes: number;
  txBytes: number;
  ifindex?: number;
}

export class GatewayKernel {
  private lastRuleset: string | undefined;

  constructor(
    private readonly runner: Runner,
    private readonly numbers: GatewayNumbers,
  ) {}

  /**
   * Read-only checks before the first change: the tools exist, every interface
   * exists, each gateway is on its uplink's subnet, this machine forwards, and
   * no one else uses linkmux's marks, tables or rule priorities. Throws one
   * error listing every problem (gatewayRefusal); returns the warnings.
   */
  async preflight(
    uplinks: readonly UplinkDecl[],
    lan: readonly string[],
    interfaces: readonly NetInterface[],
  ): Promise<string[]> {
    const report = await this.check(uplinks, lan, interfaces);
    if (report.problems.length > 0 || report.missingTools.length > 0) throw gatewayRefusal(report);
    return report.warnings;
  }

  /**
   * The preflight's findings, without throwing. With `dryRun` (nothing will be
   * changed) the tools that only a real run uses (nft, conntrack, sysctl) and
   * IPv4 forwarding are warnings, not problems.
   */
  async check(
    uplinks: readonly UplinkDecl[],
    lan: readonly string[],
    interfaces: readonly NetInterface[],
    opts: { dryRun?: boolean } = {},
  ): Promise<PreflightReport> {
    const problems: string[] = [];
    const missingTools: string[] = [];
    const warnings: string[] = [];
    for (const dev of lan) {
      if (!interfaces.some((i) => i.name === dev))
        problems.push(
          `lan interface ${dev} does not exist (${names(interfaces)}): fix its name in gateway.lan`,
        );
    }
    for (const u of uplinks) {
      const iface = interfaces.find((i) => i.name === u.dev);
      if (!iface) {
        problems.push(
          `uplink ${u.name}: interface ${u.dev} does not exist (${names(interfaces)}): fix its name in gateway.uplinks`,
        );
        continue;
      }
      if (!onSubnet(iface, u.gateway)) {
        const subnets =
          iface.addresses.map((a) => `${a.address}/${a.prefixLength}`).join(', ') || 'no address';
        problems.push(
          `uplink ${u.name}: gateway ${u.gateway} is not on ${u.dev}'s subnet (${subnets}): give the next hop of that interface`,
        );
      }
    }
    problems.push(...(await this.foreignUse(uplinks.length)));
    // What only a real run needs: a dry run reports it as a warning and goes on.
    const later = opts.dryRun ? (w: string) => warnings.push(`a real run needs this: ${w}`) : undefined;
    const tool = (missing: string) => (later ? later(missing) : missingTools.push(missing));
    for (const cmd of ['nft', 'conntrack']) {
      const missing = await this.missingTool(cmd);
      if (missing !== undefined) tool(missing);
    }
    let forward: string | undefined;
    try {
      forward = (await this.runner.run('sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim();
    } catch (err) {
      tool(describe(err)); // sysctl itself is missing (procps)
    }
    if (forward !== undefined && forward !== '1') {
      const text =
        'this machine does not forward IPv4 (net.ipv4.ip_forward = 0), so it is no router: enable it with ' +
        '`sysctl -w net.ipv4.ip_forward=1` (and in /etc/sysctl.conf)';
      if (later) later(text);
      else problems.push(text);
    }
    if (forward !== undefined) warnings.push(...(await this.warnings(uplinks)));
    return { problems, missingTools, warnings };
  }

  /** Settings that work against a multi-WAN router without being errors: strict reverse-path filtering. */
  private async warnings(uplinks: readonly UplinkDecl[]): Promise<string[]> {
    const read = async (key: string) =>
      Number((await this.runner.run('sysctl', ['-n', key]).catch(() => ({ stdout: '0' }))).stdout.trim());
    const all = await read('net.ipv4.conf.all.rp_filter');
    const out: string[] = [];
    for (const u of uplinks) {
      if (Math.max(all, await read(`net.ipv4.conf.${u.dev}.rp_filter`)) === 1) {
        out.push(
          `strict reverse-path filtering (rp_filter = 1) on ${u.dev} drops replies that come back on an uplink ` +
            `other than the main table's: set it loose, \`sysctl -w net.ipv4.conf.${u.dev}.rp_filter=2\` ` +
            `(and net.ipv4.conf.all.rp_filter=2)`,
        );
      }
    }
    return out;
  }

  /** Brings the kernel to `plan`; on failure removes what linkmux has and rethrows. */
  async apply(plan: GatewayPlan): Promise<void> {
    try {
      await applyRouting(
        this.runner,
        { rules: planIpRules(plan), routes: planRoutes(plan) },
        gatewayOwnership(this.numbers),
      );
      const ruleset = renderRuleset(plan);
      if (ruleset !== this.lastRuleset) {
        await this.runner.run('nft', ['-f', '-'], { input: ruleset });
        this.lastRuleset = ruleset;
      }
    } catch (err) {
      this.lastRuleset = undefined;
      await this.cleanup().catch(() => {});
      throw new LinkmuxError(
        'LINKMUX_ERR_COMMAND_FAILED',
        `applying the gateway's rules failed, so everything linkmux added was removed again: ${describe(err)}`,
        { cause: err },
      );
    }
  }

  /** Removes linkmux's table, rules and routes; touches nothing else. Safe to run twice. */
  async cleanup(): Promise<void> {
    this.lastRuleset = undefined;
    const errors: string[] = [];
    const attempt = async (cmd: string, args: string[], input?: string) => {
      try {
        await this.runner.run(cmd, args, input !== undefined ? { input } : {});
      } catch (err) {
        errors.push(describe(err));
      }
    };
    await attempt('nft', ['-f', '-'], renderCleanupRuleset());
    try {
      await removeRouting(this.runner, gatewayOwnership(this.numbers));
    } catch (err) {
      errors.push(describe(err));
    }
    if (errors.length > 0) {
      throw new LinkmuxError('LINKMUX_ERR_COMMAND_FAILED', `cleanup was incomplete: ${errors.join('; ')}`);
    }
  }

  /** Deletes the conntrack entries marked for an uplink, so their clients' retries land on live ones. */
  async flush(mark: number): Promise<number> {
    try {
      // MARK/MASK matches (ctmark & MASK) == MARK: the mask must cover the uplink's own bits, or every uplink matches.
      const r = await this.runner.run('conntrack', ['-D', '--mark', `${mark}/${fwmarkMask(this.numbers)}`]);
      return flowCount(r.stderr + r.stdout);
    } catch (err) {
      // conntrack exits 1 when nothing matched: not an error here.
      if (/0 flow entries/.test(describe(err))) return 0;
      throw err;
    }
  }

  /** linkmux's connections in conntrack: how many per mark, and their ids (to count new ones). */
  async connections(): Promise<{ byMark: Map<number, number>; ids: Set<string> }> {
    const byMark = new Map<number, number>();
    const ids = new Set<string>();
    let text: string;
    try {
      text = (await this.runner.run('conntrack', ['-L', '-o', 'id'])).stdout;
    } catch {
      return { byMark, ids };
    }
    for (const line of text.split('\n')) {
      const mark = Number(/\bmark=(\d+)/.exec(line)?.[1]);
      if (!Number.isInteger(mark) || (mark & this.numbers.markMask) !== this.numbers.markBase) continue;
      byMark.set(mark, (byMark.get(mark) ?? 0) + 1);
      const id = /\bid=(\d+)/.exec(line)?.[1];
      if (id) ids.add(id);
    }
    return { byMark, ids };
  }

  /** Kernel byte counters of each device (`ip -s`). */
  async counters(): Promise<Map<string, UplinkCounters>> {
    const json = JSON.parse((await this.runner.run('ip', ['-j', '-s', 'link', 'show'])).stdout) as Array<{
      ifindex?: number;
      ifname: string;
      stats64?: { rx?: { bytes?: number }; tx?: { bytes?: number } };
    }>;
    return new Map(
      json.map((l) => [
        l.ifname,
        {
          rxBytes: l.stats64?.rx?.bytes ?? 0,
          txBytes: l.stats64?.tx?.bytes ?? 0,
          ...(typeof l.ifindex === 'number' ? { ifindex: l.ifindex } : {}),
        },
      ]),
    );
  }

  /** Why `cmd --version` fails (not installed, says the runner), or undefined when it runs. */
  private async missingTool(cmd: string): Promise<string | undefined> {
    try {
      await this.runner.run(cmd, ['--version']);
      return undefined;
    } catch (err) {
      return describe(err);
    }
  }

  private isOurTable(table: number | undefined): boolean {
    return inRange(gatewayOwnership(this.numbers).tables, table);
  }

  /** Marks, tables or priorities of linkmux's ranges in use by rules or routes linkmux does not own. */
  private async foreignUse(count: number): Promise<string[]> {
    const problems: string[] = [];
    const { markBase, markMask, tableBase, priority } = this.numbers;
    const state: RoutingState = await readRouting(this.runner);
    const owned = state.rules.filter((r) => isOwnedRule(r, this.numbers));
    for (const r of state.rules) {
      if (owned.includes(r)) continue;
      const mark = r.fwmark?.mark;
      const table = r.table;
      if (mark !== undefined && (mark & markMask) === markBase) {
        problems.push(
          `ip rule ${r.priority} already uses fwmark ${hex(mark)}, in linkmux's marks (${hex(markBase)}/${hex(markMask)}): set gateway.markBase`,
        );
      } else if (table !== undefined && this.isOurTable(table) && table <= tableBase + count) {
        problems.push(
          `ip rule ${r.priority} already looks up table ${table}, one of linkmux's: set gateway.tableBase`,
        );
      } else if (r.priority >= priority && r.priority <= priority + 2 * count) {
        problems.push(
          `ip rule priority ${r.priority} is taken, and linkmux needs ${priority}–${priority + 2 * count}: set gateway.priority`,
        );
      }
    }
    const ownedTables = new Set(owned.map((r) => r.table));
    const usedTables = new Set(state.routes.map((r) => `${r.family}/${r.table}`));
    for (const key of [...usedTables].sort()) {
      const table = Number(key.split('/')[1]);
      if (table > tableBase && table <= tableBase + count && !ownedTables.has(table)) {
        problems.push(
          `routing table ${table} already has routes that linkmux did not add: set gateway.tableBase`,
        );
      }
    }
    return problems;
  }
}

export interface PreflightReport {
  /** Config and kernel problems, each with its own fix. */
  problems: string[];
  /** Tools that are missing (each message names the package to install). */
  missingTools: string[];
  warnings: string[];
}

/**
 * One error listing every problem at once. Its code: LINKMUX_ERR_COMMAND_FAILED
 * when a tool is missing (no config change can fix that), else LINKMUX_ERR_CONFIG.
 */
export function gatewayRefusal(report: Pick<PreflightReport, 'problems' | 'missingTools'>): LinkmuxError {
  const all = [...report.missingTools, ...report.problems];
  const text = all.length === 1 ? all[0] : `\n  - ${all.join('\n  - ')}`;
  return new LinkmuxError(
    report.missingTools.length > 0 ? 'LINKMUX_ERR_COMMAND_FAILED' : 'LINKMUX_ERR_CONFIG',
    `gateway: nothing was changed, because: ${text}`,
  );
}

function names(interfaces: readonly NetInterface[]): string {
  return `interfaces here: ${interfaces.map((i) => i.name).join(', ') || 'none'}`;
}

/** True when `gateway` is inside one of the interface's subnets. */
function onSubnet(iface: NetInterface, gateway: string): boolean {
  const family = net.isIP(gateway);
  return iface.addresses.some((a) => {
    if (a.family !== family) return false;
    const list = new net.BlockList();
    list.addSubnet(a.address, a.prefixLength, family === 4 ? 'ipv4' : 'ipv6');
    return list.check(gateway, family === 4 ? 'ipv4' : 'ipv6');
  });
}

function flowCount(text: string): number {
  return Number(/(\d+) flow entries/.exec(text)?.[1] ?? 0);
}
