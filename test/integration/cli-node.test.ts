/**
 * `linkmux node` as a user meets it, on loopback only: `--init` prints the
 * address clients dial in the form they can parse back (IPv6 in brackets),
 * and the running node's start line says "node:", not "up:". Health probes go
 * to a closed loopback port, so nothing leaves the machine.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/loopback.js';
import { cliPath } from '../helpers/netns.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function stateDir(): Promise<string> {
  const tmp = await tempDir('lmx-node-cli-');
  cleanups.push(tmp.cleanup);
  await writeFile(
    join(tmp.dir, 'linkmux.yaml'),
    'health: { targets: ["tcp://127.0.0.1:9"], interval: 1, timeout: 0.5 }\n',
  );
  return tmp.dir;
}

test('node --init prints an IPv6 address to dial as [host]:port', async () => {
  const dir = await stateDir();
  const child = spawn(
    process.execPath,
    [cliPath(), 'node', '--init', '--advertise', '[fd00::2]:7300', '--link', 'lo', '--state-dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  assert.equal(code, 0, stderr);
  assert.match(stderr, /clients dial \[fd00::2\]:7300\n/);
});

test('a running node logs its start line as "node:"', async () => {
  const dir = await stateDir();
  const child = spawn(
    process.execPath,
    [
      cliPath(),
      'node',
      '-c',
      join(dir, 'linkmux.yaml'),
      '--listen',
      '127.0.0.1:0',
      '--advertise',
      '127.0.0.1:7300',
      '--link',
      'lo',
      '--control',
      'off',
      '--state-dir',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  const started = new Promise<void>((resolve) =>
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      if (/ on 127\.0\.0\.1:\d+; policy/.test(stderr)) resolve();
    }),
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await Promise.race([started, once(child, 'exit')]);
  child.kill('SIGTERM');
  await once(child, 'close');
  clearTimeout(timer);
  assert.match(stderr, /^linkmux: node: node on 127\.0\.0\.1:\d+; policy/m, stderr);
  assert.doesNotMatch(stderr, /^linkmux: up:/m);
});
