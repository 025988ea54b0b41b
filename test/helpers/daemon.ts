/**
 * Runs `linkmux up` (or `linkmux node`) inside a testbed namespace (the client's by default) for the netns tier and
 * the benchmarks: writes a config file, spawns the daemon, waits until its
 * control API answers, and reads /status.
 */
import { once } from 'node:events';
import { rm, writeFile } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import type { Testbed } from '../../src/testbed/testbed.js';
import type { DaemonStatus } from '../../src/control/status-types.js';

export interface RunningDaemon {
  child: ChildProcess;
  /** The config file it runs with; removed by stop(). */
  configPath: string;
  socks: string;
  http: string;
  control: string;
  log: () => string;
  status(): Promise<DaemonStatus>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Namespace to run in (default: the client's). */
  ns?: string;
  /** The sub-command and its flags (default ['up']). */
  args?: string[];
  /** A command the daemon runs under, e.g. ['prlimit', '--nofile=1024'] (it must exec the daemon). */
  wrap?: string[];
}

/**
 * Starts the daemon; its config file is removed by stop(), or at once when the
 * daemon fails to start (nothing is left in the temp directory either way).
 */
export async function startDaemon(
  tb: Pick<Testbed, 'clientNs' | 'spawn' | 'exec'>,
  cli: string,
  yaml: string,
  opts: StartOptions = {},
): Promise<RunningDaemon> {
  const ns = opts.ns ?? tb.clientNs;
  const configPath = `/tmp/${ns}-linkmux.yaml`;
  await writeFile(configPath, yaml);
  const argv = [process.execPath, cli, ...(opts.args ?? ['up']), '--config', configPath];
  const [cmd, ...rest] = [...(opts.wrap ?? []), ...argv];
  const child = tb.spawn(ns, cmd!, rest);
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d));
  child.stderr?.on('data', (d: Buffer) => (log += d));
  const control = /control: "?([\d.:]+)"?/.exec(yaml)?.[1] ?? '127.0.0.1:9190';
  const status = async (): Promise<DaemonStatus> => {
    const { stdout } = await tb.exec(ns, 'curl', ['-sS', '--max-time', '2', `http://${control}/status`]);
    return JSON.parse(stdout) as DaemonStatus;
  };
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null)
        throw new Error(`linkmux ${opts.args?.[0] ?? 'up'} exited (${child.exitCode}):\n${log}`);
      try {
        await status();
        break;
      } catch (err) {
        if (i >= 100)
          throw new Error(
            `linkmux ${opts.args?.[0] ?? 'up'} did not answer on ${control} within 10 s:\n${log}\n${String(err)}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await rm(configPath, { force: true });
    throw err;
  }
  return {
    child,
    configPath,
    socks: /socks: "?([\d.:]+)"?/.exec(yaml)?.[1] ?? '127.0.0.1:1080',
    http: /http: "?([\d.:]+)"?/.exec(yaml)?.[1] ?? '127.0.0.1:8080',
    control,
    log: () => log,
    status,
    async stop() {
      try {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await once(child, 'exit');
        clearTimeout(timer);
      } finally {
        await rm(configPath, { force: true });
      }
    },
  };
}

/** Polls until `check` holds or `ms` pass; returns the elapsed ms, or throws with the last value seen. */
export async function waitFor<T>(
  what: string,
  ms: number,
  probe: () => Promise<T>,
  check: (v: T) => boolean,
) {
  const started = Date.now();
  let last: T | undefined;
  while (Date.now() - started < ms) {
    last = await probe();
    if (check(last)) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(last)?.slice(0, 500)})`);
}
