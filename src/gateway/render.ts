/**
 * The gateway plan as kernel input: the nft ruleset that places new LAN
 * connections on uplinks, and the dry-run text that shows it with the routes
 * and ip rules (ip-rules.ts) that carry the placement out.
 *
 * Data path (linkmux itself is not in it):
 *   LAN host ─ lan0 ─ prerouting: mark by rule or weighted numgen, saved in ct mark
 *     ─ ip rule "fwmark MARK lookup TABLE" ─ table: default via the uplink's gateway
 *     ─ postrouting: masquerade ─ wanN
 *
 * Guarantees: pure and deterministic (same plan, same text: config order,
 * tabs, one trailing newline); the ruleset replaces table inet linkmux in one
 * nft transaction whether or not it exists, so applying it twice leaves the
 * same state; config text reaches nft only after validation (addresses
 * reparsed, interface names checked, comments stripped of control characters).
 */
import { isIP } from 'node:net';
import { LinkmuxError } from '../util/errors.js';
import { parseCidr } from '../net/address.js';
import { networkOf } from '../net/network-of.js';
import { smoothSequence } from '../scheduler/smooth-wrr.js';
import {
  NFT_FAMILY,
  NFT_TABLE,
  hex,
  type GatewayPlan,
  type GatewayRule,
  type PlannedUplink,
} from './plan.js';
import { planIpRules, planRoutes, renderIpRule, renderRoute } from './ip-rules.js';

const TABLE = `${NFT_FAMILY} ${NFT_TABLE}`;

/** The whole `nft -f -` input. */
export function renderRuleset(plan: GatewayPlan): string {
  if (plan.lan.length === 0) {
    throw new LinkmuxError('LINKMUX_ERR_CONFIG', 'gateway: name at least one LAN interface in gateway.lan');
  }
  const lan = nftSet(dedupe(plan.lan.map((name) => quoteIfname(name, 'lan interface'))));
  const { markBase, markMask } = plan.numbers;
  const lines = [
    `# linkmux gateway ruleset, generated: replaces table ${TABLE} in one transaction`,
    `# (the empty "table" first makes the "delete" succeed when the table is absent).`,
    ...plan.uplinks.map((u) => `# ${describe(u, plan)}`),
    `table ${TABLE} {}`,
    `delete table ${TABLE}`,
    `table ${TABLE} {`,
    '\tchain prerouting {',
    '\t\ttype filter hook prerouting priority mangle; policy accept;',
    `\t\tiifname != ${lan} return`,
    '\t\t# a connection placed earlier keeps its uplink',
    `\t\tct mark and ${hex(markMask)} == ${hex(markBase)} meta mark set ct mark return`,
    '\t\t# connections older than linkmux stay on the main table',
    '\t\tct state != new return',
    ...plan.rules.flatMap((rule, i) => renderRule(plan, rule, i + 1)),
    ...renderBalance(plan),
    '\t}',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    '\t\t# forwarded LAN traffic leaves with the address of its uplink',
    ...dedupe(
      plan.uplinks.map(
        (u) =>
          `\t\tmeta nfproto ${nfproto(gatewayFamily(u))} iifname ${lan} oifname ${quoteIfname(u.dev, 'uplink interface')} masquerade`,
      ),
    ),
    '\t}',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

/** Removes table inet linkmux; succeeds whether or not it exists. */
export function renderCleanupRuleset(): string {
  return [
    `# linkmux gateway cleanup: removes table ${TABLE} (the empty "table" first makes this succeed when absent)`,
    `table ${TABLE} {}`,
    `delete table ${TABLE}`,
    '',
  ].join('\n');
}

/** For `linkmux gateway --dry-run`: the ruleset, the routes and the ip rules, as a shell script. */
export function renderDryRun(plan: GatewayPlan): string {
  const byTable = new Map(plan.uplinks.map((u) => [u.table, u]));
  const lines = [
    '# linkmux gateway --dry-run: nothing was changed. Applying would run:',
    '# 1. the nft ruleset (one transaction)',
    "nft -f - <<'EOF'",
    renderRuleset(plan).trimEnd(),
    'EOF',
    '# 2. per uplink a routing table with a default route via its gateway',
    ...planRoutes(plan).map(renderRoute),
    '# 3. ip rules (rules already present are kept; other linkmux rules are deleted)',
  ];
  let last: number | undefined;
  for (const rule of planIpRules(plan)) {
    const main = rule.suppressPrefixLength !== undefined;
    const u = main ? undefined : byTable.get(rule.table);
    if (main) {
      lines.push(
        `# IPv${rule.family}: the main table's specific routes (LAN subnets) before the uplinks' default routes`,
      );
    } else if (u && rule.table !== last) {
      const own = u.address !== undefined ? ` and traffic from ${u.address}` : '';
      lines.push(`# ${comment(`${u.name}: connections marked ${hex(u.mark)}${own}`)}`);
    }
    last = rule.table;
    lines.push(renderIpRule(rule));
  }
  return `${lines.join('\n')}\n`;
}

function describe(u: PlannedUplink, plan: GatewayPlan): string {
  const total = plan.uplinks
    .filter((x) => gatewayFamily(x) === gatewayFamily(u))
    .reduce((a, x) => a + x.slots, 0);
  const state = !u.online
    ? 'offline'
    : u.slots > 0
      ? `online, ${u.slots}/${total} of new connections`
      : 'online';
  return comment(
    `uplink ${u.name}: dev ${u.dev} via ${u.gateway}, mark ${hex(u.mark)}, table ${u.table}, ${state}`,
  );
}

function renderRule(plan: GatewayPlan, rule: GatewayRule & { active: boolean }, n: number): string[] {
  const { family, text } = renderMatch(rule, n);
  if (rule.action.kind === 'bypass') {
    return [`\t\t# rule ${n}: bypass (the main table routes it)`, `\t\t${text} return`];
  }
  const name = rule.action.name;
  const u = plan.uplinks.find((x) => x.name === name);
  if (!u) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONFIG',
      `gateway: rule ${n} names uplink "${name}", which is not configured`,
    );
  }
  const uplinkFamily = gatewayFamily(u);
  if (family !== undefined && family !== uplinkFamily) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONFIG',
      `gateway: rule ${n} matches IPv${family} traffic but uplink ${name} routes IPv${uplinkFamily}: ` +
        'send it to an uplink of the same family, or bypass',
    );
  }
  const guard = family === undefined ? `meta nfproto ${nfproto(uplinkFamily)} ` : '';
  const body = `${guard}${text} meta mark set ${hex(u.mark)} ct mark set meta mark return`;
  if (!rule.active) {
    return [`\t\t# rule ${n}: uplink ${comment(name)}, inactive while it is offline:`, `\t\t# ${body}`];
  }
  return [`\t\t# rule ${n}: uplink ${comment(name)}`, `\t\t${body}`];
}

function renderMatch(rule: GatewayRule, n: number): { family: 4 | 6 | undefined; text: string } {
  const parts: string[] = [];
  let family: 4 | 6 | undefined;
  const address = (cidrText: string, dir: 'saddr' | 'daddr', what: string) => {
    const cidr = parseCidr(cidrText.trim());
    if (!cidr) {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONFIG',
        `gateway: rule ${n}: ${what} "${cidrText}" is not a network`,
      );
    }
    if (family !== undefined && family !== cidr.family) {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONFIG',
        `gateway: rule ${n} mixes IPv4 and IPv6 in source and destination: no packet matches both; split it`,
      );
    }
    family = cidr.family;
    parts.push(
      `${family === 6 ? 'ip6' : 'ip'} ${dir} ${networkOf(cidr.address, cidr.prefix)}/${cidr.prefix}`,
    );
  };
  const { source, destination, port } = rule.match;
  if (source !== undefined) address(source, 'saddr', 'source');
  if (destination !== undefined) address(destination, 'daddr', 'destination');
  if (port !== undefined) parts.push(`meta l4proto { tcp, udp } th dport ${portText(port, n)}`);
  if (parts.length === 0) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONFIG',
      `gateway: rule ${n} matches nothing: give a source, destination or port`,
    );
  }
  return { family, text: parts.join(' ') };
}

function renderBalance(plan: GatewayPlan): string[] {
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    const online = plan.uplinks.filter((u) => u.slots > 0 && gatewayFamily(u) === family);
    if (online.length === 0) continue;
    const guard = `meta nfproto ${nfproto(family)}`;
    const [only] = online;
    if (online.length === 1 && only) {
      out.push(
        `\t\t# new IPv${family} connections: all to ${comment(only.name)}, the only online uplink`,
        `\t\t${guard} meta mark set ${hex(only.mark)} ct mark set meta mark`,
      );
      continue;
    }
    const total = online.reduce((a, u) => a + u.slots, 0);
    // Interleaved, not in blocks: a burst of new connections spreads over every uplink at once.
    const entries = smoothSequence(online.map((u) => u.slots)).map(
      (i, n) => `${n} : ${hex(online[i]!.mark)}`,
    );
    const shares = online.map((u) => `${comment(u.name)} ${u.slots}/${total}`).join(', ');
    out.push(
      `\t\t# new IPv${family} connections: weighted round-robin, ${shares}`,
      `\t\t${guard} meta mark set numgen inc mod ${total} map { ${entries.join(', ')} } ct mark set meta mark`,
    );
  }
  if (out.length === 0) out.push('\t\t# no uplink online: new connections use the main table');
  return out;
}

function portText(port: number | string, n: number): string {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(String(port).trim());
  const lo = Number(m?.[1]);
  const hi = Number(m?.[2] ?? m?.[1]);
  if (!m || lo < 1 || hi > 65535 || lo > hi) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONFIG',
      `gateway: rule ${n}: port "${String(port)}" is not a port (1-65535) or a range like 8000-8999`,
    );
  }
  return lo === hi ? `${lo}` : `${lo}-${hi}`;
}

/** Linux interface names: 1-15 bytes, no "/", ":", whitespace or quotes. */
function quoteIfname(name: string, what: string): string {
  if (!/^[\x21-\x7e]{1,15}$/.test(name) || /[/:"'\\]/.test(name) || name === '.' || name === '..') {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONFIG',
      `gateway: ${what} ${JSON.stringify(name)} is not an interface name`,
    );
  }
  return `"${name}"`;
}

function gatewayFamily(u: PlannedUplink): 4 | 6 {
  const family = isIP(u.gateway);
  if (family === 0) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONFIG',
      `gateway: uplink ${u.name}: gateway "${u.gateway}" is not an IP address`,
    );
  }
  return family === 6 ? 6 : 4;
}

function nfproto(family: 4 | 6): string {
  return family === 6 ? 'ipv6' : 'ipv4';
}

function nftSet(items: readonly string[]): string {
  return `{ ${items.join(', ')} }`;
}

/** Comment text stays on its line: a newline in a name must not end the comment and become a rule. */
function comment(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

function dedupe(items: readonly string[]): string[] {
  return [...new Set(items)];
}
