// `linkmux status` run in-process through commander against a control API, and with no daemon or a foreign one answering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { join } from 'node:path';
import { Command } from 'commander';
import { fetchStatus, registerStatus, renderStatus } from '../../src/cli/status-command.js';
import { reportError } from '../../src/cli/report-error.js';
import { LinkmuxError, isLinkmuxError } from '../../src/util/errors.js';
import { threeLinkStatus } from '../helpers/daemon-status.js';
import { tempDir } from '../helpers/loopback.js';
import { deadPort, withServer } from '../helpers/control-client.js';

/** Runs `linkmux status ARGS` in-process, as main.ts would; returns stdout, stderr and the exit code. */
async function runStatus(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  let stdout = '';
  let stderr = '';
  const program = new Command('linkmux').exitOverride();
  registerStatus(program, { write: (s) => (stdout += s) });
  try {
    await program.parseAsync(['node', 'linkmux', 'status', ...args]);
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const code = reportError(err, (s) => (stderr += s));
    return { stdout, stderr, code };
  }
}

test('`linkmux status` in-process: table and --json over TCP and a unix socket', async () => {
  const status = threeLinkStatus();
  await withServer(
    '127.0.0.1:0',
    () => status,
    async (server) => {
      const table = await runStatus(['--control', server.address]);
      assert.equal(table.code, 0, table.stderr);
      assert.equal(table.stdout, renderStatus(status));
      const json = await runStatus(['--control', server.address, '--json']);
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), status);
    },
  );
  const tmp = await tempDir('lmx-ctl-');
  try {
    const path = join(tmp.dir, 'c.sock');
    await withServer(
      path,
      () => status,
      async () => {
        const r = await runStatus(['--control', path]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, renderStatus(status));
      },
    );
  } finally {
    await tmp.cleanup();
  }
});

test('`linkmux status` with no daemon: exit 1, LINKMUX_ERR_CONNECT, says to start one', async () => {
  const addr = `127.0.0.1:${await deadPort()}`;
  const r = await runStatus(['--control', addr]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    `linkmux: error: no linkmux daemon answers at ${addr}: start one (\`linkmux up\`, \`linkmux node\` or \`linkmux gateway\`), or pass the --control address it listens on [LINKMUX_ERR_CONNECT]\n`,
  );
  const tmp = await tempDir('lmx-ctl-');
  try {
    const path = join(tmp.dir, 'nobody.sock');
    await assert.rejects(
      fetchStatus(path),
      (err: unknown) => isLinkmuxError(err, 'LINKMUX_ERR_CONNECT') && err.message.includes(path),
    );
  } finally {
    await tmp.cleanup();
  }
  const bad = await runStatus(['--control', 'nonsense']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--control takes HOST:PORT .*\[LINKMUX_ERR_USAGE\]/);
});

test('`linkmux status` against something that is not a linkmux control API: LINKMUX_ERR_BAD_RESPONSE', async () => {
  let reply = { code: 404, body: 'nope' };
  const other = createServer((_req, res) => res.writeHead(reply.code).end(reply.body)).listen(0, '127.0.0.1');
  await once(other, 'listening');
  try {
    const addr = `127.0.0.1:${(other.address() as { port: number }).port}`;
    await assert.rejects(fetchStatus(addr), (err: unknown) => {
      assert.ok(err instanceof LinkmuxError && err.code === 'LINKMUX_ERR_BAD_RESPONSE', String(err));
      assert.match(err.message, /HTTP 404.*is it a linkmux control API/);
      return true;
    });
    reply = { code: 200, body: '{"hello":"world"}' };
    await assert.rejects(fetchStatus(addr), (err: unknown) =>
      isLinkmuxError(err, 'LINKMUX_ERR_BAD_RESPONSE'),
    );
  } finally {
    other.closeAllConnections();
    await new Promise((r) => other.close(r));
  }
});
