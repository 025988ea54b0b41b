/**
 * `linkmux route setup --apply` then `--remove` in a namespace of its own, with
 * a table name in rt_tables, leaves the rules and routes exactly as before.
 *
 * The name: `ip` reads /etc/iproute2/rt_tables, and /etc is the host's. So the
 * CLI runs under `ip netns exec NS unshare -m --propagation private`, where a
 * private rt_tables (naming tables 100 and 101) is bind-mounted over the file:
 * the mount exists only in that process's mount namespace, the host's /etc is
 * never changed. The test first checks that `ip` there really prints the name
 * (`lookup isp1`), so the bug route setup had (rules read without -N skip a
 * named table: --apply adds it again, --remove leaves it) cannot pass unseen.
 *
 * Safety: one namespace `lmx-<pid>-<rand>-rs` (the testbed's prefix, so
 * removeLeftovers finds it after a crash), two veth pairs with both ends inside
 * it, addresses from 198.18.0.0/15; nothing touches the root namespace.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { removeLeftovers } from '../../src/testbed/testbed.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';

const run = promisify(execFile);
const NS = `lmx-${process.pid}-${randomBytes(2).toString('hex')}-rs`;
const skip = skipReason(['unshare', 'mount']);
let dir: string | undefined;

async function ip(...args: string[]): Promise<string> {
  return (await run('ip', ['-n', NS, ...args])).stdout;
}

/** Runs `sh -c script` in the namespace with the private rt_tables mounted over /etc's. */
async function withNames(script: string): Promise<string> {
  const tables = path.join(dir ?? '', 'rt_tables');
  const { stdout } = await run('ip', [
    'netns',
    'exec',
    NS,
    'unshare',
    '-m',
    '--propagation',
    'private',
    'sh',
    '-c',
    `mount --bind "$0" /etc/iproute2/rt_tables && ${script}`,
    tables,
  ]);
  return stdout;
}

/**
 * Everything route setup may touch, with numeric tables: rules and routes of both families,
 * except the local table (255: the kernel's, and IPv6 link-local addresses land there late).
 */
async function state(): Promise<string> {
  const parts = await Promise.all([
    ip('-N', '-4', 'rule', 'show'),
    ip('-N', '-6', 'rule', 'show'),
    ip('-N', '-4', 'route', 'show', 'table', 'all'),
    ip('-N', '-6', 'route', 'show', 'table', 'all'),
  ]);
  const notLocal = (text: string) =>
    text
      .split('\n')
      .filter((l) => !/ table 255 /.test(l))
      .join('\n');
  return parts.map(notLocal).join('---\n');
}

before(async () => {
  if (!netnsReady(['unshare', 'mount'])) return;
  await removeLeftovers();
  dir = await mkdtemp(path.join(os.tmpdir(), 'lmx-rt-tables-'));
  await writeFile(
    path.join(dir, 'rt_tables'),
    '255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n100\tisp1\n101\tisp2\n',
  );
  await run('ip', ['netns', 'add', NS]);
  await ip('link', 'set', 'lo', 'up');
  for (const i of [1, 2]) {
    await ip('link', 'add', `u${i}`, 'type', 'veth', 'peer', 'name', `u${i}p`);
    await ip('addr', 'add', `198.18.${i}.2/24`, 'dev', `u${i}`);
    await ip('link', 'set', `u${i}`, 'up');
    await ip('link', 'set', `u${i}p`, 'up');
    await ip('route', 'add', 'default', 'via', `198.18.${i}.1`, 'dev', `u${i}`, 'metric', String(i * 100));
  }
  // Someone else's rule and table, which route setup must leave alone.
  await ip('route', 'add', 'default', 'dev', 'u2', 'table', '52');
  await ip('rule', 'add', 'from', '100.64.0.0/10', 'lookup', '52', 'priority', '5210');
});

after(async () => {
  await run('ip', ['netns', 'del', NS]).catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => `exec "${process.execPath}" "${cliPath()}" route setup ${args.join(' ')}`;

test(
  'route setup --apply, --apply again, --remove with tables named in rt_tables: rules as before',
  { skip },
  async () => {
    const before = await state();
    const applied = await withNames(cli('--apply'));
    assert.match(applied, /rule add priority 10000 from 198\.18\.1\.2\/32 lookup 100/);
    // ip in there reads the private rt_tables: the installed rule shows by name.
    assert.match(await withNames('ip rule show'), /10000:\s+from 198\.18\.1\.2 lookup isp1/);
    assert.doesNotMatch(await ip('rule', 'show'), /isp1/, "the host's rt_tables has no such name");
    const installed = await state();
    assert.equal(installed.match(/from 198\.18\.[12]\.2 lookup 10[01]/g)?.length, 2, installed);
    assert.equal(await withNames(cli('--apply')), '# already in place: nothing changed\n');
    assert.equal(await state(), installed, 'a second --apply adds nothing');
    const removed = await withNames(cli('--remove'));
    assert.match(removed, /rule del priority 10000 .*\n.*rule del priority 10001 /);
    assert.equal(await state(), before);
    assert.equal(await withNames(cli('--remove')), '# nothing to remove\n');
  },
);

test('route setup --apply then --remove with numeric tables: rules as before', { skip }, async () => {
  const before = await state();
  const inNs = (...args: string[]) =>
    run('ip', ['netns', 'exec', NS, process.execPath, cliPath(), 'route', 'setup', ...args]);
  await inNs('--apply');
  assert.equal((await inNs('--apply')).stdout, '# already in place: nothing changed\n');
  await inNs('--remove');
  assert.equal(await state(), before);
});
