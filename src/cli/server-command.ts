/**
 * `linkmux server`: run on a machine of your own on a fast line (a VPS). Clients
 * (`linkmux up --server TOKEN`, `linkmux get --server TOKEN`) send every
 * connection to it over ONE kernel-MPTCP connection whose subflows use all of
 * their uplinks; it relays to the internet. `--init` makes the identity and
 * prints the token, `--token` prints it again, `--rotate` replaces it.
 */
import type { Command } from 'commander';
import { collect } from './options.js';

interface ServerFlags {
  config?: string;
  listen?: string;
  advertise?: string;
  name?: string;
  allow?: string[];
  control?: string;
  stateDir?: string;
  init?: boolean;
  token?: boolean;
  rotate?: boolean;
  congestion?: string;
}

export function registerServer(program: Command): void {
  program
    .command('server')
    .description(
      'relay for `up --server`: one MPTCP connection per client connection, over all its uplinks (foreground)',
    )
    .option('-c, --config <file>', 'YAML config (default: ./linkmux.yaml if present); see server: in it')
    .option(
      '--listen <addr>',
      'HOST:PORT or a port (default [::]:7400, every address; the token is always required)',
    )
    .option(
      '--advertise <host[:port]>',
      'the address clients dial, written into the token (default: a public address here)',
    )
    .option('--name <name>', "the server's name in its token (default: host name)")
    .option(
      '--allow <cidr>',
      'relay to this private/loopback network too (repeatable; default: none)',
      collect,
    )
    .option('--control <addr>', 'control API address, or "off" (default 127.0.0.1:9190)')
    .option('--state-dir <dir>', 'where the certificate, key and secret are kept (in server/ below it)')
    .option(
      '--congestion <name>',
      'TCP congestion control of the MPTCP subflows, or "system" for net.ipv4.tcp_congestion_control (default cubic)',
    )
    .option('--init', 'create the identity if needed, print the token and exit')
    .option('--token', 'print the token and exit')
    .option('--rotate', 'with --init: replace certificate and secret (every old token stops working)')
    .addHelpText(
      'after',
      `
Examples:
  linkmux server --init --advertise vps.example.org   # on the server: prints a token (a secret)
  linkmux server                                      # serve (MPTCP on every address, port 7400)
  sudo linkmux up --server lmx1_…                     # on the client: one connection over every uplink
  sudo linkmux get --server lmx1_… https://example.org/big.iso`,
    )
    .action(async (flags: ServerFlags) => {
      const { loadConfig, mergeFlags } = await import('../config/load.js');
      const { LinkmuxError } = await import('../util/errors.js');
      if (flags.rotate && !flags.init) {
        throw new LinkmuxError('LINKMUX_ERR_USAGE', '--rotate replaces the identity: use it with --init');
      }
      const loaded = await loadConfig(flags.config !== undefined ? { file: flags.config } : {});
      const config = mergeFlags(loaded.config, {
        ...(flags.control !== undefined
          ? { listen: { control: flags.control === 'off' ? false : flags.control } }
          : {}),
        server: {
          ...(flags.listen !== undefined ? { listen: flags.listen } : {}),
          ...(flags.advertise !== undefined ? { advertise: flags.advertise } : {}),
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(flags.allow ? { allow: flags.allow } : {}),
          ...(flags.stateDir !== undefined ? { stateDir: flags.stateDir } : {}),
        },
      });
      const { runServer } = await import('./run-server.js');
      await runServer(config, loaded.source, {
        printToken: Boolean(flags.init || flags.token),
        rotate: Boolean(flags.rotate),
        ...(flags.congestion !== undefined
          ? { congestion: flags.congestion === 'system' ? false : flags.congestion }
          : {}),
      });
    });
}
