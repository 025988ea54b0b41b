#!/usr/bin/env node
/**
 * The linkmux command line. Thin by design: each sub-command lives in its own
 * file, parses its flags and calls into the library; errors become one line
 * on stderr with a stable code and a non-zero exit.
 *
 * Start-up is part of every `linkmux get`, so only what the command line needs is
 * loaded: `linkmux get …` registers the get command alone (a sub-command's help,
 * parsing and errors never look at its siblings), `--version` none, and anything
 * else (top-level help, an unknown command) all of them, in the order `--help` lists.
 */
import { createRequire } from 'node:module';
import type * as CommanderJs from 'commander';
import { reportError } from './report-error.js';
import { reportCommanderError } from './usage-errors.js';
import { VERSION } from '../version.js';

// require(), not import: commander is CommonJS, and an ES import of it makes Node lex its
// source for export names first (with ipaddr.js and dns-packet, ~15 ms of CPU per run).
const { Command, CommanderError } = createRequire(import.meta.url)('commander') as typeof CommanderJs;

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

/** The program for these user arguments (all sub-commands when `args` is not given). */
export async function buildProgram(args?: readonly string[]): Promise<Command> {
  const program = new Command('linkmux')
    .description('Stack the bandwidth of several network uplinks into one.')
    .version(VERSION)
    // commander's refusals are reported by main() like every other error (usage-errors.ts).
    .configureOutput({ outputError: () => {} })
    .exitOverride();
  const wanted = args === undefined ? COMMANDS : commandsFor(args);
  // Loaded concurrently, registered in order.
  const registers = await Promise.all(wanted.map(([, load]) => load()));
  for (const register of registers) register(program);
  return program;
}

/**
 * Which sub-commands these arguments need. The program itself has no options
 * but -V/--version and -h/--help, so a first argument not starting with `-` is
 * the sub-command's name; an option before it (`-h get` is the top-level help)
 * or any other name (`help`, a typo to suggest against) needs every command.
 */
function commandsFor(args: readonly string[]): typeof COMMANDS {
  if (args.length > 0 && args.every((a) => a === '-V' || a === '--version')) return [];
  const named = COMMANDS.find(([name]) => name === args[0]);
  return named ? [named] : COMMANDS;
}

export async function main(argv: string[]): Promise<number> {
  let program: Command;
  try {
    program = await buildProgram(argv.slice(2));
  } catch (err) {
    return reportError(err);
  }
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) return reportCommanderError(err, program, argv.slice(2));
    return reportError(err);
  }
}

process.exitCode = await main(process.argv);
