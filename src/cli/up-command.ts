/**
 * `linkmux up`: the proxy daemon in the foreground (systemd-friendly: logs to
 * stderr, exits 0 after draining on SIGINT/SIGTERM). Config comes from the
 * YAML file (-c, or ./linkmux.yaml), with flags laid over it.
 */
import type { Command } from 'commander';
import { formatControlAddress } from '../control/control-address.js';
import { createLogger } from '../util/logger.js';
import { collect, choiceOption } from './options.js';
import { openLinks } from './open-links.js';
import { POLICY_NAMES } from '../scheduler/policies.js';

interface UpFlags {
  config?: string;
  socks?: string;
  http?: string;
  control?: string;
  link?: string[];
  policy?: string;
  bind?: 'auto' | 'device' | 'address';
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('run the SOCKS5 + HTTP proxy that spreads connections over every uplink (foreground)')
    .option(
      '-c, --config <file>',
      'YAML config (default: ./linkmux.yaml if present; `linkmux config init` writes one)',
    )
    .option('--socks <addr>', 'SOCKS5 listen address, or "off" (default 127.0.0.1:1080)')
    .option('--http <addr>', 'HTTP proxy listen address, or "off" (default 127.0.0.1:8080)')
    .option(
      '--control <addr>',
      'control API address (host:port or a unix socket path), or "off" (default 127.0.0.1:9190)',
    )
    .option(
      '-l, --link <name|address>',
      'use this uplink (repeatable; default: every usable uplink)',
      collect,
    )
    .option(
      '--policy <name>',
      `link choice for new connections: ${POLICY_NAMES.join(', ')}`,
      choiceOption('--policy', POLICY_NAMES),
    )
    .option(
      '--bind <mode>',
      'auto, device (SO_BINDTODEVICE) or address',
      choiceOption('--bind', ['auto', 'device', 'address'] as const),
    )
    .addHelpText(
      'after',
      `
Examples:
  linkmux up                                   # every usable uplink, SOCKS5 on 127.0.0.1:1080, HTTP on :8080
  curl --socks5-hostname 127.0.0.1:1080 https://example.org/
  linkmux up -c linkmux.yaml --policy sticky
  linkmux status                               # what every link is doing`,
    )
    .action(async (flags: UpFlags) => {
      const { loadConfig, mergeFlags } = await import('../config/load.js');
      const { toRuntime } = await import('../config/runtime.js');
      const { Daemon } = await import('../daemon/daemon.js');
      const loaded = await loadConfig(flags.config !== undefined ? { file: flags.config } : {});
      const off = (v: string | undefined) => (v === undefined ? undefined : v === 'off' ? false : v);
      const config = mergeFlags(loaded.config, {
        listen: { socks: off(flags.socks), http: off(flags.http), control: off(flags.control) },
        ...(flags.link ? { links: flags.link } : {}),
        ...(flags.policy ? { policy: flags.policy as never } : {}),
        ...(flags.bind ? { bind: flags.bind } : {}),
      });
      const rt = toRuntime(config);
      const logger = createLogger(rt.log);
      logger.info(`config: ${loaded.source}`);
      const links = await openLinks([...rt.links], rt.bind, logger);
      const daemon = new Daemon({
        links,
        listen: {
          socks: rt.listen.socks && formatControlAddress(rt.listen.socks),
          http: rt.listen.http && formatControlAddress(rt.listen.http),
          control: rt.listen.control && formatControlAddress(rt.listen.control),
        },
        auth: rt.auth,
        allowOpen: config.listen.allowOpen,
        policy: rt.policy,
        weights: { ...rt.weights },
        ...(rt.policyOptions.ttlMs !== undefined ? { stickyTtlMs: rt.policyOptions.ttlMs } : {}),
        connectTimeoutMs: rt.connectTimeoutMs,
        failoverAttempts: rt.failover.attempts,
        staggerMs: rt.failover.staggerMs,
        health: rt.health,
        rules: rt.rules.map((r) => ({ match: { ...r.match }, action: r.action })),
        privateDirect: rt.privateDirect,
        logger,
      });
      await daemon.start();
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
    });
}
