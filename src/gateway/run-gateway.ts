/**
 * The glue behind `linkmux gateway`: config → checks → plan → kernel, then the
 * daemon in the foreground until SIGINT/SIGTERM. Every refusal (not Linux, not
 * root, no uplinks, a missing interface, a gateway off its subnet, marks or
 * tables in use, nft missing) happens before the first change, and the config
 * and kernel problems come in one message, each with its fix. `--dry-run`
 * changes nothing, so it needs neither nft, conntrack nor IPv4 forwarding
 * (it warns that a real run will).
 */
import { loadConfig, mergeFlags } from '../config/load.js';
import { toRuntime } from '../config/runtime.js';
import { formatControlAddress } from '../control/control-address.js';
import { discoverInterfaces } from '../net/interfaces.js';
import { LocalLink } from '../links/local-link.js';
import { LinkmuxError } from '../util/errors.js';
import { createLogger } from '../util/logger.js';
import { ExecRunner } from '../util/runner.js';
import type { Runner } from '../util/runner.js';
import { healthAtStart } from '../health/targets-at-start.js';
import { GatewayDaemon } from './gateway-daemon.js';
import { GatewayKernel, gatewayRefusal } from './kernel.js';
import { planGateway } from './plan.js';
import type { GatewayNumbers } from './plan.js';
import { renderDryRun } from './render.js';
import { resolveUplinks, toGatewayRules } from './uplinks.js';

export interface GatewayRunFlags {
  config?: string;
  dryRun?: boolean;
  cleanup?: boolean;
  control?: string;
}

export async function runGateway(flags: GatewayRunFlags, runner: Runner = new ExecRunner()): Promise<void> {
  if (process.platform !== 'linux') {
    throw new LinkmuxError(
      'LINKMUX_ERR_UNSUPPORTED_PLATFORM',
      'linkmux gateway needs Linux (nftables and policy routing)',
    );
  }
  const loaded = await loadConfig(flags.config !== undefined ? { file: flags.config } : {});
  const config = mergeFlags(loaded.config, {
    ...(flags.control !== undefined
      ? { listen: { control: flags.control === 'off' ? false : flags.control } }
      : {}),
  });
  const rt = toRuntime(config);
  const logger = createLogger(rt.log);
  const g = config.gateway;
  const numbers: GatewayNumbers = {
    markBase: g.markBase,
    markMask: g.markMask,
    tableBase: g.tableBase,
    priority: g.priority,
  };
  const kernel = new GatewayKernel(runner, numbers);
  if (!flags.dryRun && process.getuid?.() !== 0) {
    throw new LinkmuxError(
      'LINKMUX_ERR_NOT_ROOT',
      `linkmux gateway ${flags.cleanup ? '--cleanup ' : ''}changes nftables and routing: run it as root (sudo), ` +
        'or see what it would do with --dry-run',
    );
  }
  if (flags.cleanup) {
    await kernel.cleanup();
    process.stderr.write(
      'linkmux gateway: removed table inet linkmux, its ip rules and its routing tables\n',
    );
    return;
  }
  // Every problem at once, each with its own fix: the config's, then the kernel's (read-only checks).
  const interfaces = await discoverInterfaces(runner);
  const { uplinks, problems } = resolveUplinks(g.uplinks, interfaces);
  if (g.lan.length === 0)
    problems.unshift('gateway.lan is empty: name the LAN interface(s), e.g. lan: [eth0]');
  const rules = toGatewayRules(g.rules);
  const report = await kernel.check(uplinks, g.lan, interfaces, { dryRun: !!flags.dryRun });
  problems.push(...report.problems);
  if (problems.length > 0 || report.missingTools.length > 0) {
    throw gatewayRefusal({ problems, missingTools: report.missingTools });
  }
  for (const w of report.warnings) logger.warn(w);
  if (flags.dryRun) {
    const plan = planGateway({ lan: g.lan, uplinks, rules, numbers, online: new Map(), measured: new Map() });
    process.stdout.write(renderDryRun(plan));
    return;
  }
  // Probes leave bound to each uplink's device (SO_BINDTODEVICE), whatever the routing tables say.
  const links = uplinks.map(
    (u) =>
      new LocalLink(
        interfaces.find((i) => i.name === u.dev)!,
        { mode: 'device', logger },
      ),
  );
  const daemon = new GatewayDaemon({
    kernel,
    uplinks,
    lan: g.lan,
    rules,
    numbers,
    links,
    health: await healthAtStart(rt.health, rt.healthTargetsSet, logger),
    weightIntervalMs: g.weightInterval * 1000,
    control: rt.listen.control && formatControlAddress(rt.listen.control),
    logger,
  });
  logger.info(`config: ${loaded.source}`);
  await daemon.start();
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info(`${sig}: removing linkmux's rules, then exiting`);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  await daemon.stop();
  logger.info('stopped; the kernel is as before');
}
