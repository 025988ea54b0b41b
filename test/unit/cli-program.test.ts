/**
 * main.ts registers only the sub-command the arguments name (program.ts), for
 * start-up time. That must change nothing a user sees: each sub-command's help
 * (and its sub-commands') is the same alone as among all of them, and the
 * top-level help still lists every command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { COMMAND_NAMES, buildProgram, commandsFor } from '../../src/cli/program.js';

/** "linkmux route setup" → its help text, for a command and every command under it. */
function helps(cmd: Command, path: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const here = [...path, cmd.name()];
  out.set(here.join(' '), cmd.helpInformation());
  for (const sub of cmd.commands) for (const [k, v] of helps(sub, here)) out.set(k, v);
  return out;
}

test('commandsFor: the named command alone; none for --version; all for anything else', () => {
  const all = [...COMMAND_NAMES];
  const cases: Array<[string[], string[]]> = [
    [['get', 'http://x/f', '-o', 'f'], ['get']],
    [['route', 'setup', '--apply'], ['route']],
    [['links'], ['links']],
    [['--version'], []],
    [['-V'], []],
    [['-V', '--version'], []],
    [[], all],
    [['--help'], all],
    [['-h', 'get'], all],
    [['--version', 'get'], all],
    [['help', 'get'], all],
    [['gett'], all],
    [['GET'], all],
  ];
  for (const [args, want] of cases) assert.deepEqual([...commandsFor(args)], want, args.join(' '));
});

test('every sub-command has the same help registered alone as among all of them', async () => {
  const full = helps(await buildProgram());
  assert.ok(COMMAND_NAMES.length >= 11);
  for (const name of COMMAND_NAMES) {
    const alone = await buildProgram([name]);
    assert.deepEqual(
      alone.commands.map((c) => c.name()),
      [name],
    );
    const sub = alone.commands[0] as Command;
    for (const [path, text] of helps(sub, ['linkmux'])) {
      assert.equal(text, full.get(path), `${path}: help differs when registered alone`);
    }
  }
});

test('top-level help and --version: all commands, in order; none', async () => {
  const help = await buildProgram(['--help']);
  assert.deepEqual(
    help.commands.map((c) => c.name()),
    [...COMMAND_NAMES],
  );
  assert.equal(help.helpInformation(), (await buildProgram()).helpInformation());
  const version = await buildProgram(['--version']);
  assert.equal(version.commands.length, 0);
  assert.equal(version.version(), (await buildProgram()).version());
});
