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
 * metrics 100, 101, … and no source rules, so unbound traffic leaves through up0.
 * Each ISP drops client packets whose source is not its own client subnet, as real
 * ISPs do (BCP 38): binding only a source address does not pick an uplink here either.
 * Every address is in 198.18.0.0/15; nothing touches the root namespace.
 */
import { LinkmuxError } from '../util/errors.js';

export interface Command {
  cmd: string;
  args: string[];
  /** Fed to stdin (nft -f -). */
  input?: string;
}

export interface UplinkPlan {
  index: number;
  /** Device in the client ns: up0, up1, … */
  dev: string;
  /** Client address on dev. */
  address: string;
  /** The ISP's address on the client side, the default route's gateway. */
  gateway: string;
  ispNs: string;
  rateMbit: number;
  /** Route metric of this uplink's default route. */
  metric: number;
  /** The ISP's address on the server-side bridge. */
  ispServerAddress: string;
}

export interface TopologyPlan {
  prefix: string;
  clientNs: string;
  serverNs: string;
  serverAddress: string;
  uplinks: UplinkPlan[];
}

export interface TopologyOptions {
  /** Namespace name prefix, e.g. "lmx-1234-ab12-". */
  prefix: string;
  /** Number of uplinks, 1–9. Default 3. */
  links?: number;
  /** Shaped rate per uplink in Mbit/s, one number for all or one per link. Default 8. */
  rateMbit?: number | number[];
}

export const SERVER_ADDRESS = '198.19.0.10';
export const MAX_LINKS = 9;
/** Devices inside an ISP namespace: toward the client and toward the server. */
export const ISP_CLIENT_DEV = 'cl';
export const ISP_SERVER_DEV = 'sv';
export const SERVER_BRIDGE = 'br0';
const BASE_METRIC = 100;

export function planTopology(opts: TopologyOptions): TopologyPlan {
  const links = opts.links ?? 3;
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
  const uplinks = rates.map((r, index): UplinkPlan => {
    const rateMbit = r;
    if (!(rateMbit > 0 && rateMbit <= 10000)) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `testbed: rate of link ${index} must be in (0, 10000] Mbit/s`,
      );
    }
    return {
      index,
      dev: `up${index}`,
      address: `198.18.${index + 1}.2`,
      gateway: `198.18.${index + 1}.1`,
      ispNs: `${opts.prefix}i${index}`,
      rateMbit,
      metric: BASE_METRIC + index,
      ispServerAddress: `198.19.0.${index + 1}`,
    };
  });
  return {
    prefix: opts.prefix,
    clientNs: `${opts.prefix}c`,
    serverNs: `${opts.prefix}s`,
    serverAddress: SERVER_ADDRESS,
    uplinks,
  };
}

export function allNamespaces(plan: TopologyPlan): string[] {
  return [plan.clientNs, plan.serverNs, ...plan.uplinks.map((u) => u.ispNs)];
}

const ip = (...args: string[]): Command => ({ cmd: 'ip', args });
const nsExec = (ns: string, cmd: string, ...args: string[]): Command => ({
  cmd: 'ip',
  args: ['netns', 'exec', ns, cmd, ...args],
});
const sysctl = (ns: string, setting: string): Command => nsExec(ns, 'sysctl', '-qw', setting);

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

/** The ISP's ruleset: anti-spoofing on the client side, masquerade toward the server. */
export function ispRuleset(u: UplinkPlan): string {
  const subnet = `198.18.${u.index + 1}.0/24`;
  return [
    'table ip linkmux_isp {',
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
  const { clientNs: c, serverNs: s } = plan;
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

  cmds.push(
    ip('-n', s, 'link', 'add', SERVER_BRIDGE, 'type', 'bridge'),
    ip('-n', s, 'addr', 'add', `${plan.serverAddress}/24`, 'dev', SERVER_BRIDGE),
    ip('-n', s, 'link', 'set', SERVER_BRIDGE, 'up'),
  );
  for (const u of plan.uplinks) {
    const i = u.ispNs;
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
  cmds.push(...routeCommands(plan, { ecmp: false, down: new Set() }));
  return cmds;
}

export interface RouteState {
  /** One multipath default route instead of one route per uplink. */
  ecmp: boolean;
  /** Uplinks whose client device is administratively down (the kernel dropped their routes). */
  down: ReadonlySet<number>;
}

/**
 * Commands that bring the client's default routes to `state`, from any earlier state.
 * `replace` keeps a default route in place throughout, so open connections survive the
 * switch. Deleting a route that is already gone fails harmlessly: callers run the
 * `del` commands tolerantly (see `isTolerant`).
 */
export function routeCommands(plan: TopologyPlan, state: RouteState): Command[] {
  const c = plan.clientNs;
  const up = plan.uplinks.filter((u) => !state.down.has(u.index));
  const cmds: Command[] = [];
  if (state.ecmp) {
    cmds.push(sysctl(c, 'net.ipv4.fib_multipath_hash_policy=1'));
    if (up.length > 0) {
      const hops = up.flatMap((u) => ['nexthop', 'via', u.gateway, 'dev', u.dev, 'weight', '1']);
      cmds.push(ip('-n', c, 'route', 'replace', 'default', 'metric', String(BASE_METRIC), ...hops));
    }
    for (const u of plan.uplinks) {
      if (u.metric !== BASE_METRIC)
        cmds.push(ip('-n', c, 'route', 'del', 'default', 'metric', String(u.metric)));
    }
    if (up.length === 0) cmds.push(ip('-n', c, 'route', 'del', 'default', 'metric', String(BASE_METRIC)));
    return cmds;
  }
  for (const u of plan.uplinks) {
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

/** A `route del` may find its route already gone; every other command must succeed. */
export function isTolerant(cmd: Command): boolean {
  return cmd.cmd === 'ip' && cmd.args.includes('route') && cmd.args.includes('del');
}

/**
 * Blackholing drops everything the ISP forwards, receives or sends, while the link
 * itself stays up (ARP still answers): the "upstream dead, cable fine" failure.
 * Both directions are written so that applying either one twice is harmless.
 */
export function blackholeCommands(plan: TopologyPlan, index: number, on: boolean): Command[] {
  const u = uplinkAt(plan, index);
  const reset = 'table ip linkmux_blackhole {}\ndelete table ip linkmux_blackhole\n';
  const chains = on
    ? [
        'table ip linkmux_blackhole {',
        ...['forward', 'input', 'output'].map(
          (hook) => `  chain bh_${hook} { type filter hook ${hook} priority -10; policy drop; }`,
        ),
        '}',
        '',
      ].join('\n')
    : '';
  return [{ ...nsExec(u.ispNs, 'nft', '-f', '-'), input: reset + chains }];
}

/**
 * How a link goes down: 'admin' sets the client's device down (the kernel removes its
 * routes, sockets bound to it fail at once); 'carrier' sets the ISP's end down, so
 * the client's device loses carrier but keeps its routes, like a pulled cable on a
 * host without a network manager.
 */
export type LinkDownMode = 'admin' | 'carrier';

export function linkStateCommands(
  plan: TopologyPlan,
  index: number,
  up: boolean,
  mode: LinkDownMode,
): Command[] {
  const u = uplinkAt(plan, index);
  const state = up ? 'up' : 'down';
  const cmds =
    mode === 'admin'
      ? [ip('-n', plan.clientNs, 'link', 'set', u.dev, state)]
      : [ip('-n', u.ispNs, 'link', 'set', ISP_CLIENT_DEV, state)];
  if (up) {
    // ARP entries left INCOMPLETE/FAILED by the outage would delay or refuse the first
    // connections after the link returns (up to ~1 s, or EHOSTUNREACH): start afresh.
    cmds.push(
      ip('-n', plan.clientNs, 'neigh', 'flush', 'dev', u.dev),
      ip('-n', u.ispNs, 'neigh', 'flush', 'dev', ISP_CLIENT_DEV),
    );
  }
  return cmds;
}

/** Removes every namespace of the plan (processes inside must be killed first). */
export function teardownCommands(plan: TopologyPlan): Command[] {
  return allNamespaces(plan).map((ns) => ip('netns', 'del', ns));
}

/** A self-signed certificate for the server address, usable as its own CA (curl --cacert). */
export function certCommands(dir: string, address: string): Command[] {
  return [
    {
      cmd: 'openssl',
      args: [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        `/CN=${address}`,
        '-addext',
        `subjectAltName=IP:${address}`,
        '-keyout',
        `${dir}/key.pem`,
        '-out',
        `${dir}/cert.pem`,
      ],
    },
  ];
}

/** Shell-like text of commands, for logs, dry runs and unit-test comparisons. */
export function formatCommands(cmds: readonly Command[]): string {
  return cmds
    .map((c) => {
      const line = [c.cmd, ...c.args.map(quote)].join(' ');
      return c.input === undefined ? line : `${line} <<'EOF'\n${c.input.replace(/\n$/, '')}\nEOF`;
    })
    .join('\n');
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function uplinkAt(plan: TopologyPlan, index: number): UplinkPlan {
  const u = plan.uplinks[index];
  if (!u) {
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `testbed: no uplink ${index} (have ${plan.uplinks.length})`);
  }
  return u;
}
