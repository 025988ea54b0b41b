/**
 * The linkmux program (commander), holding only the sub-commands a command line
 * needs. Start-up is part of every `linkmux get`: `linkmux get …` registers the
 * get command alone (a sub-command's help, parsing and errors never look at its
 * siblings), `--version` none, and anything else (top-level help, `help`, an
 * unknown command) all of them, in the order `--help` lists. Each command file
 * imports its implementation in its action, so registering one is cheap.
 */
import { createRequire } from 'node:module';
import type * as CommanderJs from 'commander';
import { VERSION } from '../version.js';

// require(), not import: commander is CommonJS, and an ES import of it makes Node lex its
// source for export names first (with ipaddr.js and dns-packet, ~15 ms of CPU per run).
export const { Command, CommanderError } = createRequire(import.meta.url)('commander') as typeof CommanderJs;

type Command = CommanderJs.Command;
type Register = (program: Command) => void;

/** Every sub-command and how to load its registration, in the order `linkmux --help` lists them. */
const COMMANDS: ReadonlyArray<readonly [string, () => Promise<Register>]> = [
  ['get', async () => (await import('./get-command.js')).registerGet],
  ['links', async () => (await import('./links-command.js')).registerLinks],
  ['route', async () => (await import('./route-command.js')).registerRoute],
  ['up', async () => (await import('./up-command.js')).registerUp],
  ['node', async () => (await import('./node-command.js')).registerNode],
  ['gateway', async () => (await import('./gateway-command.js')).registerGateway],
  ['server', async () => (await import('./server-command.js')).registerServer],
  ['status', async () => (await import('./status-command.js')).registerStatus],
  ['config', async () => (await import('./config-command.js')).registerConfig],
  ['demo', async () => (await import('./demo-command.js')).registerDemo],
  ['service', async () => (await import('./service-command.js')).registerService],
];

/** Every sub-command's name, in the order `linkmux --help` lists them. */
export const COMMAND_NAMES: readonly string[] = COMMANDS.map(([name]) => name);

/** The program for these user arguments (every sub-command when `args` is not given). */
export async function buildProgram(args?: readonly string[]): Promise<Command> {
  const program = new Command('linkmux')
    .description('Stack the bandwidth of several network uplinks into one.')
    .version(VERSION)
    // commander's refusals are reported by main() like every other error (usage-errors.ts).
    .configureOutput({ outputError: () => {} })
    .exitOverride();
  const wanted = new Set(args === undefined ? COMMAND_NAMES : commandsFor(args));
  // Loaded concurrently, registered in order.
  const registers = await Promise.all(COMMANDS.filter(([n]) => wanted.has(n)).map(([, load]) => load()));
  for (const register of registers) register(program);
  return program;
}

/**
 * Pure: the sub-commands these user arguments need. The program itself has no
 * options but -V/--version and -h/--help, so a first argument not starting with
 * `-` is the sub-command's name; an option before it (`-h get` is the top-level
 * help) or any other name (`help`, a typo to suggest against) needs them all.
 */
export function commandsFor(args: readonly string[]): readonly string[] {
  if (args.length > 0 && args.every((a) => a === '-V' || a === '--version')) return [];
  const first = args[0];
  return first !== undefined && COMMAND_NAMES.includes(first) ? [first] : COMMAND_NAMES;
}
