/**
 * Runs the daemon in the foreground from a parsed config: the proxy front ends
 * (`linkmux up`), the node (`linkmux node`), or both (`up --node`, or
 * node.enabled in the config). Logs go to stderr; SIGINT/SIGTERM drain, then
 * the promise resolves.
 *
 * The join token is a secret: it is printed on stdout only when the identity
 * was just made and stdout is a terminal; logs only say how to print it.
 */
import { formatControlAddress } from '../control/control-address.js';
import { createLogger } from '../util/logger.js';
import type { Logger } from '../util/logger.js';
import type { Config } from '../config/schema.js';
import { openLinks } from './open-links.js';

/** `command` names the sub-command that runs it, in the daemon's start line ("up: …", "node: …"). */
export async function runDaemon(config: Config, source: string, command: 'up' | 'node'): Promise<void> {
  const { toRuntime } = await import('../config/runtime.js');
  const { Daemon } = await import('../daemon/daemon.js');
  const { LocalLink } = await import('../links/local-link.js');
  const { healthAtStart } = await import('../health/targets-at-start.js');
  const rt = toRuntime(config);
  const logger = createLogger(rt.log);
  logger.info(`config: ${source}`);
  const opened = await openLinks(
    { local: rt.links, upstreams: rt.upstreams, join: rt.join },
    rt.bind,
    logger,
    rt.dns,
  );
  const { links } = opened;
  // The daemon resolves names from its first connection on: loaded now, not on the first name.
  const resolver = await opened.resolver.load();
  let server: import('./server-client.js').ServerClient | undefined;
  if (rt.server.token) {
    const { openServerClient } = await import('./server-client.js');
    const { ExecRunner } = await import('../util/runner.js');
    server = openServerClient(rt.server, links, {
      resolve: resolver.resolve,
      runner: new ExecRunner(),
      logger,
    });
    if (server) links.push(server.link);
  }
  let node;
  if (rt.node.enabled) {
    const { prepareNode } = await import('../relay/node-setup.js');
    const { discoverInterfaces } = await import('../net/interfaces.js');
    const { ExecRunner } = await import('../util/runner.js');
    const lend = links.filter((l) => l instanceof LocalLink).map((l) => l.id);
    const prepared = await prepareNode(rt.node, await discoverInterfaces(new ExecRunner()), lend, { logger });
    announceToken(prepared.identity.created, prepared.tokenText, logger);
    node = {
      listen: prepared.listen,
      certPem: prepared.identity.certPem,
      keyPem: prepared.identity.keyPem,
      fingerprint: prepared.identity.fingerprint,
      secret: prepared.identity.secret,
      lend,
    };
  }
  let rpc;
  if (rt.rpc) {
    const { defaultStateDir } = await import('../relay/node-identity.js');
    const { homedir } = await import('node:os');
    const { join } = await import('node:path');
    rpc = {
      listen: rt.rpc.listen && formatControlAddress(rt.rpc.listen),
      secret: rt.rpc.secret,
      stateDir: rt.rpc.stateDir ?? defaultStateDir(),
      dir: rt.rpc.dir ?? join(homedir(), 'Downloads'),
      maxConcurrentDownloads: rt.rpc.maxConcurrentDownloads,
      connectionsPerLink: rt.rpc.connectionsPerLink,
      maxResults: rt.rpc.maxResults,
      connectTimeoutMs: rt.connectTimeoutMs,
    };
  }
  // The system's nameservers join the probe targets when the config names none (read at start).
  const health = await healthAtStart(rt.health, rt.healthTargetsSet, logger);
  const daemon = new Daemon({
    config: Object.freeze({ ...rt, health, healthTargetsSet: true }),
    links,
    resolver,
    logger,
    node,
    command,
    rpc,
    prefer: server?.link.id,
    extraStatus: server && (() => ({ mptcp: server.status() })),
  });
  if (server) {
    server.follow((id) => daemon.health.state(id));
    try {
      await server.paths.start();
    } catch (err) {
      await server.paths.stop().catch(() => undefined);
      throw err;
    }
  }
  try {
    await daemon.start();
  } catch (err) {
    await server?.paths.stop().catch(() => undefined);
    throw err;
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info(`${sig}: draining (up to ${rt.drainTimeoutMs / 1000} s), then exiting`);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      void daemon
        .stop(rt.drainTimeoutMs)
        .then(() => server?.paths.stop())
        .catch((err: unknown) => logger.error(`stopping: ${String(err)}`))
        .then(resolve);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  logger.info('stopped');
}

function announceToken(created: boolean, token: string, logger: Logger): void {
  if (created && process.stdout.isTTY) {
    process.stdout.write(
      `\nNew node identity. Join token (a secret: give it only to machines that may use this uplink):\n\n  ${token}\n\nOn the other machine: linkmux up --join <token>\n\n`,
    );
    return;
  }
  logger.info('node: print the join token with `linkmux node --token` (same config and flags)');
}
