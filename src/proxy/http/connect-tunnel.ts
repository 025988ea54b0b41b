/**
 * CONNECT tunnels (RFC 9110 §9.3.6), the way browsers reach https:// sites
 * through an HTTP proxy:
 *
 *   client -> proxy (CONNECT host:port) -> dialer -> link -> target
 *   client <─────────── pipeSockets ───────────> target
 *
 * Guarantees: the target is reached only through the Dialer; the client gets
 * `200 Connection Established` only once the target is connected, else 407,
 * 400, 403, 502 or 504 with a one-line body and a closed socket; bytes the
 * client sent after the CONNECT head reach the target first; a client that
 * leaves while the dial is in flight aborts it, and a dial that completes
 * anyway is closed; tunnels idle for idleTimeoutMs are closed on both sides.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeSockets } from '../pipe-sockets.js';
import { dialFailure, replyAndClose } from './error-reply.js';
import { formatAuthority, parseConnectTarget } from './http-target.js';
import { PROXY_AUTHENTICATE } from './proxy-auth.js';
import type { HttpProxyContext } from './proxy-context.js';
import { clientLabel } from './proxy-context.js';
import { DialAbort } from '../../util/dial-abort.js';

export function handleConnect(
  ctx: HttpProxyContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  // Node removed its own error handler when it handed the socket over.
  socket.on('error', () => socket.destroy());
  const client = clientLabel(req.socket);

  if (!ctx.authorize(req.headers['proxy-authorization'], req.socket.remoteAddress)) {
    ctx.logger.debug(`http: ${client} CONNECT refused: proxy authentication required`);
    replyAndClose(socket, 407, 'linkmux: proxy authentication required', {
      'Proxy-Authenticate': PROXY_AUTHENTICATE,
    });
    return;
  }
  const dst = parseConnectTarget(req.url ?? '');
  if (dst === undefined) {
    replyAndClose(socket, 400, 'linkmux: CONNECT needs a target of the form host:port or [ipv6]:port');
    return;
  }
  const target = formatAuthority(dst);

  const abort = new DialAbort();
  const onEarlyClose = () => abort.abort();
  socket.once('close', onEarlyClose);
  ctx.dialer.dial(dst, { signal: abort.signal, client, clientIp: req.socket.remoteAddress }).then(
    ({ socket: upstream, link }) => {
      socket.off('close', onEarlyClose);
      if (socket.destroyed || abort.signal.aborted) {
        upstream.destroy();
        return;
      }
      ctx.logger.debug(`http: ${client} CONNECT ${target} via ${link}`);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      closeWhenIdle(socket as Socket, upstream, ctx.idleTimeoutMs);
      void pipeSockets(socket, upstream).then((r) => {
        ctx.logger.debug(`http: ${client} CONNECT ${target} closed (${r.aToB} B up, ${r.bToA} B down)`);
      });
    },
    (err: unknown) => {
      socket.off('close', onEarlyClose);
      if (abort.signal.aborted || socket.destroyed) return;
      const failure = dialFailure(err, target);
      ctx.logger.debug(`http: ${client} CONNECT ${target} failed: ${failure.message}`);
      replyAndClose(socket, failure.status, failure.message);
    },
  );
}

/**
 * Every tunnelled byte crosses both sockets and socket timeouts count reads and
 * writes, so either socket idle for idleTimeoutMs means the whole tunnel is.
 */
function closeWhenIdle(client: Socket, upstream: Socket, idleTimeoutMs: number): void {
  if (idleTimeoutMs <= 0) return;
  const onIdle = () => {
    client.destroy();
    upstream.destroy();
  };
  // The CONNECT socket is always a net.Socket; the check keeps custom Duplexes working.
  if (typeof client.setTimeout === 'function') client.setTimeout(idleTimeoutMs, onIdle);
  upstream.setTimeout(idleTimeoutMs, onIdle);
}
