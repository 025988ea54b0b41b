/**
 * The netns tier's daemon helper (test/helpers/daemon.ts) leaves no config
 * file behind in the temp directory: not after stop(), and not when the daemon
 * fails to start. Run here against a fake testbed (a child that exits at once,
 * or one that answers), so no namespace is needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startDaemon } from '../helpers/daemon.js';

function fakeTestbed(script: string, answers: boolean) {
  return {
    clientNs: `lmx-helper-${process.pid}`,
    spawn: () => spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] }),
    exec: async () => {
      if (!answers) throw new Error('connection refused');
      return { stdout: JSON.stringify({ links: [], connections: {} }), stderr: '' };
    },
  } as unknown as Parameters<typeof startDaemon>[0];
}

test('a daemon that fails to start leaves no config file behind', async () => {
  const tb = fakeTestbed('process.exit(3)', false);
  const path = `/tmp/${tb.clientNs}-linkmux.yaml`;
  await assert.rejects(startDaemon(tb, 'unused', 'listen: {}\n'), /exited \(3\)/);
  assert.equal(existsSync(path), false, `${path} was left behind`);
});

test('stop() removes the config file', async () => {
  const tb = fakeTestbed('setTimeout(() => {}, 60_000)', true);
  const d = await startDaemon(tb, 'unused', 'listen: {}\n');
  assert.equal(existsSync(d.configPath), true);
  await d.stop();
  assert.equal(existsSync(d.configPath), false);
});
