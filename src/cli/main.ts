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
import { registerServer } from './server-command.js';
import { reportError } from './report-error.js';
import { VERSION } from '../version.js';

export function buildProgram(): Command {
  const program = new Command('linkmux')
    .description('Stack the bandwidth of several network uplinks into one.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
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
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message (or help/version, which exit 0).
      return err.exitCode === 0 ? 0 : 2;
    }
    return reportError(err);
  }
}

process.exitCode = await main(process.argv);
