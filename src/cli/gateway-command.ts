/**
 * `linkmux gateway`: on a Linux router, spread every new LAN connection over
 * the WAN uplinks (nftables + policy routing), with health checks. Foreground;
 * SIGINT/SIGTERM remove everything it added. `--dry-run` prints what it would
 * install; `--cleanup` removes what a crashed run left behind.
 */
import type { Command } from 'commander';

interface GatewayFlags {
  config?: string;
  dryRun?: boolean;
  cleanup?: boolean;
  control?: string;
}

export function registerGateway(program: Command): void {
  program
    .command('gateway')
    .description('balance every LAN connection over all WAN uplinks of this Linux router (root, foreground)')
    .option('-c, --config <file>', 'YAML config with a gateway: section (default: ./linkmux.yaml)')
    .option('--dry-run', 'print the nftables ruleset, ip rules and routes it would install, and exit')
    .option('--cleanup', 'remove every table, rule and route linkmux added (after a crash), and exit')
    .option('--control <addr>', 'control API address, or "off" (default 127.0.0.1:9190)')
    .addHelpText(
      'after',
      `
Config (linkmux.yaml):
  gateway:
    lan: [eth0]
    uplinks:
      - { interface: eth1 }                 # next hop from its default route
      - { interface: wwan0, gateway: 10.64.0.1, weight: 1 }
    rules:
      - { match: { source: 192.168.1.50/32 }, action: uplink:eth1 }
      - { match: { destination: 192.0.2.0/24 }, action: bypass }

Examples:
  sudo linkmux gateway --dry-run
  sudo linkmux gateway
  linkmux status`,
    )
    .action(async (flags: GatewayFlags) => {
      const { runGateway } = await import('../gateway/run-gateway.js');
      await runGateway(flags);
    });
}
