/**
 * Running things inside a testbed namespace when the test needs the outcome, not
 * an exception: exit code, output and time, with a hard time limit (the child is
 * killed at the limit, so no test waits on a hung curl). Plus the checks several
 * netns files repeat: a file's sha256 in a namespace, downloads through the
 * daemon's proxies by name, and waiting for a link's health state.
 */
import { rm } from 'node:fs/promises';
import type { Testbed } from '../../src/testbed/testbed.js';
import type { LinkStatus } from '../../src/control/status-types.js';
import { waitFor, type RunningDaemon } from './daemon.js';

export interface RunOutcome {
  /** Exit code; null when killed (signal or the time limit). */
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

export function runIn(
  tb: Testbed,
  ns: string,
  cmd: string,
  args: string[],
  limitMs: number,
): Promise<RunOutcome> {
  const started = performance.now();
  const child = tb.spawn(ns, cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, limitMs);
  return new Promise((resolve) => {
    const done = (code: number | null) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started, timedOut });
    };
    child.once('exit', (code) => done(code));
    child.once('error', (err) => {
      stderr += String(err);
      done(null);
    });
  });
}

export async function sha256In(tb: Testbed, ns: string, path: string): Promise<string> {
  const { stdout } = await tb.exec(ns, 'sha256sum', [path]);
  return stdout.split(/\s+/)[0] ?? '';
}

export type ProxyKind = 'socks5-hostname' | 'http';

/** curl's flags for the daemon's proxy: SOCKS5 with the name sent unresolved, or the HTTP proxy. */
export function proxyArgs(d: RunningDaemon, via: ProxyKind): string[] {
  return via === 'http' ? ['-x', `http://${d.http}`] : ['--socks5-hostname', d.socks];
}

export interface FetchOutcome {
  code: number | null;
  stderr: string;
  ms: number;
  /** sha256 of what arrived, '' when curl failed. */
  sha256: string;
}

/** One curl of `url` through the daemon's proxy in the client ns; the body's sha256 when it succeeded. */
export async function fetchThrough(
  tb: Testbed,
  d: RunningDaemon,
  via: ProxyKind,
  url: string,
  out: string,
  maxTimeSec = 10,
): Promise<FetchOutcome> {
  const args = ['-sS', '--fail', '--max-time', String(maxTimeSec), ...proxyArgs(d, via), '-o', out, url];
  const r = await runIn(tb, tb.clientNs, 'curl', args, (maxTimeSec + 5) * 1000);
  try {
    const sha256 = r.code === 0 ? await sha256In(tb, tb.clientNs, out) : '';
    return { code: r.code, stderr: r.stderr.trim(), ms: r.ms, sha256 };
  } finally {
    await rm(out, { force: true });
  }
}

export async function linkStatus(d: RunningDaemon, id: string): Promise<LinkStatus | undefined> {
  return (await d.status()).links.find((l) => l.id === id);
}

/** Waits until link `id` is in `state`; returns the ms it took; the error includes the daemon's log tail. */
export async function waitLinkState(
  d: RunningDaemon,
  id: string,
  state: string,
  ms: number,
): Promise<number> {
  try {
    return await waitFor(
      `${id} ${state}`,
      ms,
      async () => (await linkStatus(d, id))?.state,
      (s) => s === state,
    );
  } catch (err) {
    throw new Error(`${String(err)}\ndaemon log (tail):\n${d.log().slice(-3000)}`, { cause: err });
  }
}

/** Waits until every link of the daemon is in `state`. */
export async function waitAllLinks(d: RunningDaemon, state: string, ms: number): Promise<number> {
  return waitFor(
    `all links ${state}`,
    ms,
    async () => (await d.status()).links.map((l) => `${l.id}:${l.state}`),
    (s) => s.length > 0 && s.every((x) => x.endsWith(`:${state}`)),
  );
}

/**
 * The "blackholed uplink goes offline" scenario: blackholes uplink `i` (its link
 * and carrier stay up, its ISP drops everything) and waits until `stateOf()`
 * reads "offline"; returns the ms that took. Fails when it takes longer than
 * `withinMs`, with `log()` (the daemon's log) tail in the message. The caller
 * calls `tb.unblackhole(i)` in a finally around it (unblackhole is idempotent).
 */
export async function blackholeAndWaitOffline(
  tb: Pick<Testbed, 'blackhole'>,
  i: number,
  stateOf: () => Promise<string | undefined>,
  opts: { withinMs: number; what?: string; log?: () => string },
): Promise<number> {
  await tb.blackhole(i);
  const what = `${opts.what ?? `up${i}`} offline`;
  let ms: number;
  try {
    ms = await waitFor(what, opts.withinMs, stateOf, (s) => s === 'offline');
  } catch (err) {
    if (!opts.log) throw err;
    throw new Error(`${String(err)}\ndaemon log (tail):\n${opts.log().slice(-3000)}`, { cause: err });
  }
  if (ms > opts.withinMs) throw new Error(`${what} after ${ms} ms, not within ${opts.withinMs} ms`);
  return ms;
}
