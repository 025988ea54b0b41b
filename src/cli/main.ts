#!/usr/bin/env node
/**
 * The linkmux command line. Thin by design: each sub-command lives in its own
 * file, parses its flags and calls into the library; errors become one line
 * on stderr with a stable code and a non-zero exit.
 */
import { Command, CommanderError } from 'commander';
import { registerGet } from './get-command.js';
import { registerLinks } from './links-command.js';
import { registerRoute } from './route-command.js';
import { registerDemo } from './demo-command.js';
import { registerUp } from './up-command.js';
import { registerNode } from './node-command.js';
import { registerGateway } from './gateway-command.js';
import { registerStatus } from './status-command.js';
import { registerConfig } from './config-command.js';
import { registerService } from './service-command.js';
import { registerServer } from './server-command.js';
import { reportError } from './report-error.js';
import { reportCommanderError } from './usage-errors.js';
import { VERSION } from '../version.js';

export function buildProgram(): Command {
  const program = new Command('linkmux')
    .description('Stack the bandwidth of several network uplinks into one.')
    .version(VERSION)
    // commander's refusals are reported by main() like every other error (usage-errors.ts).
    .configureOutput({ outputError: () => {} })
    .exitOverride();
  registerGet(program);
  registerLinks(program);
  registerRoute(program);
  registerUp(program);
  registerNode(program);
  registerGateway(program);
  registerServer(program);
  registerStatus(program);
  registerConfig(program);
  registerDemo(program);
  registerService(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) return reportCommanderError(err, program, argv.slice(2));
    return reportError(err);
  }
}

process.exitCode = await main(process.argv);
