/**
 * The front end of `linkmux node`: SOCKS5 (RFC 1928/1929) inside TLS, so other
 * machines of the LAN can use this machine's uplinks as links.
 *
 *   client ─TLS(pinned cert)─► node ─► SOCKS5 auth (token secret) ─► CONNECT dst
 *                                       └─► dialer: guard(dst IP) ─► one of this machine's uplinks ─► dst
 *
 * The wire format is plain SOCKS5 after the TLS handshake, with the node's
 * credentials (node-credentials.ts): username "linkmux" or "linkmux/<link>",
 * password the token's secret. Only CONNECT is served; BIND and UDP ASSOCIATE
 * get "command not supported" (a UDP relay would bypass TLS).
 *
 * Guarantees: nothing is relayed without the secret; garbage and failed TLS
 * handshakes are dropped (logged at debug, counted) without touching the SOCKS5
 * layer; a TLS handshake has `handshakeTimeoutMs` like the SOCKS5 one; shutdown
 * follows the proxy's contract: close() stops accepting and drops connections
 * not yet relaying, closeAllConnections() ends everything.
 */
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { describe } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { silentLogger } from '../util/logger.js';
import type { Dialer } from '../proxy/dialer.js';
import { Socks5Server, DEFAULT_HANDSHAKE_TIMEOUT_MS } from '../proxy/socks5/socks5-server.js';
import { parseNodeUsername, secretChecker } from '../links/node-credentials.js';
import { admitSocket } from '../proxy/shed.js';
import type { FrontEndGate } from '../proxy/shed.js';

export interface NodeServerOptions {
  certPem: string;
  keyPem: string;
  /** The SOCKS5 password clients must give (the join token's secret). */
  secret: string;
  /** Opens the relayed connections: this machine's own links only, with the destination guard. */
  dialer: Dialer;
  /** Link ids a client may ask for by name ("linkmux/<link>"). */
  links: readonly string[];
  logger?: Logger;
  /** TLS handshake, then SOCKS5 greeting to request: each within this many ms. Default 10 000. */
  handshakeTimeoutMs?: number;
  /** Milliseconds without a byte either way after which a relay is closed; 0 = never. Default 0. */
  idleTimeoutMs?: number | undefined;
  /** Connection caps shared with the proxy's front ends: a refused client is closed at once. */
  gate?: FrontEndGate | undefined;
  /** Called with the client's address when it gave a wrong secret (aggregated by the caller). */
  onLoginFailure?: ((address: string | undefined) => void) | undefined;
}

export interface NodeServerCounters {
  /** TLS handshakes that failed: garbage on the port, a wrong protocol, a client that gave up. */
  tlsFailures: number;
  /** Clients refused at SOCKS5 authentication. */
  authFailures: number;
}

export class NodeServer extends tls.Server {
  private readonly socks: Socks5Server;
  /** Raw TCP sockets whose TLS handshake is not done yet, by "address:port" of the peer. */
  private readonly handshaking = new Map<string, Socket>();
  private readonly counters: NodeServerCounters = { tlsFailures: 0, authFailures: 0 };
  private readonly gate: FrontEndGate | undefined;

  constructor(opts: NodeServerOptions) {
    const logger = opts.logger ?? silentLogger;
    const timeout = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    super({
      cert: opts.certPem,
      key: opts.keyPem,
      minVersion: 'TLSv1.3',
      handshakeTimeout: timeout,
      allowHalfOpen: true,
    });
    this.gate = opts.gate;
    const secretOk = secretChecker(opts.secret);
    const known = new Set(opts.links);
    this.socks = new Socks5Server({
      dialer: opts.dialer,
      logger,
      handshakeTimeoutMs: timeout,
      idleTimeoutMs: opts.idleTimeoutMs,
      onLoginFailure: opts.onLoginFailure,
      udp: false,
      authenticate: (username, password) => {
        // The secret is checked first and always, so timing tells nothing about the username.
        const passOk = secretOk(password);
        const user = parseNodeUsername(username.toString('utf8'));
        if (!passOk || !user || (user.link !== undefined && !known.has(user.link))) {
          this.counters.authFailures++;
          if (passOk && user?.link !== undefined) {
            logger.warn(`node: a client asked for link ${user.link}, which this node does not have`);
          }
          return undefined;
        }
        return { link: user.link };
      },
    });
    // Raw TCP sockets, until their TLS handshake is done: closed by close() and closeAllConnections().
    this.on('connection', (raw: Socket) => {
      const key = peerKey(raw);
      this.handshaking.set(key, raw);
      raw.once('close', () => {
        if (this.handshaking.get(key) === raw) this.handshaking.delete(key);
      });
    });
    this.on('secureConnection', (socket: tls.TLSSocket) => {
      this.handshaking.delete(peerKey(socket));
      this.socks.emit('connection', socket);
    });
    this.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
      this.counters.tlsFailures++;
      logger.debug(`node: TLS handshake with ${socket.remoteAddress ?? '?'} failed: ${describe(err)}`);
      socket.destroy();
    });
  }

  /** The cap check runs before the TLS layer wraps the raw socket. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'connection' && !admitSocket(this.gate, args[0] as Socket, 'node')) return false;
    return (tls.Server.prototype.emit as (e: string | symbol, ...a: unknown[]) => boolean).call(
      this,
      event,
      ...args,
    );
  }

  stats(): NodeServerCounters {
    return { ...this.counters };
  }

  /** Stops accepting; drops handshakes in progress; relays already running may finish. */
  override close(callback?: (err?: Error) => void): this {
    super.close(callback);
    this.socks.close();
    for (const raw of [...this.handshaking.values()]) raw.destroy();
    return this;
  }

  closeAllConnections(): void {
    for (const raw of [...this.handshaking.values()]) raw.destroy();
    this.socks.closeAllConnections();
  }
}

function peerKey(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
}
