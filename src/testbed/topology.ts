/**
 * The netns testbed's topology as data: pure functions from options to the exact
 * `ip`/`tc`/`nft`/`sysctl` commands that build, change and remove it. Nothing here
 * runs anything, so unit tests compare the plan with expected text.
 *
 *   client ns                 ISP ns i (one per uplink)          server ns
 *   up<i> 198.18.<i+1>.2/24 ── cl 198.18.<i+1>.1/24
 *   (TBF egress)               (TBF egress toward the client)
 *                              sv 198.19.0.<i+1>/24 ── isp<i> ─ br0 198.19.0.10/24
 *                              forward + masquerade out of sv
 *
 * The client looks like a real multi-homed host: one default route per uplink with
 * metrics 100, 101, … and no source rules, so unbound traffic (the system resolver's
 * too) leaves through up0. The ISPs silently drop whatever is addressed outside
 * 198.18.0.0/15 (1.1.1.1, 8.8.8.8, …): a probe there times out, nothing leaves.
 * Each ISP drops client packets whose source is not its own client subnet, as real
 * ISPs do (BCP 38): binding only a source address does not pick an uplink here either.
 *
 * Optionally a LAN of several machines (one bridge, like a home switch):
 *
 *   bridge ns "l": bridge lan ── lan0 of each machine and LAN host, 198.18.100.0/24
 *   client "c" .1 (machine 0)    node "n<k>" .(1+k)    LAN host "h<k>" .(100+k)
 *
 * Each uplink lives in the machine that owns it (`machines` option), keeping its name
 * up<i> and address; every machine gets default routes through its own uplinks only.
 * LAN hosts have no uplink: their default route is the client (then a gateway, with
 * ip_forward on but no NAT, which the product under test or `gatewayMasqueradeCommands`
 * adds; un-NATed LAN sources are dropped by the ISPs' BCP 38 filter).
 * With `policyTables`, no machine has a main-table default route: each uplink's
 * lives in a table of its own, selected by `ip rule from <uplink address>` (see
 * policy-tables.ts).
 * Every address is in 198.18.0.0/15; nothing touches the root namespace.
 */
import { LinkmuxError } from '../util/errors.js';
import { ip, nsExec, sysctl, type Command } from './commands.js';
import { policyRouteCommands, policyRuleCommands } from './policy-tables.js';

// Commands and their text live in commands.ts; re-exported for the callers that knew them here.
export { formatCommands, isTolerant, type Command } from './commands.js';

// The plan's types live in topology-types.ts (policy-tables.ts needs them without importing this file).
export type {
  LanHostPlan,
  LanPlan,
  FarServerPlan,
  MachinePlan,
  RouteState,
  TopologyOptions,
  TopologyPlan,
  UplinkPlan,
} from './topology-types.js';
import type {
  FarServerPlan,
  LanPlan,
  RouteState,
  TopologyOptions,
  TopologyPlan,
  UplinkPlan,
  MachinePlan,
  LanHostPlan,
} from './topology-types.js';

export const SERVER_ADDRESS = '198.19.0.10';
/** The far-server host's address (the `farServer` option). */
export const FAR_SERVER_ADDRESS = '198.19.0.20';
export const FAR_SERVER_DEV = 'eth0';
/** Every testbed address is in here; the ISPs drop packets to anything else. */
export const TESTBED_NET = '198.18.0.0/15';
export const MAX_LINKS = 9;
/** Devices inside an ISP namespace: toward the client and toward the server. */
export const ISP_CLIENT_DEV = 'cl';
export const ISP_SERVER_DEV = 'sv';
export const SERVER_BRIDGE = 'br0';
/** The bridge of the LAN namespace, and each machine's and host's device on it. */
export const LAN_BRIDGE = 'lan';
export const LAN_DEV = 'lan0';
export const LAN_SUBNET = '198.18.100.0/24';
export const MAX_LAN_HOSTS = 9;
/** nft table that `gatewayMasqueradeCommands` adds in the client ns. */
export const GATEWAY_MASQ_TABLE = 'lmxtb_masq';
const BASE_METRIC = 100;
const lanAddress = (host: number) => `198.18.100.${host}`;

export function planTopology(opts: TopologyOptions): TopologyPlan {
  const links = opts.links ?? opts.machines?.length ?? 3;
  if (!Number.isInteger(links) || links < 1 || links > MAX_LINKS) {
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `testbed: links must be 1–${MAX_LINKS}, got ${links}`);
  }
  if (!/^[a-z0-9-]{1,24}$/.test(opts.prefix)) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `testbed: prefix must be 1–24 of [a-z0-9-], got "${opts.prefix}"`,
    );
  }
  const given = opts.rateMbit ?? 8;
  const rates: number[] = Array.isArray(given) ? given : Array.from({ length: links }, () => given);
  if (rates.length !== links) {
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `testbed: ${rates.length} rates given for ${links} links`);
  }
  const owners = planOwners(opts.machines, links);
  const hosts = opts.lanHosts ?? 0;
  if (!Number.isInteger(hosts) || hosts < 0 || hosts > MAX_LAN_HOSTS) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `testbed: lanHosts must be 0–${MAX_LAN_HOSTS}, got ${opts.lanHosts}`,
    );
  }
  if (opts.policyTables && hosts > 0) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      'testbed: policyTables cannot be combined with lanHosts (forwarded LAN traffic would match no rule)',
    );
  }
  const machineCount = Math.max(...owners) + 1;
  const hasLan = machineCount > 1 || hosts > 0;
  const machineNs = (k: number) => (k === 0 ? `${opts.prefix}c` : `${opts.prefix}n${k}`);
  const machines = Array.from({ length: machineCount }, (_, k): MachinePlan => ({
    index: k,
    ns: machineNs(k),
    lanAddress: hasLan ? lanAddress(1 + k) : '',
    uplinks: owners.flatMap((m, i) => (m === k ? [i] : [])),
  }));
  const uplinks = rates.map((r, index): UplinkPlan => {
    const rateMbit = r;
    if (!(rateMbit > 0 && rateMbit <= 10000)) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `testbed: rate of link ${index} must be in (0, 10000] Mbit/s`,
      );
    }
    const machine = owners[index] ?? 0;
    return {
      index,
      dev: `up${index}`,
      machine,
      hostNs: machineNs(machine),
      address: `198.18.${index + 1}.2`,
      gateway: `198.18.${index + 1}.1`,
      ispNs: `${opts.prefix}i${index}`,
      rateMbit,
      metric: BASE_METRIC + (machines[machine]?.uplinks.indexOf(index) ?? 0),
      ispServerAddress: `198.19.0.${index + 1}`,
    };
  });
  const lanHosts = Array.from({ length: hosts }, (_, j): LanHostPlan => ({
    index: j + 1,
    ns: `${opts.prefix}h${j + 1}`,
    lanAddress: lanAddress(101 + j),
  }));
  return {
    prefix: opts.prefix,
    clientNs: machineNs(0),
    serverNs: `${opts.prefix}s`,
    serverAddress: SERVER_ADDRESS,
    uplinks,
    machines,
    lanHosts,
    ...(hasLan && {
      lan: { ns: `${opts.prefix}l`, bridge: LAN_BRIDGE, subnet: LAN_SUBNET, gateway: lanAddress(1) },
    }),
    ...(opts.policyTables && { policyTables: true as const }),
    ...(opts.farServer && {
      farServer: {
        ns: `${opts.prefix}f`,
        address: FAR_SERVER_ADDRESS,
        dev: FAR_SERVER_DEV,
        bridgePort: 'far',
      },
    }),
  };
}

/** The machine owning each uplink; node numbers must run 1, 2, … without gaps. */
function planOwners(machines: number[] | undefined, links: number): number[] {
  const owners = machines ?? Array.from({ length: links }, () => 0);
  if (owners.length !== links) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `testbed: ${owners.length} machines given for ${links} links`,
    );
  }
  for (const m of owners) {
    if (!Number.isInteger(m) || m < 0 || m >= MAX_LINKS) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `testbed: machine numbers must be 0–${MAX_LINKS - 1}, got ${m}`,
      );
    }
  }
  for (let k = 1; k <= Math.max(...owners); k++) {
    if (!owners.includes(k)) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `testbed: node machine ${k} owns no uplink; number nodes 1, 2, … without gaps`,
      );
    }
  }
  return owners;
}

/** Machines (client first), LAN hosts, the LAN bridge, the server, the ISPs. */
export function allNamespaces(plan: TopologyPlan): string[] {
  return [
    ...plan.machines.map((m) => m.ns),
    ...plan.lanHosts.map((h) => h.ns),
    ...(plan.lan ? [plan.lan.ns] : []),
    plan.serverNs,
    ...plan.uplinks.map((u) => u.ispNs),
    ...(plan.farServer ? [plan.farServer.ns] : []),
  ];
}

/**
 * TBF at `rateMbit`. The bucket holds ~10 ms of traffic (at least 10 full frames, so
 * GSO bursts on veth do not starve it) and the queue ~50 ms: a single TCP flow then
 * reaches ~95% of the rate without a large standing queue.
 */
export function tbfArgs(rateMbit: number): string[] {
  const bytesPerSec = (rateMbit * 1e6) / 8;
  const burst = Math.max(15000, Math.ceil(bytesPerSec / 100));
  const rate = Number.isInteger(rateMbit) ? `${rateMbit}mbit` : `${Math.round(rateMbit * 1000)}kbit`;
  return ['tbf', 'rate', rate, 'burst', String(burst), 'latency', '50ms'];
}

/**
 * The ISP's ruleset: anti-spoofing on the client side, masquerade toward the server,
 * and a silent drop of everything addressed outside the testbed (198.18.0.0/15). The
 * drop is in prerouting, before the route lookup: without it the ISP, having no route
 * there, would answer "net unreachable" at once, but the scenario the health and DNS
 * tests need is a blocked network where probes to 1.1.1.1 or 8.8.8.8 time out. It also
 * keeps every packet on the machine whatever the routes say.
 */
export function ispRuleset(u: UplinkPlan): string {
  const subnet = `198.18.${u.index + 1}.0/24`;
  return [
    'table ip linkmux_isp {',
    '  chain isp_outside {',
    '    type filter hook prerouting priority raw; policy accept;',
    `    ip daddr != ${TESTBED_NET} counter drop`,
    '  }',
    '  chain isp_forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname "${ISP_CLIENT_DEV}" ip saddr != ${subnet} counter drop`,
    '  }',
    '  chain isp_nat {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${ISP_SERVER_DEV}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Every command that builds the topology, in order. Routes come last: they need their links up. */
export function setupCommands(plan: TopologyPlan): Command[] {
  const { serverNs: s, lan } = plan;
  const cmds: Command[] = [];
  for (const ns of allNamespaces(plan)) cmds.push(ip('netns', 'add', ns));
  for (const ns of allNamespaces(plan)) {
    cmds.push(ip('-n', ns, 'link', 'set', 'lo', 'up'));
    // Replies come back on the uplink they left by, which is not the default route's:
    // strict reverse-path filtering would drop them. Set before devices exist so
    // "default" applies to them.
    cmds.push(sysctl(ns, 'net.ipv4.conf.all.rp_filter=0'), sysctl(ns, 'net.ipv4.conf.default.rp_filter=0'));
  }
  for (const u of plan.uplinks) cmds.push(sysctl(u.ispNs, 'net.ipv4.ip_forward=1'));
  // The client routes for the LAN hosts; NAT is left to the product under test.
  if (plan.lanHosts.length > 0) cmds.push(sysctl(plan.clientNs, 'net.ipv4.ip_forward=1'));

  cmds.push(
    ip('-n', s, 'link', 'add', SERVER_BRIDGE, 'type', 'bridge'),
    ip('-n', s, 'addr', 'add', `${plan.serverAddress}/24`, 'dev', SERVER_BRIDGE),
    ip('-n', s, 'link', 'set', SERVER_BRIDGE, 'up'),
  );
  for (const u of plan.uplinks) {
    const [c, i] = [u.hostNs, u.ispNs];
    const port = `isp${u.index}`;
    cmds.push(
      ip('-n', c, 'link', 'add', u.dev, 'type', 'veth', 'peer', 'name', ISP_CLIENT_DEV, 'netns', i),
      ip('-n', i, 'link', 'add', ISP_SERVER_DEV, 'type', 'veth', 'peer', 'name', port, 'netns', s),
      ip('-n', s, 'link', 'set', port, 'master', SERVER_BRIDGE),
      ip('-n', s, 'link', 'set', port, 'up'),
      ip('-n', c, 'addr', 'add', `${u.address}/24`, 'dev', u.dev),
      ip('-n', c, 'link', 'set', u.dev, 'up'),
      ip('-n', i, 'addr', 'add', `${u.gateway}/24`, 'dev', ISP_CLIENT_DEV),
      ip('-n', i, 'link', 'set', ISP_CLIENT_DEV, 'up'),
      ip('-n', i, 'addr', 'add', `${u.ispServerAddress}/24`, 'dev', ISP_SERVER_DEV),
      ip('-n', i, 'link', 'set', ISP_SERVER_DEV, 'up'),
      { cmd: 'tc', args: ['-n', c, 'qdisc', 'replace', 'dev', u.dev, 'root', ...tbfArgs(u.rateMbit)] },
      {
        cmd: 'tc',
        args: ['-n', i, 'qdisc', 'replace', 'dev', ISP_CLIENT_DEV, 'root', ...tbfArgs(u.rateMbit)],
      },
      { ...nsExec(i, 'nft', '-f', '-'), input: ispRuleset(u) },
    );
  }
  if (plan.farServer) cmds.push(...farServerCommands(plan, plan.farServer));
  if (lan) cmds.push(...lanCommands(plan, lan));
  cmds.push(...routeCommands(plan, { ecmp: false, down: new Set() }));
  if (plan.policyTables) cmds.push(...policyRuleCommands(plan));
  if (lan) {
    for (const h of plan.lanHosts) {
      cmds.push(ip('-n', h.ns, 'route', 'replace', 'default', 'via', lan.gateway, 'dev', LAN_DEV));
    }
  }
  return cmds;
}

/** The far-server host: one veth to the server bridge, same /24 as the ISPs and the web server. */
function farServerCommands(plan: TopologyPlan, f: FarServerPlan): Command[] {
  const s = plan.serverNs;
  return [
    ip('-n', f.ns, 'link', 'add', f.dev, 'type', 'veth', 'peer', 'name', f.bridgePort, 'netns', s),
    ip('-n', s, 'link', 'set', f.bridgePort, 'master', SERVER_BRIDGE),
    ip('-n', s, 'link', 'set', f.bridgePort, 'up'),
    ip('-n', f.ns, 'addr', 'add', `${f.address}/24`, 'dev', f.dev),
    ip('-n', f.ns, 'link', 'set', f.dev, 'up'),
  ];
}

/**
 * The LAN: a bridge in its own namespace and one unshaped veth per machine and host
 * (lan0 inside, the bridge port named after the namespace's suffix: c, n1, h1, …).
 */
function lanCommands(plan: TopologyPlan, lan: LanPlan): Command[] {
  const l = lan.ns;
  const cmds = [
    ip('-n', l, 'link', 'add', lan.bridge, 'type', 'bridge'),
    ip('-n', l, 'link', 'set', lan.bridge, 'up'),
  ];
  const prefixLen = lan.subnet.slice(lan.subnet.indexOf('/'));
  for (const m of [...plan.machines, ...plan.lanHosts]) {
    const port = m.ns.slice(plan.prefix.length);
    cmds.push(
      ip('-n', m.ns, 'link', 'add', LAN_DEV, 'type', 'veth', 'peer', 'name', port, 'netns', l),
      ip('-n', l, 'link', 'set', port, 'master', lan.bridge),
      ip('-n', l, 'link', 'set', port, 'up'),
      ip('-n', m.ns, 'addr', 'add', `${m.lanAddress}${prefixLen}`, 'dev', LAN_DEV),
      ip('-n', m.ns, 'link', 'set', LAN_DEV, 'up'),
    );
  }
  return cmds;
}

/**
 * Commands that bring every machine's default routes to `state`, from any earlier
 * state; each machine routes over its own uplinks only (the client first, then the
 * nodes; a machine without uplinks gets nothing). `replace` keeps a default route in
 * place throughout, so open connections survive the switch. Deleting a route that is
 * already gone fails harmlessly: callers run the `del` commands tolerantly (see
 * `isTolerant`).
 */
export function routeCommands(plan: TopologyPlan, state: RouteState): Command[] {
  if (plan.policyTables) return policyRouteCommands(plan, state);
  return plan.machines.flatMap((m) => {
    const own = m.uplinks.map((i) => uplinkAt(plan, i));
    return own.length === 0 ? [] : machineRouteCommands(m.ns, own, state);
  });
}

function machineRouteCommands(c: string, uplinks: UplinkPlan[], state: RouteState): Command[] {
  const up = uplinks.filter((u) => !state.down.has(u.index));
  const cmds: Command[] = [];
  if (state.ecmp) {
    cmds.push(sysctl(c, 'net.ipv4.fib_multipath_hash_policy=1'));
    if (up.length > 0) {
      const hops = up.flatMap((u) => ['nexthop', 'via', u.gateway, 'dev', u.dev, 'weight', '1']);
      cmds.push(ip('-n', c, 'route', 'replace', 'default', 'metric', String(BASE_METRIC), ...hops));
    }
    for (const u of uplinks) {
      if (u.metric !== BASE_METRIC)
        cmds.push(ip('-n', c, 'route', 'del', 'default', 'metric', String(u.metric)));
    }
    if (up.length === 0) cmds.push(ip('-n', c, 'route', 'del', 'default', 'metric', String(BASE_METRIC)));
    return cmds;
  }
  for (const u of uplinks) {
    cmds.push(
      state.down.has(u.index)
        ? ip('-n', c, 'route', 'del', 'default', 'metric', String(u.metric))
        : ip(
            '-n',
            c,
            'route',
            'replace',
            'default',
            'via',
            u.gateway,
            'dev',
            u.dev,
            'metric',
            String(u.metric),
          ),
    );
  }
  cmds.push(sysctl(c, 'net.ipv4.fib_multipath_hash_policy=0'));
  return cmds;
}

/**
 * The plain-kernel gateway baseline: masquerade LAN sources out of every uplink of the
 * client, in nft table `inet lmxtb_masq`, so forwarded traffic passes the ISPs' BCP 38
 * filter. Only LAN sources, so the client's own traffic behaves as without it. Both
 * directions are idempotent.
 */
export function gatewayMasqueradeCommands(plan: TopologyPlan, on: boolean): Command[] {
  const client = plan.machines[0];
  if (!plan.lan || plan.lanHosts.length === 0 || !client || client.uplinks.length === 0) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      'testbed: gateway masquerade needs LAN hosts (lanHosts > 0) and a client with uplinks',
    );
  }
  const t = GATEWAY_MASQ_TABLE;
  const devs = client.uplinks.map((i) => `"${uplinkAt(plan, i).dev}"`).join(', ');
  const reset = `table inet ${t} {}\ndelete table inet ${t}\n`;
  const table = on
    ? [
        `table inet ${t} {`,
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        `    ip saddr ${plan.lan.subnet} oifname { ${devs} } masquerade`,
        '  }',
        '}',
        '',
      ].join('\n')
    : '';
  return [{ ...nsExec(plan.clientNs, 'nft', '-f', '-'), input: reset + table }];
}

/** Removes every namespace of the plan (processes inside must be killed first). */
export function teardownCommands(plan: TopologyPlan): Command[] {
  return allNamespaces(plan).map((ns) => ip('netns', 'del', ns));
}

/** The uplink with this index, or a usage error naming how many there are. */
export function uplinkAt(plan: TopologyPlan, index: number): UplinkPlan {
  const u = plan.uplinks[index];
  if (!u) {
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `testbed: no uplink ${index} (have ${plan.uplinks.length})`);
  }
  return u;
}
