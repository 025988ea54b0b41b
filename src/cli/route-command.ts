/**
 * `linkmux route setup`: the policy routing that makes source-address binding
 * pick the right uplink on Linux. Prints the plan as shell lines by default
 * (safe: changes nothing, and can be piped to `sh`); `--apply` installs it,
 * `--remove` deletes every rule and table linkmux owns. Both need root.
 */
import type { Command } from 'commander';
import { LinkmuxError } from '../util/errors.js';
import type { Runner } from '../util/runner.js';
import { ExecRunner } from '../util/runner.js';
import { POLICY_SPAN, planPolicyRoutes, validatePolicyOptions } from '../net/policy-routing.js';
import { collect, intOption } from './options.js';

interface RouteSetupFlags {
  link?: string[];
  apply?: boolean;
  remove?: boolean;
  tableBase: number;
  priorityBase: number;
}

export interface RouteDeps {
  runner?: Runner;
  platform?: NodeJS.Platform;
  isRoot?: () => boolean;
  write?: (text: string) => void;
  writeErr?: (text: string) => void;
}

export function registerRoute(program: Command, deps: RouteDeps = {}): void {
  const route = program.command('route').description('policy routing for uplinks (Linux)');
  route
    .command('setup')
    .description(
      'print (default), install (--apply) or remove (--remove) the ip rules that steer each uplink',
    )
    .option(
      '-l, --link <name|address>',
      'plan for this uplink (repeatable; default: every usable uplink)',
      collect,
    )
    .option('--apply', 'install the rules and tables (as root; running it again changes nothing)')
    .option('--remove', 'delete every rule and table linkmux owns (as root; safe to run twice)')
    .option(
      '--table-base <n>',
      `first routing table linkmux uses; it owns ${POLICY_SPAN} from there`,
      intOption('--table-base', 1, 0xffffffff - POLICY_SPAN + 1),
      100,
    )
    .option(
      '--priority-base <n>',
      `first ip rule priority linkmux uses; it owns ${POLICY_SPAN} from there`,
      intOption('--priority-base', 1, 32765 - POLICY_SPAN + 1),
      10000,
    )
    .addHelpText(
      'after',
      `
Examples:
  linkmux route setup                  # show the plan for every usable uplink
  linkmux route setup -l eth0 -l wlan0 --apply
  linkmux route setup --remove`,
    )
    .action(async (flags: RouteSetupFlags) => {
      const write = deps.write ?? ((s: string) => void process.stdout.write(s));
      const writeErr = deps.writeErr ?? ((s: string) => void process.stderr.write(s));
      if (flags.apply && flags.remove) {
        throw new LinkmuxError('LINKMUX_ERR_USAGE', '--apply and --remove exclude each other: pick one');
      }
      const opts = validatePolicyOptions({ tableBase: flags.tableBase, priorityBase: flags.priorityBase });
      const platform = deps.platform ?? process.platform;
      if (platform !== 'linux') {
        throw new LinkmuxError(
          'LINKMUX_ERR_UNSUPPORTED_PLATFORM',
          `policy routing is for Linux; on ${platform} binding the source address already picks the ` +
            'interface, so there is nothing to set up',
        );
      }
      const isRoot = deps.isRoot ?? (() => process.getuid?.() === 0);
      if ((flags.apply || flags.remove) && !isRoot()) {
        throw new LinkmuxError(
          'LINKMUX_ERR_NOT_ROOT',
          `route setup ${flags.apply ? '--apply' : '--remove'} changes the routing rules: run it as root ` +
            '(sudo), or run without the flag and review the printed commands',
        );
      }
      const runner = deps.runner ?? new ExecRunner();

      if (flags.remove) {
        if (flags.link?.length)
          writeErr('linkmux: --link is ignored with --remove: every rule linkmux owns goes\n');
        const ran = await planPolicyRoutes([], opts).remove(runner);
        write(ran.length ? ran.map((a) => `ip ${a.join(' ')}\n`).join('') : '# nothing to remove\n');
        return;
      }

      // Loaded here, not at the top: `linkmux --help` needs none of the links' modules.
      const [{ discoverInterfaces }, { selectUplinks }] = await Promise.all([
        import('../net/interfaces.js'),
        import('../links/select.js'),
      ]);
      const uplinks = selectUplinks(await discoverInterfaces(runner, platform), flags.link ?? [], platform);
      const plan = planPolicyRoutes(uplinks, opts);
      if (plan.rules.length === 0) {
        write(plan.render());
        throw new LinkmuxError(
          'LINKMUX_ERR_NO_LINKS',
          'no uplink has both a gateway and an address, so there is nothing to route: check `linkmux links`',
        );
      }
      if (!flags.apply) {
        write(plan.render());
        write('# to install: linkmux route setup --apply (as root); to undo: linkmux route setup --remove\n');
        return;
      }
      const ran = await plan.apply(runner);
      write(
        ran.length ? ran.map((a) => `ip ${a.join(' ')}\n`).join('') : '# already in place: nothing changed\n',
      );
    });
}
