/**
 * The seam between proxy front ends and the link pool. A front end (SOCKS5,
 * HTTP) never opens sockets itself: it asks a Dialer, which picks a link with
 * the scheduler, connects through it and fails over to the next link when the
 * connect fails. Front ends only parse, authenticate, apply rules and relay.
 */
import type { Socket } from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';
import type { Destination } from '../links/link.js';

export interface DialContext {
  signal?: AbortSignal;
  /** The client's address, for logs and sticky rules (never credentials). */
  client?: string;
  /** The client's IP address alone (no port), for the own-host guard. */
  clientIp?: string | undefined;
  /** The link the client asked for (a node's per-uplink credentials); the dialer uses only that one. */
  link?: string;
}

export interface Dialed {
  socket: Socket;
  /** Id of the link that carries the connection ('direct' for rule-bypassed ones). */
  link: string;
}

export interface Dialer {
  /**
   * Opens a TCP connection to dst. Rejects with a LinkmuxError only when no link
   * could connect (LINKMUX_ERR_CONNECT / LINKMUX_ERR_TIMEOUT / LINKMUX_ERR_DNS /
   * LINKMUX_ERR_NO_LINKS), or when a rule refuses the destination.
   */
  dial(dst: Destination, ctx?: DialContext): Promise<Dialed>;
  /** A UDP socket whose datagrams leave through one link (one per UDP association). */
  openUdp(family: 4 | 6, ctx?: DialContext): Promise<{ socket: UdpSocket; link: string }>;
  /**
   * Where one datagram of a UDP association may go: its address (a name looked
   * up through the links, never by the system resolver), or undefined when a
   * rule or the own-host guard refuses it, or the name does not resolve (the
   * datagram is dropped, as UDP does). Without it, datagrams go where they say.
   */
  udpDestination?(dst: Destination, ctx?: DialContext): Promise<string | undefined>;
}
