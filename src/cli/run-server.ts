/**
 * Runs `linkmux server` from a parsed config: prints the token (--init/--token)
 * or serves in the foreground until SIGINT/SIGTERM (drain, restore limits, exit).
 * The token is printed on stdout only; logs never carry it.
 */
import type { Config } from '../config/schema.js';
import { formatControlAddress } from '../control/control-address.js';
import { createLogger } from '../util/logger.js';

export async function runServer(
  config: Config,
  source: string,
  opts: { printToken: boolean; rotate: boolean; congestion?: string | false },
): Promise<void> {
  const { toRuntime } = await import('../config/runtime.js');
  const { prepareServer, serverStateDir } = await import('../relay/server-setup.js');
  const { discoverInterfaces } = await import('../net/interfaces.js');
  const { ExecRunner } = await import('../util/runner.js');
  const rt = toRuntime(config);
  const logger = createLogger(rt.log);
  const runner = new ExecRunner();
  const prepared = await prepareServer(rt.server, await discoverInterfaces(runner), {
    rotate: opts.rotate,
    logger,
  });
  if (opts.printToken) {
    const what = prepared.identity.created ? 'new identity' : 'identity';
    process.stderr.write(
      `server ${prepared.token.name}: ${what} in ${prepared.identity.dir}, certificate sha256:${prepared.identity.fingerprint}\n` +
        `clients dial ${prepared.token.host}:${prepared.token.port}\n` +
        'token (a secret: give it only to machines that may use this server; on them: linkmux up --server <token>):\n',
    );
    process.stdout.write(`${prepared.tokenText}\n`);
    return;
  }
  logger.info(`config: ${source}`);
  const { ServerDaemon } = await import('../daemon/server-daemon.js');
  const { MptcpKernel, fileRecordStore, SERVER_RECORD_FILE } = await import('../mptcp/kernel.js');
  const root = process.getuid?.() === 0;
  const daemon = new ServerDaemon({
    listen: prepared.listen,
    certPem: prepared.identity.certPem,
    keyPem: prepared.identity.keyPem,
    fingerprint: prepared.identity.fingerprint,
    secret: prepared.identity.secret,
    allow: rt.server.allow,
    control: rt.listen.control && formatControlAddress(rt.listen.control),
    logger,
    kernel: root
      ? new MptcpKernel(runner, fileRecordStore(serverStateDir(rt.server.stateDir), SERVER_RECORD_FILE))
      : undefined,
    connectTimeoutMs: rt.connectTimeoutMs,
    ...(opts.congestion !== undefined ? { congestionControl: opts.congestion } : {}),
  });
  await daemon.start();
  if (prepared.identity.created) logger.info('server: print the token with `linkmux server --token`');
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info(`${sig}: draining (up to ${rt.drainTimeoutMs / 1000} s), then exiting`);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      void daemon.stop(rt.drainTimeoutMs).then(resolve);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  logger.info('stopped');
}
