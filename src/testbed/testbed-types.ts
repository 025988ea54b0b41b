/**
 * What the netns testbed offers its users (tests, benchmarks, `linkmux demo`): the
 * options of createTestbed() and the Testbed handle. The implementation is
 * testbed.ts; these types are split out so that file stays about building.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import type { RunResult, Runner } from '../util/runner.js';
import type { DnsQueryRecord, DnsZone } from './dns-server.js';
import type { LinkDownMode } from './faults.js';
import type { UplinkPlan } from './topology.js';

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
  /** Add the far-server host (`farServerNs`, 198.19.0.20) beside the web server, for `linkmux server`. */
  farServer?: boolean;
  /** Also serve HTTPS on 443 with a self-signed certificate (see `caFile`). */
  https?: boolean;
  /** Files generated into a temp dir and served at /files/<name>. Default: 1m.bin (1 MiB), 4m.bin (4 MiB). */
  files?: { name: string; size: number }[];
  /**
   * Run the testbed DNS server on the server address (UDP and TCP 53) and give every
   * machine and LAN host a resolv.conf naming it. true = the default zone (files.test,
   * v6only.test), or a zone of your own. Default off.
   */
  dns?: boolean | DnsZone;
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
  /** With `farServer`: the far-server host's namespace and address (198.19.0.20). */
  farServerNs?: string;
  farServerAddress?: string;
  /** URL of a served file; `host` (default the server address) may be a name of the testbed DNS. */
  /** UDP port on the server address that echoes every datagram back (RFC 862's 7). */
  udpEchoPort: number;
  url(name: string, scheme?: 'http' | 'https', host?: string): string;
  /** Queries the testbed DNS server answered so far, oldest first ([] without `dns`). */
  dnsQueries(): DnsQueryRecord[];
  resetDnsQueries(): void;
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
