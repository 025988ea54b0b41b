/**
 * `linkmux links [--json] [--all]`: the interfaces linkmux sees and whether each
 * can be an uplink (and why not, or why a policy table's default route makes it
 * one). Rows are built by a pure function so the table
 * and the JSON are tested without touching the machine. On Linux it also warns
 * about strict reverse-path filtering, which silently breaks every uplink but the
 * default one (measured: the SYN-ACK arriving on the other uplink is dropped).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { NetInterface } from '../net/interfaces-types.js';
import { discoverInterfaces, uplinkProblem } from '../net/interfaces.js';
import type { BindDeviceSupport } from '../net/bind-device.js';
import type { Runner } from '../util/runner.js';
import { ExecRunner } from '../util/runner.js';

export interface LinkRow {
  name: string;
  state: 'up' | 'down';
  loopback: boolean;
  addresses: string[];
  gateway?: string;
  metric?: number;
  /** The routing table of that default route, when it is not main (a policy table). */
  table?: number;
  /** Why a policy-table default route counts: "default route in table 101 (rule from 198.18.1.2)". */
  route?: string;
  usable: boolean;
  /** Why the interface is not usable as an uplink. */
  reason?: string;
}

export interface LinksDeps {
  runner?: Runner;
  platform?: NodeJS.Platform;
  write?: (text: string) => void;
  bindSupport?: () => BindDeviceSupport;
  /** Reads /proc/sys/net/ipv4/conf/<dev>/rp_filter; undefined when unreadable. */
  readRpFilter?: (dev: string) => number | undefined;
}

export function registerLinks(program: Command, deps: LinksDeps = {}): void {
  program
    .command('links')
    .description('list network interfaces and whether each can be used as an uplink')
    .option('--json', 'print the list as JSON on stdout')
    .option('--all', 'include loopback and interfaces without an address')
    .action(async (flags: { json?: boolean; all?: boolean }) => {
      const platform = deps.platform ?? process.platform;
      const write = deps.write ?? ((s: string) => void process.stdout.write(s));
      const interfaces = await discoverInterfaces(deps.runner ?? new ExecRunner(), platform);
      const rows = linkRows(interfaces, { all: flags.all ?? false, platform });
      if (flags.json) {
        write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      write(renderLinksTable(rows));
      const warnings = platform === 'linux' ? rpFilterWarnings(rows, deps.readRpFilter ?? readRpFilter) : [];
      const bind = deps.bindSupport
        ? deps.bindSupport()
        : (await import('../net/bind-device.js')).bindDeviceSupport(platform);
      write(linksFooter(rows, platform, bind, warnings));
    });
}

/** Pure: one row per interface; without `all`, loopback and address-less interfaces are left out. */
export function linkRows(
  interfaces: readonly NetInterface[],
  opts: { all: boolean; platform: NodeJS.Platform },
): LinkRow[] {
  return interfaces
    .filter((i) => opts.all || (!i.loopback && i.addresses.length > 0))
    .map((i) => {
      const reason = uplinkProblem(i, opts.platform);
      return {
        name: i.name,
        state: i.up ? 'up' : 'down',
        loopback: i.loopback,
        addresses: i.addresses.map((a) => `${a.address}/${a.prefixLength}`),
        ...(i.gateway !== undefined ? { gateway: i.gateway } : {}),
        ...(i.metric !== undefined ? { metric: i.metric } : {}),
        ...(i.policyRoute !== undefined
          ? {
              table: i.policyRoute.table,
              route: `default route in table ${i.policyRoute.table} (rule from ${i.policyRoute.from})`,
            }
          : {}),
        usable: reason === undefined,
        ...(reason !== undefined ? { reason } : {}),
      };
    });
}

/** Pure: the rows as an aligned text table. */
export function renderLinksTable(rows: readonly LinkRow[]): string {
  const header = ['INTERFACE', 'STATE', 'ADDRESSES', 'GATEWAY', 'METRIC', 'USABLE'];
  const cells = rows.map((r) => [
    r.name,
    r.state,
    r.addresses.join(',') || '-',
    r.gateway ?? '-',
    r.metric === undefined ? '-' : String(r.metric),
    r.usable ? (r.route ? `yes, ${r.route}` : 'yes') : `no (${r.reason})`,
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c]?.length ?? 0)));
  const line = (row: string[]) =>
    row
      .map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[header, ...cells].map(line).join('\n')}\n`;
}

/**
 * Pure: with two or more usable uplinks, the ones whose effective rp_filter
 * (the larger of `all` and the device's own) is 1 (strict) get a warning.
 */
export function rpFilterWarnings(
  rows: readonly LinkRow[],
  read: (dev: string) => number | undefined,
): string[] {
  const usable = rows.filter((r) => r.usable);
  if (usable.length < 2) return [];
  const all = read('all') ?? 0;
  const strict = usable.filter((r) => Math.max(all, read(r.name) ?? 0) === 1).map((r) => r.name);
  if (strict.length === 0) return [];
  const settings = ['all', ...strict].map((d) => `net.ipv4.conf.${d}.rp_filter=2`).join(' ');
  return [
    `warning: strict reverse-path filtering (rp_filter=1) on ${strict.join(', ')} drops replies that arrive ` +
      `on an uplink other than the default one; set it to loose (sysctl -w ${settings}) or install ` +
      'policy rules with `linkmux route setup --apply`',
  ];
}

function readRpFilter(dev: string): number | undefined {
  try {
    const n = Number(readFileSync(`/proc/sys/net/ipv4/conf/${dev}/rp_filter`, 'utf8').trim());
    return Number.isInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function linksFooter(
  rows: readonly LinkRow[],
  platform: NodeJS.Platform,
  bind: BindDeviceSupport,
  warnings: readonly string[],
): string {
  const lines: string[] = [...warnings];
  if (rows.length === 0) lines.push('no interfaces with an address (run with --all to see every interface)');
  if (platform !== 'linux') {
    lines.push(`on ${platform} gateways and metrics are not known; links bind their source address`);
  } else if (bind.available) {
    lines.push('links are bound to their interface with SO_BINDTODEVICE');
  } else {
    lines.push(
      `SO_BINDTODEVICE unavailable (${bind.reason}): links bind their source address; ` +
        'install policy rules with `linkmux route setup --apply`',
    );
  }
  lines.push('use an interface with: linkmux get --link <interface|address> URL');
  return `\n${lines.join('\n')}\n`;
}
