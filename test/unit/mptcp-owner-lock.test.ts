/**
 * One `up --server` / `get --server` per network namespace: the second client is
 * refused before it cleans up or adds anything (its stop() removes nothing
 * either), with a message naming the first; a dead holder's lock is taken over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileOwnerLock, namespaceLockPath, type LockOwner } from '../../src/mptcp/owner-lock.js';
import { MptcpKernel, memoryRecordStore } from '../../src/mptcp/kernel.js';
import { MptcpPathManager } from '../../src/mptcp/path-manager.js';
import { FakeRunner } from '../../src/util/runner.js';
import { isLinkmuxError } from '../../src/util/errors.js';

const owner = (pid: number, stateDir = `/var/lib/linkmux-${pid}`): LockOwner => ({
  pid,
  stateDir,
  command: `linkmux up --server lmx1_x --state-dir ${stateDir}`,
});

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'linkmux-lock-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('lock: a second live client is refused with the first one named; release lets the next in', () =>
  withDir(async (dir) => {
    const path = join(dir, 'l.lock');
    const alive = new Set([100, 200, 300]);
    const a = fileOwnerLock(path, owner(100), (p) => alive.has(p));
    const b = fileOwnerLock(path, owner(200), (p) => alive.has(p));
    await a.acquire();
    await a.acquire(); // idempotent
    await assert.rejects(b.acquire(), (err) => {
      assert.ok(isLinkmuxError(err) && err.code === 'LINKMUX_ERR_MPTCP');
      assert.match(err.message, /pid 100, state dir \/var\/lib\/linkmux-100/);
      assert.match(err.message, /one `up --server` or `get --server` can run per network namespace/);
      return true;
    });
    assert.deepEqual(await b.holder(), owner(100));
    await b.release(); // not held: the file stays
    assert.equal(JSON.parse(await readFile(path, 'utf8')).pid, 100);
    await a.release();
    await b.acquire();
    assert.equal(JSON.parse(await readFile(path, 'utf8')).pid, 200);
    assert.equal(await b.holder(), undefined, 'itself is no other holder');
  }));

test('lock: a dead holder (kill -9) is taken over', () =>
  withDir(async (dir) => {
    const path = join(dir, 'sub', 'l.lock');
    await fileOwnerLock(path, owner(100), () => true).acquire();
    const next = fileOwnerLock(path, owner(200), (p) => p === 200);
    assert.equal(await next.holder(), undefined);
    await next.acquire();
    assert.equal(JSON.parse(await readFile(path, 'utf8')).pid, 200);
  }));

test('lock: the file is keyed by the network namespace', async () => {
  const p = await namespaceLockPath('/run/x');
  assert.match(p, /^\/run\/x\/mptcp-client-(\d+|default)\.lock$/);
});

test('path manager: the second client on a namespace runs no command at start or stop; the first cleans up as before', () =>
  withDir(async (dir) => {
    const path = join(dir, 'l.lock');
    const answers = {
      'ip mptcp endpoint show': '',
      'ip mptcp limits show': 'add_addr_accepted 0 subflows 2 \n',
      'ip -j -4 rule show': '[]',
      'ip -j -4 route show table all': '[]',
    };
    const manager = (pid: number, runner: FakeRunner) =>
      new MptcpPathManager({
        interfaces: [],
        stateOf: () => 'online',
        kernel: new MptcpKernel(runner, memoryRecordStore()),
        lock: fileOwnerLock(path, owner(pid), (p) => p === 100 || p === 200),
      });
    const r1 = new FakeRunner(answers);
    const r2 = new FakeRunner(answers);
    const first = manager(100, r1);
    const second = manager(200, r2);
    await first.start();
    assert.ok(r1.calls.length > 0);
    await assert.rejects(second.start(), /pid 100/);
    await second.stop();
    assert.deepEqual(r2.calls, [], 'the refused client touched nothing of the first one');
    const before = r1.calls.length;
    await first.stop();
    assert.ok(r1.calls.length > before, 'the owner cleans up at stop');
    await second.start();
    await second.stop();
  }));

test('path manager: a degraded uplink is out of service while another is online; all degraded keep theirs', () => {
  const iface = (i: number) => ({
    name: `up${i}`,
    up: true,
    loopback: false,
    addresses: [{ address: `198.18.${i + 1}.2`, family: 4 as const, prefixLength: 24 }],
  });
  const states: Record<string, 'online' | 'degraded' | 'offline'> = { up0: 'degraded', up1: 'online' };
  const pm = new MptcpPathManager({
    interfaces: [iface(0), iface(1)],
    stateOf: (id) => states[id] ?? 'offline',
    kernel: new MptcpKernel(new FakeRunner(), memoryRecordStore()),
  });
  assert.deepEqual(
    pm.status().map((u) => [u.dev, u.inService]),
    [
      ['up0', false],
      ['up1', true],
    ],
  );
  assert.equal(pm.primaryAddress(), '198.18.2.2');
  states.up1 = 'degraded';
  assert.deepEqual(
    pm.status().map((u) => u.inService),
    [true, true],
  );
  states.up1 = 'offline';
  assert.deepEqual(
    pm.status().map((u) => u.inService),
    [true, false],
  );
});
