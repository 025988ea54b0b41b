/**
 * commander's own refusals (unknown option or command, a missing or excess
 * argument, an invalid choice) reported like every other linkmux error: one
 * `linkmux: error: … [LINKMUX_ERR_USAGE]` line naming the sub-command's help,
 * exit status 2. commander itself prints nothing (main.ts silences its error
 * output); help and --version still exit 0.
 */
import type { Command, CommanderError } from 'commander';
import { LinkmuxError } from '../util/errors.js';
import { reportError } from './report-error.js';

/** The exit status for a CommanderError thrown by `exitOverride()`, after reporting it. */
export function reportCommanderError(
  err: CommanderError,
  program: Command,
  args: readonly string[],
  write: (s: string) => void = (s) => process.stderr.write(s),
): number {
  if (err.exitCode === 0) return 0; // --help, --version, `linkmux help`
  const path = commandPath(program, args);
  const help = `\`${path.join(' ')} --help\``;
  const message =
    err.code === 'commander.help'
      ? // A command with sub-commands run without one: its help is already on stderr.
        `${path.join(' ')} needs a sub-command: one of those listed above`
      : `${err.message.replace(/^error: /, '').replace(/\.$/, '')} (see ${help})`;
  return reportError(new LinkmuxError('LINKMUX_ERR_USAGE', message, { cause: err }), write);
}

/** ["linkmux", "config", "show"]: the deepest sub-command named in `args` (user arguments only). */
export function commandPath(program: Command, args: readonly string[]): string[] {
  const path = [program.name()];
  let current = program;
  for (const arg of args) {
    if (arg === '--') break;
    if (arg.startsWith('-')) continue;
    const sub = current.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) break;
    path.push(sub.name());
    current = sub;
  }
  return path;
}
