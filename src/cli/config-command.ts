/**
 * `linkmux config show [-c FILE] [--json]`: the effective configuration (file
 * over defaults), validated, password redacted — YAML by default, JSON for
 * scripts. `linkmux config init [FILE] [--force]`: writes the commented example
 * (default ./linkmux.yaml), never over an existing file unless --force, and
 * readable by its owner only since it may come to hold a password.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_CONFIG_FILE, EXAMPLE_CONFIG } from '../config/example.js';
import { LinkmuxError, systemCode } from '../util/errors.js';

export interface ConfigCommandDeps {
  write?: (text: string) => void;
  cwd?: string;
}

export function registerConfig(program: Command, deps: ConfigCommandDeps = {}): void {
  const write = deps.write ?? ((s: string) => void process.stdout.write(s));
  const cwd = () => deps.cwd ?? process.cwd();
  // Paths are shown in messages as the user typed them; deps.cwd only serves tests.
  const resolve = (file: string) => (deps.cwd ? path.resolve(deps.cwd, file) : file);
  const config = program.command('config').description('show or create the configuration of `linkmux up`');

  config
    .command('show')
    .description(
      `print the effective configuration (-c FILE, else ./${DEFAULT_CONFIG_FILE} if present, else defaults)`,
    )
    .option('-c, --config <file>', 'the YAML config file')
    .option('--json', 'print JSON instead of YAML')
    .action(async (flags: { config?: string; json?: boolean }) => {
      // Loaded here, not at the top: zod and yaml would slow every other command's start-up.
      const { loadConfig, redactConfig } = await import('../config/load.js');
      const { stringify } = await import('yaml');
      const file = flags.config === undefined ? undefined : resolve(flags.config);
      const { config: effective, source } = await loadConfig({ ...(file ? { file } : {}), cwd: cwd() });
      const shown = redactConfig(effective);
      if (flags.json) {
        write(`${JSON.stringify(shown, null, 2)}\n`);
        return;
      }
      const from = source === 'defaults' ? 'built-in defaults' : `${source} over the defaults`;
      write(`# effective configuration: ${from}\n${stringify(shown)}`);
    });

  config
    .command('init')
    .description(`write a commented example config (default ./${DEFAULT_CONFIG_FILE})`)
    .argument('[file]', 'where to write it', DEFAULT_CONFIG_FILE)
    .option('--force', 'overwrite the file if it exists')
    .action(async (file: string, flags: { force?: boolean }) => {
      const target = resolve(file);
      try {
        // 'wx' fails if the file exists, atomically: no check-then-write race.
        await writeFile(target, EXAMPLE_CONFIG, { flag: flags.force ? 'w' : 'wx', mode: 0o600 });
      } catch (err) {
        const code = systemCode(err);
        if (code === 'EEXIST') {
          throw new LinkmuxError(
            'LINKMUX_ERR_OUTPUT_EXISTS',
            `${file} already exists: pass --force to overwrite it, or give another file name`,
          );
        }
        throw new LinkmuxError('LINKMUX_ERR_IO', `cannot write ${file}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      write(
        `wrote ${file}; edit it, check it with \`linkmux config show -c ${file}\`, then run \`linkmux up -c ${file}\`\n`,
      );
    });
}
