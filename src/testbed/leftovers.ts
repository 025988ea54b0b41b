/**
 * Leftovers of testbed runs that died without cleaning up: namespaces named
 * `<family>-<pid>-<suffix>-…` and their `/etc/netns/<name>` directories (the
 * resolv.conf the DNS option writes).
 *
 * Guarantees: only names whose owner pid is dead are touched, so parallel runs
 * (another engineer's tests, a benchmark in another shell) keep everything; our
 * own pid always counts as alive; processes still inside a dead run's namespace
 * are killed first (they would keep it alive); a name removed by a concurrent
 * cleaner is not an error.
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { LinkmuxError } from '../util/errors.js';
import { ExecRunner, type Runner } from '../util/runner.js';
import { NETNS_ETC } from './netns-etc.js';

/**
 * The names among `names` that belong to a dead run of `family`: the pid after
 * the family is not a live process. Other names (no pid, another family) are kept.
 */
export function deadRunNames(
  names: readonly string[],
  family: string,
  alive: (pid: number) => boolean = isAlive,
): string[] {
  if (!/^[a-z0-9]+$/.test(family))
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `bad namespace family "${family}"`);
  const pattern = new RegExp(`^${family}-(\\d+)-[a-z0-9]+-`);
  return names.filter((name) => {
    const m = pattern.exec(name);
    return m !== null && !alive(Number(m[1]));
  });
}

/**
 * Deletes the namespaces and /etc/netns directories of earlier testbed runs whose
 * owner process is dead, killing anything still running inside them first.
 * Returns what was removed (namespace names, then directory paths).
 */
export async function removeLeftovers(
  runner: Runner = new ExecRunner(),
  family = 'lmx',
  etcRoot = NETNS_ETC,
): Promise<string[]> {
  const { stdout } = await runner.run('ip', ['netns', 'list']);
  const listed = stdout.split('\n').map((line) => line.trim().split(/\s+/)[0] ?? '');
  const removed: string[] = [];
  for (const name of deadRunNames(listed, family)) {
    await killNamespaceProcesses(runner, name);
    try {
      await runner.run('ip', ['netns', 'del', name]);
      removed.push(name);
    } catch {
      // raced with another cleaner; it is gone either way
    }
  }
  let dirs: string[] = [];
  try {
    dirs = await readdir(etcRoot);
  } catch {
    // no /etc/netns at all: nothing was ever written there
  }
  for (const name of deadRunNames(dirs, family)) {
    const dir = path.join(etcRoot, name);
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/** Kills every process still living in namespace `ns` (it would keep the namespace alive). */
export async function killNamespaceProcesses(runner: Runner, ns: string): Promise<void> {
  let pids: string;
  try {
    pids = (await runner.run('ip', ['netns', 'pids', ns])).stdout;
  } catch {
    return; // no such namespace
  }
  for (const pid of pids.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** A process exists (EPERM: it does, owned by someone else). Our own pid is always alive. */
export function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
