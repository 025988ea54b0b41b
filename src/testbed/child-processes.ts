/**
 * The testbed's long-running children (file server, DNS server): wait for the
 * `listening` line a server prints once it accepts, bounded; stop gracefully,
 * then by force.
 */
import type { ChildProcess } from 'node:child_process';
import { LinkmuxError } from '../util/errors.js';

const KILL_GRACE_MS = 2_000;

/**
 * Resolves once `child` printed a line starting with `listening ` on stdout; rejects
 * (naming `what` and the tail of its stderr) if it exits, fails to start or stays
 * silent for `timeoutMs`.
 */
export function waitListening(child: ChildProcess, what: string, timeoutMs: number): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(
        new LinkmuxError(
          'LINKMUX_ERR_COMMAND_FAILED',
          `testbed: ${what} ${why}${stderr ? `: ${stderr.trim()}` : ''}`,
        ),
      );
    };
    const timer = setTimeout(() => fail(`did not start within ${timeoutMs} ms`), timeoutMs);
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (/(^|\n)listening /.test(out)) {
        done = true;
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code, signal) => fail(`exited (${signal ?? code})`));
    child.once('error', (err) => fail(`could not start (${err.message})`));
  });
}

/** SIGTERM, then SIGKILL after a grace period; resolves once it exited. */
export function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      setTimeout(resolve, 200);
    }, KILL_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
