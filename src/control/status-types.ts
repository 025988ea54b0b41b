/**
 * What the daemon reports about itself: the JSON of the control API's
 * GET /status, read by `linkmux status` and turned into Prometheus metrics.
 * Rates are bytes per second; times are ISO-8601 strings or seconds.
 */
import type { LinkState } from '../links/link-state.js';

export interface LinkStatus {
  id: string;
  /** "eth0 198.18.1.2 via 198.18.1.1 (SO_BINDTODEVICE)" */
  description: string;
  state: LinkState;
  /**
   * Why the link is in its state, one line ("3 consecutive probe failures (last:
   * timeout)", or for unverified "every link failed its probes to …"); absent
   * until the state changed once.
   */
  stateReason?: string;
  /** When the link entered its state. */
  since: string;
  /** Last probe round-trip time, ms. */
  rttMs?: number;
  /** Measured rate received through the link (bytes/s); "in" is towards this machine. */
  rateIn: number;
  /** Measured rate sent through the link (bytes/s). */
  rateOut: number;
  /** Capacity learned from observed throughput (bytes/s), when known. */
  capacity?: number;
  activeConnections: number;
  /**
   * Bytes received / sent through the link since the daemon started. Must never
   * decrease while the daemon runs: /metrics exports them as Prometheus counters.
   */
  bytesIn: number;
  bytesOut: number;
  /** Failed connects through the link since the daemon started (never decreases; a counter). */
  connectFailures: number;
  lastFailure?: { at: string; reason: string };
}

export interface DaemonStatus {
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  policy: string;
  listen: { socks?: string; http?: string; control?: string; node?: string[] };
  /**
   * Client connections: open now; accepted since start; never connected to their
   * destination since start. `total` and `failed` never decrease (counters).
   */
  connections: { active: number; total: number; failed: number };
  links: LinkStatus[];
  /** Present when this machine lends its uplinks as a linkmux node. */
  node?: NodeStatus;
  /** Connection caps, descriptors, refusals and failed logins (daemon/protection.ts). */
  protection?: ProtectionStatus;
  /** Present with `up --server`: the server link and the MPTCP subflows per uplink. */
  mptcp?: MptcpStatus;
}

export interface ProtectionStatus {
  /** Caps in force: client connections in all, and from one address. */
  maxConnections: number;
  maxConnectionsPerClient: number;
  /** The process's descriptor limit (soft, after raising it) and the part kept for control and probes. */
  fdLimit: number;
  fdReserve: number;
  /** Descriptors open now (Linux). */
  openFds?: number;
  /** Client connections open now, all front ends. */
  clientConnections: number;
  /** Connections refused since start: over the global cap, over the per-client cap, during a descriptor pause (counters). */
  shed: { global: number; perClient: number; pressure: number };
  /** Times the process ran out of descriptors (EMFILE/ENFILE) since start (counter). */
  descriptorExhaustion: number;
  /** Failed logins since start, by front end (counters). */
  failedLogins: { socks5: number; http: number; node: number };
}

export interface MptcpStatus {
  /** Id of the server link (its bytes and state are in `links`). */
  server: string;
  uplinks: Array<{
    dev: string;
    address: string;
    inService: boolean;
    /** linkmux's MPTCP endpoint for it is installed (subflows may start from it). */
    endpoint: boolean;
    /** Open MPTCP subflows from its address, and their bytes (received / acked sent), summed. */
    subflows: number;
    bytesIn: number;
    bytesOut: number;
  }>;
}

export interface NodeStatus {
  /** Where the node listens (TLS + SOCKS5). */
  listen: string[];
  /** SHA-256 of its certificate (what join tokens pin). */
  fingerprint: string;
  /** Ids of the links it lends. */
  lends: string[];
  /** Connections relayed for other machines: open now, accepted, failed (counters). */
  relayed: { active: number; total: number; failed: number };
  /** TLS handshakes that failed (garbage, wrong protocol) and clients refused at authentication (counters). */
  tlsFailures: number;
  authFailures: number;
}
