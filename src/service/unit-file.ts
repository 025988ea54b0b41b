/**
 * The systemd unit of `linkmux service install up|node|gateway`, as text. Pure:
 * every path comes in through `UnitSpec`, nothing is read or run here, so the
 * tests compare whole units with golden text and `systemd-analyze verify` them.
 *
 * Guarantees: ExecStart names node and the CLI by absolute path (never a PATH
 * lookup); every argument is quoted and escaped for systemd (`%`, `$`, spaces,
 * quotes), so a path is passed through unchanged; each kind gets only the
 * capabilities it uses (see capabilitiesFor); the gateway's ExecStopPost removes
 * its rules after any stop, a crash included.
 */

export const SERVICE_KINDS = ['up', 'node', 'gateway'] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];

/** Where node state lives for root (src/relay/node-identity.ts `defaultStateDir`). */
export const STATE_DIR = '/var/lib/linkmux';
/** Where a unix control socket may go (RuntimeDirectory=linkmux makes it writable). */
export const RUNTIME_DIR = '/run/linkmux';

export type Capability = 'CAP_NET_ADMIN' | 'CAP_NET_RAW' | 'CAP_NET_BIND_SERVICE';

export interface CapabilityNeeds {
  /** SO_BINDTODEVICE needs CAP_NET_RAW on this kernel (see bindNeedsNetRaw). */
  bindNeedsNetRaw: boolean;
  /** The config listens on a port below 1024. */
  lowPorts: boolean;
}

/**
 * The capabilities each kind uses, and nothing else. The daemon runs as root
 * (uid 0, see renderUnit) with the bounding set cut to these, so the rest of
 * root's powers (overriding file modes, mounts, modules, ptrace …) are gone.
 *
 * - SO_BINDTODEVICE, which forces each connection out of its uplink (up, node,
 *   and the gateway's health probes): CAP_NET_RAW on kernels before 5.7; since
 *   5.7 (commit c427bfec18f2) any process may set it on a socket not yet bound
 *   to a device, and ours are always fresh.
 * - up, node: nothing else. They only read interfaces and routes (`ip -j addr
 *   show`); the policy rules of `bind: address` come from `linkmux route setup`.
 * - gateway: CAP_NET_ADMIN for nft, `ip rule`/`ip route` and conntrack (-L and
 *   -D both need it).
 * - CAP_NET_BIND_SERVICE when the config listens below port 1024.
 */
export function capabilitiesFor(kind: ServiceKind, needs: CapabilityNeeds): Capability[] {
  const caps: Capability[] = [];
  if (kind === 'gateway') caps.push('CAP_NET_ADMIN');
  if (needs.bindNeedsNetRaw) caps.push('CAP_NET_RAW');
  if (needs.lowPorts) caps.push('CAP_NET_BIND_SERVICE');
  return caps;
}

/** Whether a kernel of this `uname -r` release refuses SO_BINDTODEVICE without CAP_NET_RAW (< 5.7, or unknown). */
export function bindNeedsNetRaw(release: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return true;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major < 5 || (major === 5 && minor < 7);
}

const DESCRIPTIONS: Readonly<Record<ServiceKind, string>> = {
  up: 'linkmux proxy: SOCKS5/HTTP over every uplink',
  node: "linkmux node: lends this machine's uplinks to the LAN",
  gateway: 'linkmux gateway: balances LAN traffic over every WAN uplink',
};

export interface UnitSpec {
  kind: ServiceKind;
  /** Absolute path of the node binary (process.execPath). */
  nodePath: string;
  /** Absolute path of the CLI's main.js. */
  mainPath: string;
  /** Absolute path of the config file, or undefined for the defaults. */
  configPath?: string | undefined;
  /** A Documentation= URL, e.g. file:/usr/lib/node_modules/linkmux/README.md. */
  documentation: string;
  /** Directories the daemon writes besides STATE_DIR and RUNTIME_DIR (a custom node.stateDir …). */
  extraWritable?: readonly string[];
  /** From capabilitiesFor. */
  capabilities: readonly Capability[];
  /** The kernel the capabilities were chosen for (`uname -r`), named in a comment. */
  kernel: string;
}

/** The unit's file name: linkmux-up.service, linkmux-node.service, linkmux-gateway.service. */
export function unitName(kind: ServiceKind): string {
  return `linkmux-${kind}.service`;
}

/** Directories systemd's ProtectHome=yes hides. */
const HOME_DIRS = ['/home', '/root', '/run/user'];

export function renderUnit(spec: UnitSpec): string {
  const caps = spec.capabilities.join(' ');
  const config = spec.configPath !== undefined ? ['-c', spec.configPath] : [];
  const command = (...args: string[]) =>
    [spec.nodePath, spec.mainPath, ...args, ...config].map(quoteArg).join(' ');
  // linkmux never reads or writes a home directory, so hide them all, unless
  // node, the CLI (an nvm install: ~/.nvm/…) or the config lives in one.
  const inHome = [spec.nodePath, spec.mainPath, ...config.slice(1)].some((p) =>
    HOME_DIRS.some((h) => p === h || p.startsWith(`${h}/`)),
  );
  const writable = [STATE_DIR, ...(spec.extraWritable ?? [])];
  const lines = [
    '# Written by `linkmux service install`; `linkmux service uninstall` removes it.',
    '# Edit with `systemctl edit` (a drop-in) so a reinstall keeps your changes.',
    '[Unit]',
    `Description=${DESCRIPTIONS[spec.kind]}`,
    `Documentation=${spec.documentation}`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    // exec: `systemctl enable --now` fails when the binary cannot start, instead of reporting success.
    'Type=exec',
    // Absolute paths, no PATH lookup: with nvm, `node` is on the installing user's
    // PATH only, and root (who runs this unit) would find another node or none.
    `ExecStart=${command(spec.kind)}`,
    ...(spec.kind === 'gateway'
      ? [
          // After every stop, a crash or a kill included: no nftables table, ip rule or
          // route outlives the daemon. Idempotent: after a clean stop it finds nothing.
          `ExecStopPost=${command('gateway', '--cleanup')}`,
        ]
      : []),
    'Restart=on-failure',
    'RestartSec=5s',
    // Root (no User=), stripped to the capabilities below: it can read a config
    // holding secrets kept 0600 by root, and keeps the node identity in
    // /var/lib/linkmux, where `sudo linkmux node --token` finds it.
    ...capabilityComment(spec.capabilities, spec.kernel),
    `CapabilityBoundingSet=${caps}`,
    // Ambient too, so a drop-in with User= keeps them (root needs no ambient set).
    `AmbientCapabilities=${caps}`,
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ProtectHome=${inHome ? 'read-only' : 'yes'}`,
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'PrivateMounts=yes',
    'SystemCallArchitectures=native',
    // What a network daemon uses (Node, ip, nft, conntrack included); anything
    // else fails with EPERM instead of killing the process.
    'SystemCallFilter=@system-service',
    'SystemCallErrorNumber=EPERM',
    // AF_NETLINK: interface and route reads, nft, ip and conntrack.
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
    // No MemoryDenyWriteExecute=: V8's JIT needs writable code pages.
    // /var/lib/linkmux, mode 0700: the node's certificate, key and secret.
    'StateDirectory=linkmux',
    'StateDirectoryMode=0700',
    'RuntimeDirectory=linkmux',
    // ReadWritePaths= repeats the state dir so the list of writable places is in one line;
    // "-" makes a directory that does not exist yet no reason to refuse the start.
    `ReadWritePaths=${writable.map((p, i) => (i === 0 ? quoteArg(p) : `-${quoteArg(p)}`)).join(' ')}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ];
  return lines.join('\n');
}

const WHY: Readonly<Record<Capability, string>> = {
  CAP_NET_ADMIN: 'nft, ip rule/route, conntrack',
  CAP_NET_RAW: 'SO_BINDTODEVICE on a kernel before 5.7',
  CAP_NET_BIND_SERVICE: 'a listen port below 1024',
};

/** Says in the unit why each capability is there, and for which kernel. */
function capabilityComment(caps: readonly Capability[], kernel: string): string[] {
  const list = caps.length === 0 ? 'none' : caps.map((c) => `${c} (${WHY[c]})`).join(', ');
  return [
    `# Capabilities for kernel ${kernel}: ${list}.`,
    ...(caps.includes('CAP_NET_RAW')
      ? []
      : [
          '# Since Linux 5.7 SO_BINDTODEVICE needs none; on an older kernel, rerun `linkmux service install`.',
        ]),
  ];
}

/**
 * One word of an Exec*= or path list line: `%` and `$` are doubled (systemd
 * would expand them), and a word with anything but safe characters is put in
 * double quotes with `\` and `"` escaped.
 */
export function quoteArg(arg: string): string {
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9_@%+=:,./$-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
