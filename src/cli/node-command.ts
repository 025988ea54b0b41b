/**
 * `linkmux node`: lend this machine's uplinks to the other linkmux machines of
 * the LAN (TLS + SOCKS5, authenticated by a join token). Runs in the
 * foreground like `up`, with the proxy front ends off unless `--with-proxy`
 * (or `linkmux up --node`) asks for both. `--init` makes the identity and
 * prints the token; `--token` prints it again; `--rotate` makes a new identity
 * (old tokens stop working).
 */
import type { Command } from 'commander';
import { collect } from './options.js';

interface NodeFlags {
  config?: string;
  listen?: string;
  advertise?: string;
  name?: string;
  allow?: string[];
  link?: string[];
  control?: string;
  stateDir?: string;
  init?: boolean;
  token?: boolean;
  rotate?: boolean;
  withProxy?: boolean;
}

export function registerNode(program: Command): void {
  program
    .command('node')
    .description("lend this machine's uplinks to other linkmux machines on the LAN (foreground)")
    .option('-c, --config <file>', 'YAML config (default: ./linkmux.yaml if present); see node: in it')
    .option(
      '--listen <addr>',
      'lan[:PORT] (every private address here), HOST:PORT or a port (default lan:7300)',
    )
    .option('--advertise <host[:port]>', 'the address the join token tells clients to dial')
    .option('--name <name>', "the node's name, shown on clients (default: host name)")
    .option(
      '--allow <cidr>',
      'relay to this private/loopback network too (repeatable; default: none)',
      collect,
    )
    .option(
      '-l, --link <name|address>',
      'lend this uplink (repeatable; default: every usable uplink)',
      collect,
    )
    .option('--control <addr>', 'control API address, or "off" (default 127.0.0.1:9190)')
    .option('--state-dir <dir>', 'where the certificate, key and secret are kept')
    .option('--init', 'create the identity if needed, print the join token and exit')
    .option('--token', 'print the join token and exit')
    .option('--rotate', 'with --init: replace certificate and secret (every old token stops working)')
    .option('--with-proxy', 'also run the SOCKS5/HTTP proxy front ends, as `linkmux up` would')
    .addHelpText(
      'after',
      `
Examples:
  linkmux node --init                          # on the lending machine: prints a join token
  linkmux node                                 # serve (listens on this machine's LAN addresses, port 7300)
  linkmux up --join lmx1_…                     # on the using machine: the node's uplink becomes a link
  linkmux get --join lmx1_… https://example.org/big.iso`,
    )
    .action(async (flags: NodeFlags) => {
      const { loadConfig, mergeFlags } = await import('../config/load.js');
      const loaded = await loadConfig(flags.config !== undefined ? { file: flags.config } : {});
      const config = mergeFlags(loaded.config, {
        listen: {
          ...(flags.withProxy ? {} : { socks: false, http: false }),
          ...(flags.control !== undefined
            ? { control: flags.control === 'off' ? false : flags.control }
            : {}),
        },
        ...(flags.link ? { links: flags.link } : {}),
        node: {
          enabled: true,
          ...(flags.listen !== undefined ? { listen: flags.listen } : {}),
          ...(flags.advertise !== undefined ? { advertise: flags.advertise } : {}),
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(flags.allow ? { allow: flags.allow } : {}),
          ...(flags.stateDir !== undefined ? { stateDir: flags.stateDir } : {}),
        },
      });
      if (flags.rotate && !flags.init) {
        const { LinkmuxError } = await import('../util/errors.js');
        throw new LinkmuxError('LINKMUX_ERR_USAGE', '--rotate replaces the identity: use it with --init');
      }
      if (flags.init || flags.token) {
        await printToken(config, Boolean(flags.rotate));
        return;
      }
      const { runDaemon } = await import('./run-daemon.js');
      await runDaemon(config, loaded.source, 'node');
    });
}

async function printToken(config: import('../config/schema.js').Config, rotate: boolean): Promise<void> {
  const { toRuntime } = await import('../config/runtime.js');
  const { prepareNode } = await import('../relay/node-setup.js');
  const { discoverInterfaces } = await import('../net/interfaces.js');
  const { selectUplinks } = await import('../links/select.js');
  const { ExecRunner } = await import('../util/runner.js');
  const { createLogger } = await import('../util/logger.js');
  const { formatHostPort } = await import('../net/address.js');
  const rt = toRuntime(config);
  const interfaces = await discoverInterfaces(new ExecRunner());
  const lend = selectUplinks(interfaces, rt.links).map((i) => i.name);
  const node = await prepareNode(rt.node, interfaces, lend, { rotate, logger: createLogger(rt.log) });
  const what = node.identity.created ? 'new identity' : 'identity';
  process.stderr.write(
    `node ${node.token.name}: ${what} in ${node.identity.dir}, certificate sha256:${node.identity.fingerprint}\n` +
      `lends ${node.lend.join(', ')}; clients dial ${formatHostPort(node.token)}\n` +
      `join token (a secret: give it only to machines that may use this uplink):\n`,
  );
  process.stdout.write(`${node.tokenText}\n`);
}
