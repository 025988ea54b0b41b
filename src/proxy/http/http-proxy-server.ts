/**
 * The HTTP proxy front end of `linkmux up`: Node's own HTTP server (its parser,
 * keep-alive and framing) with three entry points wired to the handlers:
 *
 *   CONNECT host:port             -> connect-tunnel.ts   (tunnel via pipeSockets)
 *   GET http://host:port/path     -> forward-request.ts  (absolute-URI forwarding)
 *   bytes Node cannot parse       -> 'clientError'       (400 / 408, then close)
 *
 * Every outbound connection comes from the injected Dialer; this module never
 * opens a socket. Guarantees: request headers complete within
 * `headersTimeoutMs` (trickled or not) or the client gets 408 and a close; a
 * connection over the caps gets 503 before its request is read; Proxy-Authorization Basic is checked in constant
 * time when `auth` is set (407 otherwise) and never logged; a malformed request
 * costs only its own connection; `close()` stops listening AND destroys every
 * client socket (tunnels and their targets follow through pipeSockets, pooled
 * origin connections through their DialerAgent), so no socket outlives it;
 * `closeAllConnections()` does the second half alone (tunnels included), for a
 * caller that drains before closing.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { systemCode } from '../../util/errors.js';
import type { Logger } from '../../util/logger.js';
import type { Dialer } from '../dialer.js';
import { handleConnect } from './connect-tunnel.js';
import { replyAndClose } from './error-reply.js';
import { handleRequest } from './forward-request.js';
import type { BasicCredentials } from './proxy-auth.js';
import { createBasicAuthCheck } from './proxy-auth.js';
import type { HttpProxyContext } from './proxy-context.js';
import { admitSocket } from '../shed.js';
import type { FrontEndGate } from '../shed.js';

export interface HttpProxyOptions {
  /** Opens every outbound connection (link choice and failover live behind it). */
  dialer: Dialer;
  /** When set, every request must carry these in Proxy-Authorization: Basic. */
  auth?: BasicCredentials;
  logger: Logger;
  /**
   * Milliseconds without a byte in either direction after which a tunnel, a
   * forwarded exchange or a client connection is closed. Default 300 000 (5 min);
   * 0 disables it. Idle keep-alive connections between requests follow Node's
   * keepAliveTimeout (5 s) instead.
   */
  idleTimeoutMs?: number;
  /**
   * Milliseconds a request's headers may take from the connection's (or the
   * request's) first byte, whether bytes trickle in or not; then 408 and close.
   * Default 10 000. Enforced by Node's headersTimeout, checked every
   * min(500, max(50, headersTimeoutMs / 10)) ms, so the close comes at most that late.
   */
  headersTimeoutMs?: number;
  /** Connection caps: a refused client gets 503 before its request is read (see shed.ts). */
  gate?: FrontEndGate | undefined;
  /** Called with the client's address when it sent wrong credentials (not when it sent none). */
  onLoginFailure?: ((address: string | undefined) => void) | undefined;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;

export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

/**
 * http.Server with the SOCKS server's shutdown semantics: close() stops accepting
 * and ends idle keep-alive connections while busy ones finish (the daemon's
 * drain); closeAllConnections() ends everything, CONNECT tunnels included.
 */
class HttpProxyServer extends http.Server {
  readonly #sockets = new Set<Socket>();
  readonly #gate: FrontEndGate | undefined;

  constructor(ctx: HttpProxyContext, headersTimeoutMs: number, gate: FrontEndGate | undefined) {
    // requestTimeout is off: an upload through a proxy may take longer than Node's
    // 5 min, and idleness is what matters (server.timeout below). headersTimeout
    // must then be given explicitly: Node 20 derives its default as
    // min(60 s, requestTimeout), which is 0 (off) when requestTimeout is 0.
    // Node checks both only every connectionsCheckingInterval (default 30 s).
    super(
      {
        requestTimeout: 0,
        headersTimeout: headersTimeoutMs,
        connectionsCheckingInterval: Math.min(500, Math.max(50, Math.floor(headersTimeoutMs / 10))),
      },
      (req, res) => handleRequest(ctx, req, res, false),
    );
    this.#gate = gate;
    this.timeout = ctx.idleTimeoutMs;
    this.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) =>
      handleRequest(ctx, req, res, true),
    );
    this.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      handleConnect(ctx, req, socket, head),
    );
    this.on('clientError', (err: Error, socket: Duplex) => onClientError(ctx, err, socket));
    this.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      firstHeadersDeadline(ctx, socket, headersTimeoutMs);
    });
    // The first request's headers are complete: its deadline is over.
    const complete = (req: http.IncomingMessage) => headersDone.add(req.socket);
    this.prependListener('request', complete);
    this.prependListener('checkContinue', complete);
    this.prependListener('connect', complete);
  }

  override close(callback?: (err?: Error) => void): this {
    super.close(callback);
    this.closeIdleConnections();
    return this;
  }

  /** The cap check runs before Node's own 'connection' listener attaches its parser. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'connection' && !admitSocket(this.#gate, args[0] as Socket, 'http')) return false;
    return (http.Server.prototype.emit as (e: string | symbol, ...a: unknown[]) => boolean).call(
      this,
      event,
      ...args,
    );
  }

  /** Node's version misses CONNECT tunnels (no longer HTTP connections to it): this ends them too. */
  override closeAllConnections(): void {
    super.closeAllConnections();
    for (const socket of this.#sockets) socket.destroy();
  }
}

export function createHttpProxyServer(options: HttpProxyOptions): http.Server {
  const { auth, onLoginFailure } = options;
  const check = auth ? createBasicAuthCheck(auth) : undefined;
  const ctx: HttpProxyContext = {
    dialer: options.dialer,
    logger: options.logger,
    authorize: (header, clientIp) => {
      if (check === undefined || check(header)) return true;
      // No header is the usual first step (the client learns it must log in from the 407).
      if (header !== undefined) onLoginFailure?.(clientIp);
      return false;
    },
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
  };
  return new HttpProxyServer(ctx, options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS, options.gate);
}

const headersDone = new WeakSet<Socket>();

/**
 * Node's headersTimeout counts from the first byte of a request (llhttp's
 * message begin), so a client that waits, then trickles, could hold a
 * connection for twice the deadline. This timer counts from the connection
 * itself for its first request; later keep-alive requests are bounded by
 * keepAliveTimeout (idle) plus Node's own headersTimeout.
 */
function firstHeadersDeadline(ctx: HttpProxyContext, socket: Socket, ms: number): void {
  const timer = setTimeout(() => {
    if (headersDone.has(socket) || socket.destroyed) return;
    ctx.logger.debug(`http: ${socket.remoteAddress ?? '?'}: request headers not complete within ${ms} ms`);
    onClientError(
      ctx,
      Object.assign(new Error('headers timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }),
      socket,
    );
  }, ms);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** Sockets already answered: Node may report more parse errors for the same bytes. */
const answered = new WeakSet<Duplex>();

function onClientError(ctx: HttpProxyContext, err: Error, socket: Duplex): void {
  const code = systemCode(err);
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (answered.has(socket) || code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    // Nothing sensible can be written: a reply would corrupt a response already under way.
    socket.destroy();
    return;
  }
  answered.add(socket);
  ctx.logger.debug(`http: malformed request: ${code ?? err.message}`);
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    replyAndClose(socket, 408, 'linkmux: the request headers did not arrive in time');
  } else if (code === 'HPE_HEADER_OVERFLOW') {
    replyAndClose(socket, 400, 'linkmux: the request headers are too large');
  } else {
    replyAndClose(socket, 400, 'linkmux: malformed HTTP request');
  }
}
