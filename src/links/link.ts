/**
 * The Link seam. A Link is one uplink: everything above (downloader, proxy,
 * scheduler) opens connections only through `connect`, so local interfaces and
 * relayed links are interchangeable. `close()` drains (no new connections, wait
 * for open ones), `destroy()` aborts every open connection at once.
 */
import type { Socket } from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';

export interface Destination {
  /** An IP literal or a host name; names are resolved by the link itself. */
  host: string;
  port: number;
}

export interface ConnectOptions {
  signal?: AbortSignal;
  /** Connect timeout in milliseconds (default 10 000). */
  timeoutMs?: number;
}

export interface LinkStats {
  /** Bytes received and sent over this link's connections, closed ones included. */
  bytesIn: number;
  bytesOut: number;
  activeConnections: number;
  connectFailures: number;
  lastError?: string;
}

/** What a link can do, declared so callers choose links instead of catching errors. */
export interface LinkCapabilities {
  /** `openUdp` works (local interfaces); relays carry TCP only. */
  readonly udp: boolean;
  /** Names are sent to the far side and resolved there (nodes, SOCKS5 upstreams). */
  readonly remoteNames: boolean;
  /**
   * Address families this link can reach: the families a local interface has
   * addresses of; both for relays (the far side decides).
   */
  readonly families: ReadonlySet<4 | 6>;
}

export interface Link {
  /** Short stable name shown to users: the interface name, or the relay's name. */
  readonly id: string;
  readonly capabilities: LinkCapabilities;
  /** One line for humans: "eth0 198.18.1.2 via 198.18.1.1 (SO_BINDTODEVICE)". */
  readonly description: string;
  /** Opens a TCP connection forced out of this link. Rejects with a LinkmuxError. */
  connect(dst: Destination, opts?: ConnectOptions): Promise<Socket>;
  /** A UDP socket (bound, ephemeral port) whose datagrams leave by this link. */
  openUdp(family: 4 | 6): Promise<UdpSocket>;
  stats(): LinkStats;
  /** `stats().bytesIn` alone, where that is cheaper (the health monitor reads it twice a second). */
  receivedBytes?(): number;
  close(): Promise<void>;
  destroy(): void;
}
