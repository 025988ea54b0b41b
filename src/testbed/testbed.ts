/**
 * The shared netns testbed: a client with N shaped uplinks through N NAT-ing ISP
 * namespaces to one server namespace running the test file server (see topology.ts
 * for the picture). Optionally a LAN: node machines that own some of the uplinks
 * (for `linkmux node`) and LAN-only hosts routed through the client (for `linkmux
 * gateway`). Used by the netns tests, the benchmarks and `linkmux demo`.
 *
 * Guarantees: needs root and says so; touches nothing outside its own namespaces
 * (all named `<prefix>…`, prefix `lmx-<pid>-<random>-` by default, so leftovers of a
 * dead run are recognised and removed at the next start); every wait is bounded;
 * `destroy()` kills what it spawned, deletes its namespaces and temp files, and is
 * safe to call twice. A failed build cleans up after itself before rethrowing.
 */
import { spawn as spawnChild, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LinkmuxError, describe } from '../util/errors.js';
import { ExecRunner, type RunResult, type Runner } from '../util/runner.js';
import { makeTestFile } from './test-file.js';
import {
  allNamespaces,
  blackholeCommands,
  certCommands,
  formatCommands,
  gatewayMasqueradeCommands,
  isTolerant,
  linkStateCommands,
  planTopology,
  routeCommands,
  setupCommands,
  teardownCommands,
  type Command,
  type LinkDownMode,
  type TopologyPlan,
  type UplinkPlan,
} from './topology.js';

export interface TestbedOptions {
  /** Namespace prefix; default `lmx-<pid>-<4 hex>-`. Keep the default so leftovers can be recognised. */
  prefix?: string;
  /** Number of uplinks, 1–9. Default 3. */
  links?: number;
  /** Mbit/s per uplink, one for all or one per link. Default 8. */
  rateMbit?: number | number[];
  /**
   * Owner of each uplink (one entry per link): 0 = the client, k ≥ 1 = node machine
   * k on the LAN, numbered without gaps. Default all 0 (no nodes). `links` defaults
   * to its length.
   */
  machines?: number[];
  /** LAN-only hosts whose default route is the client (0–9). Default 0. */
  lanHosts?: number;
  /** No main-table default routes: per-uplink tables selected by `ip rule from <address>` (policy-tables.ts). */
  policyTables?: boolean;
  /** Also serve HTTPS on 443 with a self-signed certificate (see `caFile`). */
  https?: boolean;
  /** Files generated into a temp dir and served at /files/<name>. Default: 1m.bin (1 MiB), 4m.bin (4 MiB). */
  files?: { name: string; size: number }[];
  runner?: Runner;
  /** Progress and every command run; default silent. */
  log?: (s: string) => void;
}

/** An uplink of a machine (`hostNs`, the client's unless nodes were asked for), as tests and benchmarks see it. */
export type Uplink = Omit<UplinkPlan, 'ispServerAddress'>;

/** A machine with uplinks of its own: the client (machines[0]) or a node (machines[k]). */
export interface TestbedMachine {
  ns: string;
  /** 198.18.100.(1+k) on its lan0; '' when the testbed has no LAN. */
  lanAddress: string;
  /** Indexes into `uplinks` of the uplinks it owns. */
  uplinks: number[];
}

/** A LAN-only host: lan0 at 198.18.100.(100+k), default route via the client's LAN address. */
export interface TestbedLanHost {
  ns: string;
  lanAddress: string;
}

/** Bytes received and sent, by device name. */
export type ByteCounters = Record<string, { rx: number; tx: number }>;

export interface Testbed {
  prefix: string;
  clientNs: string;
  serverNs: string;
  uplinks: Uplink[];
  /** Index 0 is the client (also without a LAN), k the node machine k. */
  machines: TestbedMachine[];
  lanHosts: TestbedLanHost[];
  /** The namespace of the LAN's bridge, when there is a LAN. */
  lanNs?: string;
  /** The one server address, 198.19.0.10. */
  serverAddress: string;
  /** UDP port on the server address that echoes every datagram back (RFC 862's 7). */
  udpEchoPort: number;
  url(name: string, scheme?: 'http' | 'https'): string;
  /** Certificate to trust for https (self-signed, it is its own CA), when `https` was asked for. */
  caFile?: string;
  files: Record<string, { path: string; size: number; sha256: string }>;
  /** Runs `cmd args…` inside `ns`, any namespace of this testbed (others are refused), through the runner. */
  exec(ns: string, cmd: string, args: string[]): Promise<RunResult>;
  /** Starts `cmd args…` inside `ns`, any namespace of this testbed; killed by destroy(). */
  spawn(ns: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /**
   * Bytes per device of `ns` (default the client ns), lo excluded: a machine's up<i>
   * (and lan0 on a LAN), an ISP's cl/sv, …
   */
  counters(ns?: string): Promise<ByteCounters>;
  /** Bytes per uplink device (up0, up1, …) of every machine. */
  uplinkCounters(): Promise<ByteCounters>;
  /** Drops all traffic in ISP i's namespace; the link stays up. */
  blackhole(i: number): Promise<void>;
  unblackhole(i: number): Promise<void>;
  /** 'admin' (default): the owning machine's device goes down; 'carrier': the ISP's end does. */
  linkDown(i: number, mode?: LinkDownMode): Promise<void>;
  linkUp(i: number): Promise<void>;
  /** Per machine, one multipath default route over its uplinks, L4 hash; off restores per-uplink routes. */
  setEcmp(on: boolean): Promise<void>;
  /**
   * The plain-kernel gateway baseline: on adds nft table `inet lmxtb_masq` in the
   * client ns, masquerading LAN sources out of each of its uplinks; off removes it.
   * Needs lanHosts > 0. Idempotent.
   */
  gatewayMasquerade(on: boolean): Promise<void>;
  destroy(): Promise<void>;
}

const DEFAULT_FILES = [
  { name: '1m.bin', size: 1024 * 1024 },
  { name: '4m.bin', size: 4 * 1024 * 1024 },
];
const SERVER_START_TIMEOUT_MS = 10_000;
const UDP_ECHO_PORT = 7;
const KILL_GRACE_MS = 2_000;
const OPERSTATE_POLLS = 60;
const OPERSTATE_POLL_MS = 50;

export async function createTestbed(opts: TestbedOptions = {}): Promise<Testbed> {
  if (process.platform !== 'linux') {
    throw new LinkmuxError(
      'LINKMUX_ERR_UNSUPPORTED_PLATFORM',
      'the netns testbed needs Linux network namespaces',
    );
  }
  if (process.getuid?.() !== 0) {
    throw new LinkmuxError(
      'LINKMUX_ERR_NOT_ROOT',
      'the netns testbed creates network namespaces and must run as root (try sudo)',
    );
  }
  const runner = opts.runner ?? new ExecRunner();
  const log = opts.log ?? (() => {});
  const started = performance.now();

  // Missing tools fail here, named by the runner ("nft is not installed …"), not halfway through.
  await runner.run('ip', ['-V']);
  await runner.run('tc', ['-V']);
  await runner.run('nft', ['--version']);
  if (opts.https) await runner.run('openssl', ['version']);

  const removed = await removeLeftovers(runner);
  if (removed.length > 0) log(`removed leftover namespaces of dead runs: ${removed.join(' ')}`);

  const plan = planTopology({
    prefix: opts.prefix ?? `lmx-${process.pid}-${randomBytes(2).toString('hex')}-`,
    links: opts.links ?? opts.machines?.length ?? 3,
    rateMbit: opts.rateMbit ?? 8,
    machines: opts.machines,
    lanHosts: opts.lanHosts,
    policyTables: opts.policyTables,
  });
  const tb = new NetnsTestbed(plan, runner, log);
  try {
    await tb.build(opts);
  } catch (err) {
    await tb.destroy().catch((e: unknown) => log(`cleanup after failed build: ${describe(e)}`));
    throw err;
  }
  log(`testbed ${plan.prefix} ready in ${Math.round(performance.now() - started)} ms`);
  return tb;
}

class NetnsTestbed implements Testbed {
  readonly prefix: string;
  readonly clientNs: string;
  readonly serverNs: string;
  readonly serverAddress: string;
  readonly udpEchoPort = UDP_ECHO_PORT;
  readonly uplinks: Uplink[];
  readonly machines: TestbedMachine[];
  readonly lanHosts: TestbedLanHost[];
  readonly lanNs?: string;
  caFile?: string;
  files: Record<string, { path: string; size: number; sha256: string }> = {};

  private tmp?: string;
  private https = false;
  private readonly children = new Set<ChildProcess>();
  private ecmp = false;
  private readonly down = new Map<number, LinkDownMode>();
  private readonly namespaces: ReadonlySet<string>;
  private destroying?: Promise<void>;
  private readonly onExit = () => this.destroySync();

  constructor(
    private readonly plan: TopologyPlan,
    private readonly runner: Runner,
    private readonly log: (s: string) => void,
  ) {
    this.prefix = plan.prefix;
    this.clientNs = plan.clientNs;
    this.serverNs = plan.serverNs;
    this.serverAddress = plan.serverAddress;
    this.uplinks = plan.uplinks.map(
      ({ index, dev, machine, hostNs, address, gateway, ispNs, rateMbit, metric }) => ({
        index,
        dev,
        machine,
        hostNs,
        address,
        gateway,
        ispNs,
        rateMbit,
        metric,
      }),
    );
    this.machines = plan.machines.map(({ ns, lanAddress, uplinks }) => ({ ns, lanAddress, uplinks }));
    this.lanHosts = plan.lanHosts.map(({ ns, lanAddress }) => ({ ns, lanAddress }));
    if (plan.lan) this.lanNs = plan.lan.ns;
    this.namespaces = new Set(allNamespaces(plan));
  }

  async build(opts: TestbedOptions): Promise<void> {
    process.once('exit', this.onExit);
    this.tmp = await mkdtemp(path.join(tmpdir(), this.prefix));
    const filesDir = path.join(this.tmp, 'files');
    let seed = 1;
    for (const f of opts.files ?? DEFAULT_FILES) {
      const sha256 = await makeTestFile(filesDir, f.name, f.size, seed++);
      this.files[f.name] = { path: path.join(filesDir, f.name), size: f.size, sha256 };
    }
    if ((opts.files ?? DEFAULT_FILES).length === 0) await makeTestFile(filesDir, '.keep', 0);

    const lan = this.plan.lan
      ? `, a LAN of ${this.machines.length} machines and ${this.lanHosts.length} LAN hosts`
      : '';
    this.log(`building ${this.plan.uplinks.length} uplinks${lan} under ${this.prefix}`);
    await this.apply(setupCommands(this.plan));

    const serverArgs = ['--root', filesDir, '--host', '0.0.0.0'];
    await this.startServer([...serverArgs, '--port', '80', '--udp-echo', String(UDP_ECHO_PORT)]);
    if (opts.https) {
      this.https = true;
      const tlsDir = path.join(this.tmp, 'tls');
      await mkdir(tlsDir, { recursive: true });
      await this.apply(certCommands(tlsDir, this.serverAddress));
      this.caFile = path.join(tlsDir, 'cert.pem');
      const tls = ['--tls-key', path.join(tlsDir, 'key.pem'), '--tls-cert', this.caFile];
      await this.startServer([...serverArgs, '--port', '443', ...tls]);
    }
    await this.waitReachable();
  }

  url(name: string, scheme: 'http' | 'https' = 'http'): string {
    if (scheme === 'https' && !this.https) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        'testbed: https URL asked for, but the testbed was built without https',
      );
    }
    return `${scheme}://${this.serverAddress}/files/${encodeURIComponent(name)}`;
  }

  async exec(ns: string, cmd: string, args: string[]): Promise<RunResult> {
    this.checkOwn(ns);
    return this.runner.run('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  spawn(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.destroying) throw new LinkmuxError('LINKMUX_ERR_USAGE', 'testbed: spawn after destroy');
    this.checkOwn(ns);
    // `ip netns exec` execs the command in place, so the child's pid is the command's.
    const child = spawnChild('ip', ['netns', 'exec', ns, cmd, ...args], opts);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  async counters(ns: string = this.clientNs): Promise<ByteCounters> {
    this.checkOwn(ns);
    const { stdout } = await this.runner.run('ip', ['-n', ns, '-j', '-s', 'link', 'show']);
    const out: ByteCounters = {};
    for (const l of JSON.parse(stdout) as IpLinkJson[]) {
      if (l.ifname !== 'lo') out[l.ifname] = { rx: l.stats64?.rx.bytes ?? 0, tx: l.stats64?.tx.bytes ?? 0 };
    }
    return out;
  }

  async uplinkCounters(): Promise<ByteCounters> {
    const owners = this.machines.filter((m) => m.uplinks.length > 0);
    const all = await Promise.all(owners.map((m) => this.counters(m.ns)));
    const out: ByteCounters = {};
    for (const u of this.uplinks) {
      const c = all[owners.findIndex((m) => m.ns === u.hostNs)]?.[u.dev];
      if (c) out[u.dev] = c;
    }
    return out;
  }

  blackhole(i: number): Promise<void> {
    this.log(`blackholing uplink ${i}`);
    return this.apply(blackholeCommands(this.plan, i, true));
  }

  unblackhole(i: number): Promise<void> {
    this.log(`restoring uplink ${i}`);
    return this.apply(blackholeCommands(this.plan, i, false));
  }

  async linkDown(i: number, mode: LinkDownMode = 'admin'): Promise<void> {
    const prev = this.down.get(i);
    if (prev !== undefined && prev !== mode) await this.linkUp(i);
    this.log(`uplink ${i} down (${mode})`);
    await this.apply(linkStateCommands(this.plan, i, false, mode));
    this.down.set(i, mode);
    if (mode === 'admin') await this.apply(routeCommands(this.plan, this.routeState()));
  }

  async linkUp(i: number): Promise<void> {
    const mode = this.down.get(i) ?? 'admin';
    this.log(`uplink ${i} up`);
    await this.apply(linkStateCommands(this.plan, i, true, mode));
    await this.waitOperUp(i);
    this.down.delete(i);
    // Setting the device down removed its routes; put back what the current mode wants.
    await this.apply(routeCommands(this.plan, this.routeState()));
  }

  async setEcmp(on: boolean): Promise<void> {
    this.log(`ECMP ${on ? 'on' : 'off'}`);
    this.ecmp = on;
    await this.apply(routeCommands(this.plan, this.routeState()));
  }

  gatewayMasquerade(on: boolean): Promise<void> {
    this.log(`gateway masquerade ${on ? 'on' : 'off'}`);
    return this.apply(gatewayMasqueradeCommands(this.plan, on));
  }

  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  /**
   * Carrier changes reach the kernel's link watcher asynchronously (up to ~1 s later);
   * until then the device drops packets. Wait, bounded, for operstate UP.
   */
  private async waitOperUp(i: number): Promise<void> {
    const dev = this.uplinks[i]?.dev ?? '';
    const ns = this.uplinks[i]?.hostNs ?? this.clientNs;
    let state = '';
    for (let attempt = 0; attempt < OPERSTATE_POLLS; attempt++) {
      const { stdout } = await this.runner.run('ip', ['-n', ns, '-j', 'link', 'show', dev]);
      state = (JSON.parse(stdout) as { operstate?: string }[])[0]?.operstate ?? '';
      if (state === 'UP') return;
      await new Promise((r) => setTimeout(r, OPERSTATE_POLL_MS));
    }
    throw new LinkmuxError(
      'LINKMUX_ERR_COMMAND_FAILED',
      `testbed: ${dev} in ${ns} still ${state} ${OPERSTATE_POLLS * OPERSTATE_POLL_MS} ms after link up`,
    );
  }

  /** The guard that keeps exec/spawn/counters inside this testbed's own namespaces. */
  private checkOwn(ns: string): void {
    if (!this.namespaces.has(ns)) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `testbed: "${ns}" is not a namespace of testbed ${this.prefix} (${[...this.namespaces].join(' ')})`,
      );
    }
  }

  private routeState() {
    const adminDown = new Set([...this.down].filter(([, m]) => m === 'admin').map(([i]) => i));
    return { ecmp: this.ecmp, down: adminDown };
  }

  private async apply(cmds: Command[]): Promise<void> {
    for (const c of cmds) {
      this.log(`$ ${formatCommands([c])}`);
      try {
        await this.runner.run(c.cmd, c.args, c.input === undefined ? undefined : { input: c.input });
      } catch (err) {
        if (!isTolerant(c)) throw err;
      }
    }
  }

  /** Starts the file server in the server ns and waits for its `listening` line. */
  private async startServer(args: string[]): Promise<void> {
    const main = fileURLToPath(new URL('./file-server-main.js', import.meta.url));
    const child = this.spawn(this.serverNs, process.execPath, [main, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(
          new LinkmuxError(
            'LINKMUX_ERR_COMMAND_FAILED',
            `testbed: file server in ${this.serverNs} ${why}${stderr ? `: ${stderr.trim()}` : ''}`,
          ),
        );
      };
      const timer = setTimeout(
        () => fail(`did not start within ${SERVER_START_TIMEOUT_MS} ms`),
        SERVER_START_TIMEOUT_MS,
      );
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('listening ')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => fail(`exited (${signal ?? code})`));
      child.once('error', (err) => fail(`could not start (${err.message})`));
    });
    this.log(`file server up in ${this.serverNs}: ${args.join(' ')}`);
  }

  /**
   * Checks, from every machine that owns uplinks through its default uplink, that the
   * server answers (bounded; machines in parallel). With policy tables there is no
   * default uplink: the request leaves from the machine's first uplink's address.
   */
  private async waitReachable(): Promise<void> {
    const first = Object.keys(this.files)[0] ?? '.keep';
    const script = `
      const http = require('node:http');
      let left = 40;
      const attempt = () => {
        const opts = { method: 'HEAD', timeout: 1000, localAddress: process.argv[2] || undefined };
        const req = http.request(process.argv[1], opts, (res) => {
          res.resume();
          process.exit(res.statusCode === 200 ? 0 : 2);
        });
        const retry = () => { req.destroy(); if (--left <= 0) process.exit(1); setTimeout(attempt, 100); };
        req.on('timeout', retry);
        req.on('error', retry);
        req.end();
      };
      attempt();`;
    const check = async (m: TestbedMachine) => {
      const ns = m.ns;
      const from = this.plan.policyTables ? (this.uplinks[m.uplinks[0] ?? -1]?.address ?? '') : '';
      try {
        await this.exec(ns, process.execPath, ['-e', script, this.url(first), from]);
      } catch (err) {
        throw new LinkmuxError(
          'LINKMUX_ERR_CONNECT',
          `testbed: the server ${this.serverAddress} does not answer from ${ns}: ${describe(err)}`,
          { cause: err },
        );
      }
    };
    await Promise.all(this.machines.filter((m) => m.uplinks.length > 0).map((m) => check(m)));
  }

  private async teardown(): Promise<void> {
    process.off('exit', this.onExit);
    const errors: string[] = [];
    await Promise.all([...this.children].map((c) => killChild(c)));
    for (const ns of allNamespaces(this.plan)) {
      try {
        await killNamespaceProcesses(this.runner, ns);
      } catch (err) {
        errors.push(describe(err));
      }
    }
    for (const c of teardownCommands(this.plan)) {
      try {
        await this.runner.run(c.cmd, c.args);
      } catch (err) {
        // Already gone (a failed build, or a second destroy) is fine.
        if (!/No such file|does not exist|Cannot remove/i.test(describe(err))) errors.push(describe(err));
      }
    }
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
    this.log(`testbed ${this.prefix} destroyed`);
    if (errors.length > 0) {
      throw new LinkmuxError(
        'LINKMUX_ERR_COMMAND_FAILED',
        `testbed cleanup incomplete: ${errors.join('; ')}`,
      );
    }
  }

  /** Last resort when the process exits without destroy(): best effort, synchronous. */
  private destroySync(): void {
    for (const c of this.children) c.kill('SIGKILL');
    for (const ns of allNamespaces(this.plan)) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // nothing more can be done while exiting; removeLeftovers() catches it next time
      }
    }
  }
}

interface IpLinkJson {
  ifname: string;
  stats64?: { rx: { bytes: number }; tx: { bytes: number } };
}

function killChild(child: ChildProcess): Promise<void> {
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

/** Kills every process still living in namespace `ns` (it would keep the namespace alive). */
async function killNamespaceProcesses(runner: Runner, ns: string): Promise<void> {
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

/**
 * Deletes the namespaces of earlier testbed runs (`<family>-<pid>-<suffix>-…`) whose
 * owner process is dead, killing anything still running inside them first.
 * Returns the names removed. Namespaces of live runs are never touched.
 */
export async function removeLeftovers(runner: Runner = new ExecRunner(), family = 'lmx'): Promise<string[]> {
  if (!/^[a-z0-9]+$/.test(family))
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `bad namespace family "${family}"`);
  const { stdout } = await runner.run('ip', ['netns', 'list']);
  const pattern = new RegExp(`^${family}-(\\d+)-[a-z0-9]+-`);
  const removed: string[] = [];
  for (const line of stdout.split('\n')) {
    const name = line.trim().split(/\s+/)[0] ?? '';
    const m = pattern.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    await killNamespaceProcesses(runner, name);
    try {
      await runner.run('ip', ['netns', 'del', name]);
      removed.push(name);
    } catch {
      // raced with another cleaner; it is gone either way
    }
  }
  return removed;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
