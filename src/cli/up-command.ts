/**
 * `linkmux up`: the proxy daemon in the foreground (systemd-friendly: logs to
 * stderr, exits 0 after draining on SIGINT/SIGTERM). Config comes from the
 * YAML file (-c, or ./linkmux.yaml), with flags laid over it.
 */
import type { Command } from 'commander';
import { collect, choiceOption } from './options.js';
import { POLICY_NAMES } from '../scheduler/policies.js';

interface UpFlags {
  config?: string;
  socks?: string;
  http?: string;
  control?: string;
  link?: string[];
  join?: string[];
  node?: boolean;
  policy?: string;
  bind?: 'auto' | 'device' | 'address';
  rpc?: string | boolean;
  server?: string;
  cleanup?: boolean;
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
      '-l, --link <name|address|socks5://…>',
      'use this uplink or SOCKS5 upstream (repeatable; default: every usable uplink)',
      collect,
    )
    .option('--join <token>', "use a linkmux node's uplinks too (its join token; repeatable)", collect)
    .option(
      '--server <token>',
      'send every connection through this linkmux server over ONE MPTCP connection using every uplink (root)',
    )
    .option(
      '--cleanup',
      'remove the MPTCP endpoints, limits and rules a crashed `up --server` left, then exit',
    )
    .option('--node', "also lend this machine's uplinks to the LAN as a node (node: in the config)")
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
    .option(
      '--rpc [addr]',
      'serve the aria2 JSON-RPC (AriaNg, browser extensions) on addr (default 127.0.0.1:6800) and at /jsonrpc on the control address',
    )
    .addHelpText(
      'after',
      `
Examples:
  linkmux up                                   # every usable uplink, SOCKS5 on 127.0.0.1:1080, HTTP on :8080
  curl --socks5-hostname 127.0.0.1:1080 https://example.org/
  linkmux up -c linkmux.yaml --policy sticky
  linkmux up --rpc                             # + aria2 JSON-RPC on 127.0.0.1:6800 (AriaNg, extensions)
  linkmux status                               # what every link is doing
  sudo linkmux up --server lmx1_…              # one connection over every uplink, through your linkmux server
  sudo linkmux up --cleanup                    # after a crash of up --server: its MPTCP endpoints, limits, rules`,
    )
    .action(async (flags: UpFlags) => {
      const { loadConfig, mergeFlags } = await import('../config/load.js');
      const loaded = await loadConfig(flags.config !== undefined ? { file: flags.config } : {});
      const off = (v: string | undefined) => (v === undefined ? undefined : v === 'off' ? false : v);
      const config = mergeFlags(loaded.config, {
        listen: { socks: off(flags.socks), http: off(flags.http), control: off(flags.control) },
        ...(flags.link ? { links: flags.link } : {}),
        ...(flags.join ? { join: flags.join } : {}),
        ...(flags.node ? { node: { enabled: true } } : {}),
        ...(flags.policy ? { policy: flags.policy as never } : {}),
        ...(flags.bind ? { bind: flags.bind } : {}),
        ...(flags.rpc !== undefined
          ? { rpc: { enabled: true, ...(typeof flags.rpc === 'string' ? { listen: off(flags.rpc) } : {}) } }
          : {}),
        ...(flags.server !== undefined ? { server: { token: flags.server } } : {}),
      });
      if (flags.cleanup) {
        const { cleanupServerClient } = await import('./server-client.js');
        await cleanupServerClient(config);
        return;
      }
      // Loaded here, not at the top: the daemon's modules are most of linkmux, and `--help` needs none.
      const { runDaemon } = await import('./run-daemon.js');
      await runDaemon(config, loaded.source, 'up');
    });
}
