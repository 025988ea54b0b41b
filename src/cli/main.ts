#!/usr/bin/env node
/**
 * The linkmux command line. Thin by design: each sub-command lives in its own
 * file, parses its flags and calls into the library; errors become one line
 * on stderr with a stable code and a non-zero exit. Only the sub-commands the
 * arguments name are loaded (program.ts): start-up is part of every `linkmux get`.
 */
import type { Command as CommandT } from 'commander';
import { CommanderError, buildProgram } from './program.js';
import { reportError } from './report-error.js';
import { reportCommanderError } from './usage-errors.js';

export async function main(argv: string[]): Promise<number> {
  let program: CommandT;
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
