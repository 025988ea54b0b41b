/**
 * The shared netns testbed: a client with N shaped uplinks through N NAT-ing ISP
 * namespaces to one server namespace running the test file server (see topology.ts
 * for the picture). Optionally a LAN: node machines that own some of the uplinks
 * (for `linkmux node`) and LAN-only hosts routed through the client (for `linkmux
 * gateway`). Used by the netns tests, the benchmarks and `linkmux demo`.
 * With `dns`, the server namespace also runs an authoritative DNS server (files.test
 * → the server address, v6only.test → AAAA only) and every machine's resolv.conf
 * names it (see testbed-dns.ts).
 *
 * Topology facts the tests rely on (checked by test/netns/testbed.test.ts):
 * - each machine has one default route per own uplink, metrics 100, 101, 102, … in
 *   uplink order (not 100/200/300), no source rules: unbound traffic, the system
 *   resolver's queries included, leaves through the lowest metric (up0 on the client)
 *   and dies with it when that ISP is blackholed;
 * - nothing leaves the machine: the ISPs have routes to 198.18.0.0/15 neighbours only,
 *   and drop (silently, before routing, so no ICMP unreachable comes back) every
 *   packet to an address outside 198.18.0.0/15. A probe to 1.1.1.1 or 8.8.8.8 times
 *   out as behind a blocked network; IPv6 has no route at all (connect fails at once).
 *
 * Guarantees: needs root and says so; touches nothing outside its own namespaces
 * (all named `<prefix>…`, prefix `lmx-<pid>-<random>-` by default, so leftovers of a
 * dead run are recognised and removed at the next start); every wait is bounded;
 * `destroy()` kills what it spawned, deletes its namespaces and temp files, and is
 * safe to call twice. A failed build cleans up after itself before rethrowing.
 */
import { spawn as spawnChild, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LinkmuxError, describe } from '../util/errors.js';
import { ExecRunner, type RunResult, type Runner } from '../util/runner.js';
import { makeSelfSignedCert } from './self-signed-cert.js';
import { killChild, waitListening } from './child-processes.js';
import type { DnsQueryRecord, DnsZone } from './dns-server.js';
import { killNamespaceProcesses, removeLeftovers } from './leftovers.js';
import { etcDirs, removeEtcDirs, resolvConfFiles, writeEtcFiles } from './netns-etc.js';
import { DnsServerProcess, defaultZone } from './testbed-dns.js';
import { makeTestFile } from './test-file.js';
import {
  allNamespaces,
  formatCommands,
  gatewayMasqueradeCommands,
  isTolerant,
  planTopology,
  routeCommands,
  setupCommands,
  teardownCommands,
  type Command,
  type TopologyPlan,
} from './topology.js';
import { blackholeCommands, linkStateCommands, type LinkDownMode } from './faults.js';
import type {
  ByteCounters,
  Testbed,
  TestbedLanHost,
  TestbedMachine,
  TestbedOptions,
  Uplink,
} from './testbed-types.js';

export { removeLeftovers } from './leftovers.js';
export { FILES_NAME, V6_ONLY_ADDRESS, V6_ONLY_NAME } from './testbed-dns.js';

export type {
  ByteCounters,
  Testbed,
  TestbedLanHost,
  TestbedMachine,
  TestbedOptions,
  Uplink,
} from './testbed-types.js';

const DEFAULT_FILES = [
  { name: '1m.bin', size: 1024 * 1024 },
  { name: '4m.bin', size: 4 * 1024 * 1024 },
];
const SERVER_START_TIMEOUT_MS = 10_000;
const UDP_ECHO_PORT = 7;
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

  const removed = await removeLeftovers(runner);
  if (removed.length > 0) log(`removed leftover namespaces of dead runs: ${removed.join(' ')}`);

  const plan = planTopology({
    prefix: opts.prefix ?? `lmx-${process.pid}-${randomBytes(2).toString('hex')}-`,
    links: opts.links ?? opts.machines?.length ?? 3,
    rateMbit: opts.rateMbit ?? 8,
    machines: opts.machines,
    lanHosts: opts.lanHosts,
    policyTables: opts.policyTables,
    ...(opts.farServer ? { farServer: true } : {}),
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
  readonly farServerNs?: string;
  readonly farServerAddress?: string;
  caFile?: string;
  files: Record<string, { path: string; size: number; sha256: string }> = {};

  private tmp?: string;
  private readonly dns = new DnsServerProcess();
  /** /etc/netns/<ns> directories written for the DNS option. */
  private etc: string[] = [];
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
    if (plan.farServer) {
      this.farServerNs = plan.farServer.ns;
      this.farServerAddress = plan.farServer.address;
    }
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
      const { certPath, keyPath } = await makeSelfSignedCert(tlsDir, this.serverAddress);
      this.caFile = certPath;
      const tls = ['--tls-key', keyPath, '--tls-cert', this.caFile];
      await this.startServer([...serverArgs, '--port', '443', ...tls]);
    }
    if (opts.dns) await this.startDns(opts.dns === true ? defaultZone(this.serverAddress) : opts.dns);
    await this.waitReachable();
  }

  /** The DNS server in the server ns, then the resolv.conf files that name it. */
  private async startDns(zone: DnsZone): Promise<void> {
    await this.dns.start(
      (cmd, args) => this.spawn(this.serverNs, cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }),
      zone,
      SERVER_START_TIMEOUT_MS,
    );
    const namespaces = [...this.machines.map((m) => m.ns), ...this.lanHosts.map((h) => h.ns)];
    const files = resolvConfFiles(namespaces, this.serverAddress);
    this.etc = etcDirs(files);
    await writeEtcFiles(files);
    this.log(`DNS server up in ${this.serverNs}; resolv.conf in ${this.etc.join(' ')}`);
  }

  dnsQueries(): DnsQueryRecord[] {
    return this.dns.queries();
  }

  resetDnsQueries(): void {
    this.dns.reset();
  }

  url(name: string, scheme: 'http' | 'https' = 'http', host = this.serverAddress): string {
    if (scheme === 'https' && !this.https) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        'testbed: https URL asked for, but the testbed was built without https',
      );
    }
    return `${scheme}://${host}/files/${encodeURIComponent(name)}`;
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
    await waitListening(child, `file server in ${this.serverNs}`, SERVER_START_TIMEOUT_MS);
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
    await removeEtcDirs(this.etc);
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
    for (const dir of this.etc) rmSync(dir, { recursive: true, force: true });
  }
}

interface IpLinkJson {
  ifname: string;
  stats64?: { rx: { bytes: number }; tx: { bytes: number } };
}
