/**
 * `linkmux service install|uninstall up|node|gateway`: run a linkmux daemon as
 * a hardened systemd service. Thin: the unit is rendered in
 * src/service/unit-file.ts and installed by src/service/install.ts.
 */
import type { Command } from 'commander';
import { accessSync, constants } from 'node:fs';
import { release } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { choiceOption } from './options.js';
import { SERVICE_KINDS as KINDS } from '../service/unit-file.js';
import type { ServiceKind } from '../service/unit-file.js';

interface InstallFlags {
  config?: string;
  print?: boolean;
}

export function registerService(program: Command): void {
  const service = program
    .command('service')
    .description('run `linkmux up`, `node` or `gateway` as a systemd service (install, uninstall)');
  service
    .command('install')
    .description('write /etc/systemd/system/linkmux-KIND.service, enable and start it (root)')
    .argument('<kind>', 'up, node or gateway', choiceOption('kind', KINDS))
    .option('-c, --config <file>', 'the config the service runs with (default: ./linkmux.yaml if present)')
    .option('--print', 'only print the unit; change nothing (no root needed)')
    .addHelpText(
      'after',
      `
Examples:
  linkmux service install up -c /etc/linkmux/linkmux.yaml --print
  sudo "$(command -v linkmux)" service install up -c /etc/linkmux/linkmux.yaml
  journalctl -u linkmux-up -f
  sudo "$(command -v linkmux)" service uninstall up`,
    )
    .action(async (kind: ServiceKind, flags: InstallFlags) => {
      const { installService, prepareUnit } = await import('../service/install.js');
      const deps = await serviceDeps();
      if (flags.print) {
        const unit = await prepareUnit(kind, flags.config, deps, 'print');
        if (unit.configFromCwd) deps.log(`config: ${unit.configPath} (found in the current directory)`);
        process.stdout.write(unit.text);
        return;
      }
      await installService(kind, flags.config, deps);
    });
  service
    .command('uninstall')
    .description('stop, disable and remove linkmux-KIND.service (root; nothing to do when absent)')
    .argument('<kind>', 'up, node or gateway', choiceOption('kind', KINDS))
    .action(async (kind: ServiceKind) => {
      const { uninstallService } = await import('../service/install.js');
      await uninstallService(kind, await serviceDeps());
    });
}

async function serviceDeps(): Promise<import('../service/install.js').ServiceDeps> {
  const { ExecRunner } = await import('../util/runner.js');
  return {
    runner: new ExecRunner(),
    root: '/',
    isRoot: process.getuid?.() === 0,
    findCommand: (name) => findOnPath(name, process.env.PATH ?? ''),
    // The running node and this CLI's own main.js (beside this file), both absolute.
    // The unit must not look `node` or `linkmux` up on PATH: with nvm they live in
    // the user's home and on the user's PATH only, so root would find another node
    // (too old) or none at all.
    nodePath: process.execPath,
    mainPath: fileURLToPath(new URL('./main.js', import.meta.url)),
    cwd: process.cwd(),
    kernelRelease: release(),
    log: (line) => process.stderr.write(`linkmux: ${line}\n`),
  };
}

function findOnPath(name: string, pathVar: string): string | undefined {
  for (const dir of pathVar.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
