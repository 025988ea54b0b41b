/**
 * The client side of `linkmux server` for `up --server` and `get --server`:
 * the server link (Socks5Link over an MPTCP socket) and the path manager that
 * installs one MPTCP endpoint per uplink in service, the limits and the source
 * rules, and removes them at the end (or, after a crash, `linkmux up --cleanup`).
 *
 * When MPTCP cannot be used (not Linux, no kernel MPTCP, net.mptcp.enabled=0,
 * not root) it says why and what to do, and returns nothing: the caller keeps
 * balancing per connection over the local links.
 */
import type { RuntimeServer } from '../config/runtime.js';
import type { LinkState } from '../health/state-machine.js';
import type { Link } from '../links/link.js';
import { LocalLink } from '../links/local-link.js';
import { Socks5Link } from '../links/socks5-link.js';
import { serverLinkOptions } from '../links/server-link.js';
import { MptcpKernel, fileRecordStore } from '../mptcp/kernel.js';
import { MptcpPathManager, checkCanManagePaths } from '../mptcp/path-manager.js';
import { mptcpSupport } from '../net/mptcp-socket.js';
import { fileOwnerLock, namespaceLockPath, refusal, type OwnerLock } from '../mptcp/owner-lock.js';
import type { Resolver } from '../net/resolve.js';
import { defaultStateDir } from '../relay/node-identity.js';
import type { MptcpStatus } from '../control/status-types.js';
import { describe, isLinkmuxError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { Runner } from '../util/runner.js';

export interface ServerClient {
  link: Socks5Link;
  paths: MptcpPathManager;
  /** Follow this health state from now on (default: every uplink in service). */
  follow(stateOf: (id: string) => LinkState): void;
  status(): MptcpStatus;
}

/** The MPTCP kernel state of this machine's client side (for cleanup too). */
export function clientKernel(runner: Runner, stateDir: string | undefined): MptcpKernel {
  return new MptcpKernel(runner, fileRecordStore(stateDir ?? defaultStateDir()));
}

/** One client per network namespace: the lock its path manager takes (owner-lock.ts). */
export function clientLock(stateDir: string | undefined, lockDir = process.env.LINKMUX_LOCK_DIR): OwnerLock {
  let lock: OwnerLock | undefined;
  const get = async () =>
    (lock ??= fileOwnerLock(await namespaceLockPath(lockDir), {
      pid: process.pid,
      stateDir: stateDir ?? defaultStateDir(),
      command: ['linkmux', ...process.argv.slice(2)].join(' '),
    }));
  return {
    acquire: async () => (await get()).acquire(),
    release: async () => (await get()).release(),
    holder: async () => (await get()).holder(),
  };
}

export function openServerClient(
  server: RuntimeServer,
  links: readonly Link[],
  opts: { resolve: Resolver; runner: Runner; logger: Logger },
): ServerClient | undefined {
  const token = server.token;
  if (!token) return undefined;
  const { logger } = opts;
  const support = mptcpSupport();
  const fallback = 'linkmux keeps balancing connections over the local links';
  if (!support.available) {
    logger.warn(`--server: ${support.reason}; ${fallback} [LINKMUX_ERR_MPTCP]`);
    return undefined;
  }
  try {
    checkCanManagePaths();
  } catch (err) {
    logger.warn(`--server: ${describe(err)} [${isLinkmuxError(err) ? err.code : 'LINKMUX_ERR_MPTCP'}]`);
    return undefined;
  }
  const local = links
    .filter((l): l is LocalLink => l instanceof LocalLink)
    .map((l) => l.iface)
    .sort((a, b) => (a.metric ?? 1e9) - (b.metric ?? 1e9));
  let stateOf: (id: string) => LinkState = () => 'online';
  const paths = new MptcpPathManager({
    interfaces: local,
    stateOf: (id) => stateOf(id),
    kernel: clientKernel(opts.runner, server.stateDir),
    logger,
    serverPort: token.port,
    runner: opts.runner,
    withdrawDegraded: process.env.LINKMUX_MPTCP_KEEP_DEGRADED !== '1',
    lock: clientLock(server.stateDir),
  });
  const link = new Socks5Link(
    serverLinkOptions(token, { resolve: opts.resolve, source: () => paths.primaryAddress() }),
  );
  return {
    link,
    paths,
    follow(f) {
      stateOf = f;
    },
    status: () => ({ server: link.id, uplinks: paths.status() }),
  };
}

/** `linkmux up --cleanup`: what a crashed `up --server` (or `get --server`) left, removed. */
export async function cleanupServerClient(config: import('../config/schema.js').Config): Promise<void> {
  const { toRuntime } = await import('../config/runtime.js');
  const { ExecRunner } = await import('../util/runner.js');
  const rt = toRuntime(config);
  // A client still running owns what is there: cleaning up would pull its paths from under it.
  const lockPath = await namespaceLockPath(process.env.LINKMUX_LOCK_DIR);
  const live = await clientLock(rt.server.stateDir).holder();
  if (live) throw refusal(live, lockPath);
  const ran = await clientKernel(new ExecRunner(), rt.server.stateDir).cleanup();
  process.stderr.write(
    ran.length === 0
      ? "nothing of linkmux's MPTCP paths was left\n"
      : `removed: ${ran.map((a) => `ip ${a.join(' ')}`).join('\n         ')}\n`,
  );
}

/** `get --server TOKEN`: the server link alone (every piece through it), its paths installed. */
export async function openGetServer(
  tokenText: string,
  opened: { links: Link[]; resolver: { resolve: Resolver } },
  logger: Logger,
): Promise<ServerClient | undefined> {
  const { decodeJoinToken } = await import('../links/join-token.js');
  const { ExecRunner } = await import('../util/runner.js');
  const { LinkmuxError } = await import('../util/errors.js');
  const token = decodeJoinToken(tokenText);
  if (token.kind !== 'server') {
    throw new LinkmuxError(
      'LINKMUX_ERR_TOKEN',
      `this is the token of node ${token.name}, not of a linkmux server: give it to --join instead`,
    );
  }
  const server = openServerClient(
    {
      token,
      listen: { host: '::', port: token.port },
      advertise: undefined,
      name: undefined,
      allow: [],
      stateDir: undefined,
    },
    opened.links,
    { resolve: opened.resolver.resolve, runner: new ExecRunner(), logger },
  );
  if (!server) return undefined;
  try {
    await server.paths.start();
  } catch (err) {
    await server.paths.stop().catch(() => undefined);
    throw err;
  }
  return server;
}
