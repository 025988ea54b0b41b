/**
 * One `up --server` / `get --server` per network namespace. The client's MPTCP
 * state is the namespace's, not the process's: the endpoints, the limits and the
 * source rules in the fixed range 4300–4363 (tables and priorities) belong to
 * whoever installed them, and a starting client first cleans that range up
 * (what a crash left). A second client in the same namespace would delete the
 * first one's rules and fight over the endpoints, so it is refused, with a
 * message naming the first one (pid, state directory, command). Clients in
 * different namespaces (containers, the testbed) do not collide: the lock file
 * is keyed by the namespace's inode.
 *
 * The lock is a small JSON file created with O_EXCL. A file whose pid is no
 * longer alive (kill -9) is stale: it is taken over, and the start's cleanup
 * then removes what the dead client left.
 */
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LinkmuxError, systemCode } from '../util/errors.js';

export interface LockOwner {
  pid: number;
  /** Where its ownership record lives (`mptcp-paths.json`). */
  stateDir: string;
  /** Its command line, to name it in the refusal. */
  command: string;
}

export interface OwnerLock {
  /** Takes the lock, or throws LINKMUX_ERR_MPTCP naming the live holder. */
  acquire(): Promise<void>;
  /** Releases it if held by this process (idempotent). */
  release(): Promise<void>;
  /** The live holder other than this process, if any (for `up --cleanup`). */
  holder(): Promise<LockOwner | undefined>;
}

/** The default directory: tmpfs, cleared at boot with every pid in it. */
export const LOCK_DIR = '/run/linkmux';

/** The lock file of this process's network namespace (its inode: /proc/self/ns/net). */
export async function namespaceLockPath(dir = LOCK_DIR): Promise<string> {
  let key = 'default';
  try {
    key = String((await stat('/proc/self/ns/net')).ino);
  } catch {
    // Not Linux: there is one namespace.
  }
  return join(dir, `mptcp-client-${key}.lock`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return systemCode(err) === 'EPERM';
  }
}

export function fileOwnerLock(
  path: string,
  me: LockOwner,
  alive: (pid: number) => boolean = isAlive,
): OwnerLock {
  let held = false;
  const read = async (): Promise<LockOwner | undefined> => {
    try {
      const v = JSON.parse(await readFile(path, 'utf8')) as Partial<LockOwner>;
      return typeof v.pid === 'number' ? (v as LockOwner) : undefined;
    } catch {
      return undefined;
    }
  };
  const holder = async () => {
    const o = await read();
    return o && o.pid !== me.pid && alive(o.pid) ? o : undefined;
  };
  return {
    holder,
    async acquire() {
      if (held) return;
      await mkdir(join(path, '..'), { recursive: true, mode: 0o755 });
      // Two rounds at most: create; or find a stale file, remove it, create again.
      for (let round = 0; round < 2; round++) {
        try {
          const f = await open(path, 'wx', 0o644);
          try {
            await f.writeFile(`${JSON.stringify(me)}\n`);
          } finally {
            await f.close();
          }
          held = true;
          return;
        } catch (err) {
          if (systemCode(err) !== 'EEXIST') throw err;
        }
        const other = await holder();
        if (other) throw refusal(other, path);
        await rm(path, { force: true });
      }
      throw new LinkmuxError(
        'LINKMUX_ERR_MPTCP',
        `could not take ${path}: another client keeps recreating it`,
      );
    },
    async release() {
      if (!held) return;
      held = false;
      const o = await read();
      if (o?.pid === me.pid) await rm(path, { force: true });
    },
  };
}

export function refusal(other: LockOwner, path: string): LinkmuxError {
  return new LinkmuxError(
    'LINKMUX_ERR_MPTCP',
    `another linkmux client already manages this machine's MPTCP paths (pid ${other.pid}, state dir ${other.stateDir}: ` +
      `${other.command}); only one \`up --server\` or \`get --server\` can run per network namespace, because both ` +
      `would own the same endpoints and rules (4300–4363). Stop it first, or use it: an \`up --server\` proxy ` +
      `already sends every connection through the server; if pid ${other.pid} is not linkmux, delete ${path}`,
  );
}
