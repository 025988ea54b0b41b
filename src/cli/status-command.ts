/**
 * `linkmux status [--control ADDR] [--json]`: asks a running daemon's control API
 * for GET /status and prints it, as a table per link or as the raw JSON. Every
 * daemon serves the same API: `linkmux up`, `linkmux node` and `linkmux gateway`
 * (all on 127.0.0.1:9190 unless told otherwise).
 *
 * Rendering is the pure `renderStatus`, tested with a fixed status and expected
 * text. Every age it prints ("online for 5m12s", "timeout, 40s ago") is measured
 * against the daemon's own clock (startedAt + uptimeSeconds), never this
 * machine's wall clock, so the output depends on the status alone.
 * A daemon that does not answer is LINKMUX_ERR_CONNECT (exit 1) with the way out.
 */
import type { Command } from 'commander';
import {
  DEFAULT_CONTROL_ADDRESS,
  formatControlAddress,
  parseControlAddress,
} from '../control/control-address.js';
import type { DaemonStatus, LinkStatus } from '../control/status-types.js';
import { LinkmuxError, systemCode } from '../util/errors.js';
import { formatBytes, formatRate } from '../util/format.js';

/** The control API is local: an answer slower than this means a hung daemon, not a slow network. */
const TIMEOUT_MS = 5000;

export interface StatusDeps {
  /** Where the output goes; stdout by default (tests capture it). */
  write?: (text: string) => void;
}

export function registerStatus(program: Command, deps: StatusDeps = {}): void {
  program
    .command('status')
    .description(
      'show what every link of a running daemon (`linkmux up`, `linkmux node` or `linkmux gateway`) is doing',
    )
    .option(
      '--control <addr>',
      "the daemon's control API (its --control / listen.control): HOST:PORT or a unix socket path",
      DEFAULT_CONTROL_ADDRESS,
    )
    .option('--json', 'print the raw status JSON on stdout')
    .addHelpText(
      'after',
      `
It reads any running linkmux daemon: \`linkmux up\`, \`linkmux node\` or \`linkmux gateway\`.
Each listens on ${DEFAULT_CONTROL_ADDRESS} unless given --control (or listen.control in its config);
run two at once on different addresses and pass the one to read here.

Examples:
  linkmux status
  linkmux status --control 127.0.0.1:9191 --json`,
    )
    .action(async (flags: { control: string; json?: boolean }) => {
      const write = deps.write ?? ((s: string) => void process.stdout.write(s));
      const status = await fetchStatus(flags.control);
      write(flags.json ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status));
    });
}

/**
 * GET /status from the control API at `control` (HOST:PORT or a socket path).
 * Throws LINKMUX_ERR_USAGE for a malformed address, LINKMUX_ERR_CONNECT when
 * nothing answers, LINKMUX_ERR_BAD_RESPONSE when something that is not a
 * linkmux control API answers.
 */
export async function fetchStatus(control: string): Promise<DaemonStatus> {
  const addr = parseControlAddress(control);
  const shown = formatControlAddress(addr);
  const connect =
    addr.kind === 'unix' ? { socketPath: addr.path, timeout: TIMEOUT_MS } : { timeout: TIMEOUT_MS };
  // A private agent, closed below, so no keep-alive socket outlives the command.
  // undici's index is large: loaded here so other commands start fast.
  const { Agent, request } = await import('undici');
  const agent = new Agent({ connect, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS });
  // Over a unix socket the host part only fills the Host header; localhost passes the daemon's check.
  const origin = addr.kind === 'unix' ? 'http://localhost' : `http://${shown}`;
  try {
    let statusCode: number;
    let text: string;
    try {
      const res = await request(`${origin}/status`, {
        dispatcher: agent,
        headers: { accept: 'application/json' },
      });
      statusCode = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      throw connectError(err, shown);
    }
    if (statusCode !== 200) {
      throw new LinkmuxError(
        'LINKMUX_ERR_BAD_RESPONSE',
        `${shown} answered GET /status with HTTP ${statusCode}: is it a linkmux control API? ` +
          'Check the --control address given to the daemon (`linkmux up`, `node` or `gateway`)',
      );
    }
    return parseStatus(text, shown);
  } finally {
    await agent.close();
  }
}

function connectError(err: unknown, shown: string): LinkmuxError {
  const code = systemCode(err);
  if (code === 'EACCES' || code === 'EPERM') {
    return new LinkmuxError(
      'LINKMUX_ERR_CONNECT',
      `permission denied connecting to the linkmux daemon at ${shown}: its socket is private to the ` +
        "daemon's user; run `linkmux status` as that user (e.g. with sudo)",
      { cause: err },
    );
  }
  return new LinkmuxError(
    'LINKMUX_ERR_CONNECT',
    `no linkmux daemon answers at ${shown}: start one (\`linkmux up\`, \`linkmux node\` or ` +
      `\`linkmux gateway\`), or pass the --control address it listens on`,
    { cause: err },
  );
}

function parseStatus(text: string, shown: string): DaemonStatus {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const v = value as Partial<DaemonStatus> | undefined;
  if (typeof v !== 'object' || v === null || !Array.isArray(v.links) || typeof v.connections !== 'object') {
    throw new LinkmuxError(
      'LINKMUX_ERR_BAD_RESPONSE',
      `${shown} answered GET /status with something that is not a linkmux status: is it a linkmux control API?`,
    );
  }
  return v as DaemonStatus;
}

/** Pure: the status as two header lines and an aligned table with one row per link. */
export function renderStatus(status: DaemonStatus): string {
  // The daemon's "now": ages are computed on its clock, so the text depends on the status alone.
  const started = Date.parse(status.startedAt);
  const now = Number.isNaN(started) ? undefined : started + status.uptimeSeconds * 1000;
  const ago = (iso: string) => {
    const t = Date.parse(iso);
    return now === undefined || Number.isNaN(t) ? undefined : formatAge((now - t) / 1000);
  };
  const c = status.connections;
  const listen = (['socks', 'http', 'control'] as const)
    .filter((k) => status.listen[k] !== undefined)
    .map((k) => `${k} ${status.listen[k]}`);
  const lines = [
    `linkmux ${status.version} up ${formatAge(status.uptimeSeconds)}, policy ${status.policy}, ` +
      `connections ${c.active} active / ${c.total} total / ${c.failed} failed`,
    `listening on ${listen.length > 0 ? listen.join(', ') : '-'}`,
    '',
  ];
  const node = status.node;
  if (node) {
    const r = node.relayed;
    lines.splice(
      2,
      0,
      `node on ${node.listen.join(', ') || '-'}, lends ${node.lends.join(', ') || '-'}, certificate sha256:` +
        `${node.fingerprint.slice(0, 16)}…; relayed ${r.active} active / ${r.total} total / ${r.failed} failed; ` +
        `refused ${node.authFailures} at authentication, ${node.tlsFailures} at TLS`,
    );
  }
  if (status.links.length === 0) return `${[...lines, 'no links'].join('\n')}\n`;
  const rows = status.links.map((l) => linkRow(l, ago));
  return `${[...lines, ...alignTable(HEADER, rows, RIGHT), ...unverifiedNotes(status.links), ...mptcpBlock(status)].join('\n')}\n`;
}

// The empty last column lets alignTable right-align BYTES OUT (it never pads the last one).
const MPTCP_HEADER = ['UPLINK', 'ADDRESS', 'ENDPOINT', 'SUBFLOWS', 'BYTES IN', 'BYTES OUT', ''];
const MPTCP_RIGHT = [false, false, false, true, true, true, false];

/**
 * `up --server`: under the links, the MPTCP paths to the server, per uplink —
 * whether linkmux's endpoint is installed, the open subflows from its address and
 * their bytes (open subflows only: a closed subflow's bytes leave the sum).
 */
function mptcpBlock(status: DaemonStatus): string[] {
  const m = status.mptcp;
  if (!m) return [];
  const head = `MPTCP paths to server link ${m.server}:`;
  if (m.uplinks.length === 0) return ['', head, 'no uplink with an address'];
  const rows = m.uplinks.map((u) => [
    u.dev,
    u.address,
    u.endpoint ? 'yes' : u.inService ? 'no' : 'no (out of service)',
    String(u.subflows),
    formatBytes(u.bytesIn),
    formatBytes(u.bytesOut),
    '',
  ]);
  return ['', head, ...alignTable(MPTCP_HEADER, rows, MPTCP_RIGHT)];
}

/**
 * Unverified links share one long reason (the probe targets look blocked), too
 * long for a column: it is printed once under the table, with the links it
 * concerns, because it says what the user must change.
 */
function unverifiedNotes(links: readonly LinkStatus[]): string[] {
  const byReason = new Map<string, string[]>();
  for (const l of links) {
    if (l.state !== 'unverified') continue;
    const reason = l.stateReason ?? 'the probes cannot tell whether the link works';
    byReason.set(reason, [...(byReason.get(reason) ?? []), l.id]);
  }
  return [...byReason].map(([reason, ids]) => `${ids.join(', ')} unverified (in service): ${reason}`);
}

const HEADER = [
  'LINK',
  'STATE',
  'RTT',
  'RATE IN',
  'RATE OUT',
  'CONNS',
  'BYTES IN',
  'BYTES OUT',
  'CAPACITY',
  'LAST FAILURE',
];
/** Numeric columns are right-aligned so magnitudes line up. */
const RIGHT = [false, false, true, true, true, true, true, true, true, false];

function linkRow(l: LinkStatus, ago: (iso: string) => string | undefined): string[] {
  const inState = ago(l.since);
  const failedAgo = l.lastFailure && ago(l.lastFailure.at);
  return [
    l.id,
    inState === undefined ? l.state : `${l.state} for ${inState}`,
    l.rttMs === undefined ? '-' : formatRtt(l.rttMs),
    formatRate(l.rateIn),
    formatRate(l.rateOut),
    String(l.activeConnections),
    formatBytes(l.bytesIn),
    formatBytes(l.bytesOut),
    l.capacity === undefined ? '-' : formatRate(l.capacity),
    l.lastFailure === undefined
      ? '-'
      : failedAgo === undefined
        ? l.lastFailure.reason
        : `${l.lastFailure.reason}, ${failedAgo} ago`,
  ];
}

/** Loopback and LAN RTTs are below a millisecond: keep a decimal there. */
function formatRtt(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/** A compact age: "45s", "5m12s", "1h02m", "3d04h". Negative (clock skew) counts as 0. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor((s % 86400) / 3600))}h`;
}

function alignTable(header: string[], rows: string[][], right: boolean[]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, col) => Math.max(...all.map((r) => r[col]?.length ?? 0)));
  return all.map((row) =>
    row
      .map((cell, col) => {
        if (col === row.length - 1) return cell;
        const w = widths[col] ?? 0;
        return right[col] ? cell.padStart(w) : cell.padEnd(w);
      })
      .join('  ')
      .trimEnd(),
  );
}
