/**
 * `linkmux config show` and `linkmux config init`, in-process through a
 * commander program holding only registerConfig, plus the same commands
 * spawned through dist/src/cli/main.js. Everything happens in a temp dir.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { registerConfig } from '../../src/cli/config-command.js';
import { reportError } from '../../src/cli/report-error.js';
import { EXAMPLE_CONFIG } from '../../src/config/example.js';
import { parseConfig } from '../../src/config/load.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/loopback.js';
import { cliPath } from '../helpers/netns.js';

let root: { dir: string; cleanup: () => Promise<void> };
before(async () => {
  root = await tempDir('lmx-config-');
});
after(() => root.cleanup());

const DEFAULTS = parseConfig({}, 'defaults');

/** Runs `linkmux <args>` in-process with `cwd`; resolves with stdout, rejects with what the action threw. */
async function run(args: string[], cwd: string): Promise<string> {
  let out = '';
  const program = new Command('linkmux').exitOverride();
  registerConfig(program, { write: (s) => (out += s), cwd });
  await program.parseAsync(['node', 'linkmux', ...args]);
  return out;
}

async function dirWith(name: string, files: Record<string, string> = {}): Promise<string> {
  const dir = join(root.dir, name);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
  return dir;
}

test('config show without a file prints the defaults as YAML', async () => {
  const dir = await dirWith('empty');
  const out = await run(['config', 'show'], dir);
  assert.match(out, /^# effective configuration: built-in defaults\n/);
  assert.deepEqual(parseYaml(out), DEFAULTS);
});

test('config show picks up ./linkmux.yaml, -c FILE wins, --json, password redacted', async () => {
  const dir = await dirWith('show', {
    'linkmux.yaml': 'policy: round-robin\n',
    'other.yaml':
      'log: debug\nauth:\n  username: alice\n  password: s3cret\nlisten:\n  socks: 0.0.0.0:1080\n',
  });
  const found = await run(['config', 'show'], dir);
  assert.match(found, /^# effective configuration: .*linkmux\.yaml over the defaults\n/);
  assert.equal((parseYaml(found) as { policy: string }).policy, 'round-robin');

  for (const json of [false, true]) {
    const out = await run(['config', 'show', '-c', 'other.yaml', ...(json ? ['--json'] : [])], dir);
    const shown = (json ? JSON.parse(out) : parseYaml(out)) as { log: string; policy: string; auth: unknown };
    assert.equal(shown.log, 'debug');
    assert.equal(shown.policy, 'adaptive', '-c replaces ./linkmux.yaml, it does not stack on it');
    assert.deepEqual(shown.auth, { username: 'alice', password: '***' });
    assert.ok(!out.includes('s3cret'), 'the password never reaches stdout');
  }
});

test('config show with a bad file fails with LINKMUX_ERR_CONFIG, path and line; exit status 1', async () => {
  const dir = await dirWith('bad', { 'bad.yaml': 'health:\n  interval: fast\n' });
  const err = await run(['config', 'show', '-c', 'bad.yaml'], dir).then(
    () => assert.fail('should fail'),
    (e: unknown) => e,
  );
  assert.ok(isLinkmuxError(err, 'LINKMUX_ERR_CONFIG'));
  assert.match(
    err.message,
    /bad\.yaml: health\.interval: expected a number of seconds .*got "fast" \(line 2\)$/,
  );
  let stderr = '';
  assert.equal(
    reportError(err, (s) => (stderr += s)),
    1,
  );
  assert.match(stderr, /^linkmux: error: .*\[LINKMUX_ERR_CONFIG\]\n$/);
  await assert.rejects(
    run(['config', 'show', '-c', 'missing.yaml'], dir),
    /not found: create one with `linkmux config init/,
  );
});

test('config init writes the example (owner-only), refuses to overwrite without --force', async () => {
  const dir = await dirWith('init');
  const out = await run(['config', 'init'], dir);
  assert.match(out, /^wrote linkmux\.yaml; .*linkmux up -c linkmux\.yaml/);
  const file = join(dir, 'linkmux.yaml');
  assert.equal(await readFile(file, 'utf8'), EXAMPLE_CONFIG);
  if (process.platform !== 'win32') assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(
    parseYaml(await run(['config', 'show'], dir)),
    DEFAULTS,
    'what init writes, show reads back',
  );

  await writeFile(file, 'log: warn\n');
  await assert.rejects(
    run(['config', 'init'], dir),
    (e) =>
      isLinkmuxError(e, 'LINKMUX_ERR_OUTPUT_EXISTS') &&
      /linkmux\.yaml already exists: pass --force/.test(e.message),
  );
  assert.equal(await readFile(file, 'utf8'), 'log: warn\n', 'left untouched');
  await run(['config', 'init', '--force'], dir);
  assert.equal(await readFile(file, 'utf8'), EXAMPLE_CONFIG);

  await run(['config', 'init', 'custom.yaml'], dir);
  assert.equal(await readFile(join(dir, 'custom.yaml'), 'utf8'), EXAMPLE_CONFIG);
  await assert.rejects(run(['config', 'init', 'no/such/dir/x.yaml'], dir), (e) =>
    isLinkmuxError(e, 'LINKMUX_ERR_IO'),
  );
});

function cli(args: string[], cwd: string) {
  const child = spawn(process.execPath, [cliPath(), ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
}

test('spawned: linkmux config init, show, show --json and a bad file', async () => {
  const dir = await dirWith('spawned');
  const init = await cli(['config', 'init'], dir);
  assert.equal(init.code, 0, init.stderr);
  const show = await cli(['config', 'show', '--json'], dir);
  assert.equal(show.code, 0, show.stderr);
  assert.deepEqual(JSON.parse(show.stdout), DEFAULTS);
  await writeFile(join(dir, 'bad.yaml'), 'helth: {}\n');
  const bad = await cli(['config', 'show', '-c', 'bad.yaml'], dir);
  assert.equal(bad.code, 1);
  assert.equal(
    bad.stderr,
    'linkmux: error: bad.yaml: unknown key "helth" at the top level (did you mean "health"?) (line 1) [LINKMUX_ERR_CONFIG]\n',
  );
  const again = await cli(['config', 'init'], dir);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists: pass --force.*\[LINKMUX_ERR_OUTPUT_EXISTS\]/);
});
