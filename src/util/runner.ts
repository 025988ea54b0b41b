/**
 * Every external command linkmux runs (ip, nft, tc, conntrack) goes through a
 * Runner, so tests can swap in FakeRunner and compare what would have run.
 * The real runner never uses a shell: arguments are passed as an array.
 */
import { execFile } from 'node:child_process';
import { LinkmuxError } from './errors.js';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface Runner {
  /**
   * Runs `cmd args…`; rejects with LINKMUX_ERR_COMMAND_FAILED on a non-zero exit,
   * and when `cmd` is not installed (the message names the package to install).
   */
  run(cmd: string, args: readonly string[], opts?: { input?: string }): Promise<RunResult>;
}

export class ExecRunner implements Runner {
  run(cmd: string, args: readonly string[], opts: { input?: string } = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) {
          const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
          const msg = missing
            ? missingToolMessage(cmd)
            : `${cmd} ${args.join(' ')} failed: ${stderr.trim() || err.message}`;
          reject(new LinkmuxError('LINKMUX_ERR_COMMAND_FAILED', msg, { cause: err }));
          return;
        }
        resolve({ stdout, stderr });
      });
      if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
  }
}

/** The Debian/Ubuntu package that ships each tool linkmux runs. */
const PACKAGES: Record<string, string> = {
  ip: 'iproute2',
  tc: 'iproute2',
  nft: 'nftables',
  conntrack: 'conntrack',
  sysctl: 'procps',
  curl: 'curl',
};

export function packageOf(cmd: string): string {
  return PACKAGES[cmd] ?? cmd;
}

/** "nft is not installed …: install the nftables package (…)": what to say when spawning `cmd` gives ENOENT. */
export function missingToolMessage(cmd: string): string {
  const pkg = packageOf(cmd);
  return `${cmd} is not installed or not on PATH: install the ${pkg} package (Debian/Ubuntu: apt-get install ${pkg})`;
}

/** Records calls and answers from a table of canned outputs (matched by the joined command line). */
export class FakeRunner implements Runner {
  readonly calls: string[] = [];
  constructor(private readonly answers: Record<string, string | Error> = {}) {}

  async run(cmd: string, args: readonly string[]): Promise<RunResult> {
    const line = [cmd, ...args].join(' ');
    this.calls.push(line);
    const answer = this.answers[line];
    if (answer instanceof Error) throw answer;
    return { stdout: answer ?? '', stderr: '' };
  }
}
