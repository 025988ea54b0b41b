/**
 * Socks5Link: a link whose connections go through a SOCKS5 server — a plain
 * upstream (`socks5://user:pass@router:1080`, `ssh -D`) or a linkmux node (the
 * same protocol inside TLS, the node's certificate pinned by fingerprint).
 *
 *   caller ─► connect(dst) ─► [TLS, pinned] ─► SOCKS5 greeting/auth/CONNECT dst ─► node's uplink ─► dst
 *
 * The socket handed back is the stream to the destination (a TLSSocket for a
 * node); everything the destination sends after the SOCKS5 reply is in it.
 * Names are sent to the server unresolved, so DNS happens where the uplink is.
 *
 * Guarantees: the timeout and the AbortSignal cover the whole path (TCP, TLS,
 * SOCKS5) and destroy the half-made socket; a certificate whose SHA-256 is not
 * the pinned one is refused before a byte of SOCKS5 is sent
 * (LINKMUX_ERR_NODE_AUTH); when the server itself cannot be reached the error
 * is LINKMUX_ERR_CONNECT (the link failed: the dialer fails over), while only a
 * destination that the server reports refused is LINKMUX_ERR_REFUSED (the race
 * ends), and one it cannot reach LINKMUX_ERR_UNREACHABLE; UDP is not carried,
 * as `capabilities.udp` declares (openUdp rejects with
 * LINKMUX_ERR_LINK_CAPABILITY should a caller ask anyway).
 */
import net from 'node:net';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import type { Socket as UdpSocket } from 'node:dgram';
import { LinkmuxError, describe, systemCode } from '../util/errors.js';
import { socks5Connect } from '../socks5/socks5-client.js';
import { normalizeFingerprint } from './join-token.js';
import type { ConnectOptions, Destination, Link, LinkCapabilities, LinkStats } from './link.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, LinkSockets } from './link-sockets.js';
import { formatHostPort } from '../net/address.js';

export interface Socks5LinkOptions {
  /** The link's id shown to users ("office-pc", "office-pc/up1", "router:1080"). */
  id: string;
  /** The SOCKS5 server (or node) to dial. */
  server: { host: string; port: number };
  /** RFC 1929 credentials; none = offer "no authentication". */
  auth?: { username: string; password: string } | undefined;
  /** Set for a linkmux node: TLS with this certificate SHA-256 (64 hex chars) pinned. */
  pinnedFingerprint?: string | undefined;
  /** "node office-pc" or "socks5 upstream": what the server is, for messages. */
  kind: string;
  /**
   * Opens the connection to the server and resolves once it is connected (the
   * MPTCP socket of a `linkmux server`); TLS, when pinned, runs over it.
   * Default: a plain TCP connect.
   */
  transport?: ((server: { host: string; port: number }, signal: AbortSignal) => Promise<Socket>) | undefined;
}

export class Socks5Link implements Link {
  readonly id: string;
  readonly description: string;
  readonly capabilities: LinkCapabilities = Object.freeze({
    udp: false,
    remoteNames: true,
    families: new Set<4 | 6>([4, 6]),
  });
  private readonly sockets: LinkSockets;
  private readonly serverText: string;
  private state: 'open' | 'closing' | 'destroyed' = 'open';

  constructor(private readonly opts: Socks5LinkOptions) {
    this.id = opts.id;
    this.sockets = new LinkSockets(opts.id);
    this.serverText = `${opts.kind} (${formatHostPort(opts.server)})`;
    this.description =
      `${this.serverText}` +
      (opts.pinnedFingerprint ? ` TLS pinned sha256:${opts.pinnedFingerprint.slice(0, 16)}…` : '') +
      (opts.auth ? ` user ${opts.auth.username}` : '');
  }

  async connect(dst: Destination, opts: ConnectOptions = {}): Promise<Socket> {
    const where = formatHostPort(dst);
    if (this.state !== 'open') {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONNECT',
        `link ${this.id} is shutting down; cannot connect to ${where}: pick another link`,
      );
    }
    const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    return this.sockets.withDeadline(
      opts,
      where,
      `${this.serverText} or its uplink may be down; check \`linkmux status\``,
      async (signal) => {
        const socket = this.sockets.track(await this.openSocket(signal));
        try {
          await this.reachServer(socket, signal);
          await socks5Connect(socket, {
            dst,
            ...(this.opts.auth ? { auth: this.opts.auth } : {}),
            signal,
            timeoutMs: Math.max(1, deadline - Date.now()),
            server: this.serverText,
          });
          if (socket.destroyed)
            throw new LinkmuxError('LINKMUX_ERR_ABORTED', `link ${this.id} was shut down`);
          this.sockets.opened(socket);
          return socket;
        } catch (err) {
          socket.destroy();
          throw err;
        }
      },
      (err) => this.connectError(err, where),
    );
  }

  openUdp(_family: 4 | 6): Promise<UdpSocket> {
    return Promise.reject(
      new LinkmuxError(
        'LINKMUX_ERR_LINK_CAPABILITY',
        `link ${this.id} relays TCP only: ${this.serverText} carries no UDP (the link declares none); ` +
          'UDP goes out of local links',
      ),
    );
  }

  stats(): LinkStats {
    return this.sockets.stats();
  }

  receivedBytes(): number {
    return this.sockets.bytesIn();
  }

  close(): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    return this.sockets.drain();
  }

  destroy(): void {
    this.state = 'destroyed';
    this.sockets.destroyAll();
  }

  private async openSocket(signal: AbortSignal): Promise<Socket> {
    const { host, port } = this.opts.server;
    let raw: Socket | undefined;
    if (this.opts.transport) {
      try {
        raw = await this.opts.transport(this.opts.server, signal);
      } catch (err) {
        if (signal.aborted || (err instanceof LinkmuxError && err.code !== 'LINKMUX_ERR_CONNECT')) throw err;
        throw this.serverError(err);
      }
      if (!this.opts.pinnedFingerprint) return raw;
    }
    if (!this.opts.pinnedFingerprint) return net.connect({ host, port });
    return tls.connect({
      ...(raw ? { socket: raw } : {}),
      host,
      port,
      // The certificate is self-signed and pinned: checked by fingerprint below, not by a CA.
      rejectUnauthorized: false,
      ...(net.isIP(host) ? {} : { servername: host }),
      minVersion: 'TLSv1.3',
    });
  }

  /** TCP (and TLS) to the server itself; a certificate other than the pinned one is refused. */
  private async reachServer(socket: Socket, signal: AbortSignal): Promise<void> {
    const pinned = this.opts.pinnedFingerprint;
    if (!pinned && !socket.connecting) return; // a transport hands over connected sockets
    try {
      await once(socket, pinned ? 'secureConnect' : 'connect', { signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw this.serverError(err);
    }
    if (!pinned) return;
    const cert = (socket as tls.TLSSocket).getPeerX509Certificate();
    const got = cert ? normalizeFingerprint(cert.fingerprint256) : 'none';
    if (got !== pinned) {
      throw new LinkmuxError(
        'LINKMUX_ERR_NODE_AUTH',
        `${this.serverText} presented certificate sha256:${got.slice(0, 16)}…, but the join token pins ` +
          `sha256:${pinned.slice(0, 16)}…: this is not the node the token was made for (or its identity was ` +
          `rotated); get a fresh token with \`linkmux node --token\` on that machine`,
      );
    }
  }

  /** The server itself did not answer: the link failed (LINKMUX_ERR_CONNECT), so the dialer tries other links. */
  private serverError(err: unknown): LinkmuxError {
    const code = systemCode(err);
    const hint =
      code === 'ECONNREFUSED'
        ? this.opts.pinnedFingerprint
          ? 'connection refused: is `linkmux node` running there?'
          : 'connection refused: is the SOCKS5 server running?'
        : code === 'ECONNRESET' || code === 'EPROTO' || /TLS|SSL|socket disconnected/i.test(describe(err))
          ? `the TLS handshake failed (${describe(err)}): is that port a linkmux node?`
          : describe(err);
    return new LinkmuxError(
      'LINKMUX_ERR_CONNECT',
      `link ${this.id}: cannot reach ${this.serverText}: ${hint}`,
    );
  }

  private connectError(err: unknown, where: string): LinkmuxError {
    if (err instanceof LinkmuxError) return err;
    return new LinkmuxError(
      'LINKMUX_ERR_CONNECT',
      `link ${this.id}: cannot connect to ${where}: ${describe(err)}`,
      {
        cause: err,
      },
    );
  }
}
