/**
 * Absolute-URI forwarding (RFC 9112 §3.2.2), the way clients fetch http:// URLs
 * through an HTTP proxy:
 *
 *   client -> proxy (GET http://host:port/path) -> DialerAgent -> dialer -> origin
 *   client <- proxy (status, headers, body)     <-             <-        <- origin
 *
 * Guarantees: the origin is reached only through the Dialer (via the client
 * connection's DialerAgent); hop-by-hop headers are stripped and Via is added
 * both ways; bodies are streamed both ways with backpressure (pipe); a failure
 * before the response head is answered 502/504 with a one-line body, a failure
 * after it aborts the client's response (a truncated body is never passed off
 * as complete); a client that goes away destroys the upstream request; a
 * body-less idempotent request that hits a keep-alive connection the origin
 * had just closed is retried once on a fresh connection.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { systemCode } from '../../util/errors.js';
import { DialerAgent } from './dialer-agent.js';
import type { ProxyFailure } from './error-reply.js';
import { upstreamFailure } from './error-reply.js';
import { forwardRequestHeaders, forwardResponseHeaders } from './hop-by-hop.js';
import type { AbsoluteTarget } from './http-target.js';
import { formatAuthority, parseAbsoluteTarget } from './http-target.js';
import { PROXY_AUTHENTICATE } from './proxy-auth.js';
import type { HttpProxyContext } from './proxy-context.js';
import { clientLabel } from './proxy-context.js';

/** Methods that may be sent twice (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** One DialerAgent per client connection, dropped with it. */
const agents = new WeakMap<Socket, DialerAgent>();

/** Handles one request on the proxy's HTTP server ('request' or 'checkContinue'). */
export function handleRequest(
  ctx: HttpProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  expectsContinue: boolean,
): void {
  const client = clientLabel(req.socket);
  const url = req.url ?? '';
  if (url.startsWith('/') || url === '*') {
    // Somebody opened the proxy's address as a web site, or a client without proxy support.
    sendFailure(res, {
      status: 400,
      message:
        'linkmux: this is an HTTP proxy, not a web server: configure it as your HTTP proxy ' +
        '(for example curl -x http://HOST:PORT URL, or http_proxy=http://HOST:PORT)',
    });
    return;
  }
  if (!ctx.authorize(req.headers['proxy-authorization'], req.socket.remoteAddress)) {
    ctx.logger.debug(`http: ${client} ${req.method} refused: proxy authentication required`);
    sendFailure(
      res,
      { status: 407, message: 'linkmux: proxy authentication required' },
      {
        'Proxy-Authenticate': PROXY_AUTHENTICATE,
      },
    );
    return;
  }
  const target = parseAbsoluteTarget(url);
  if (target === undefined) {
    const message = /^https:/i.test(url)
      ? 'linkmux: https:// URLs go through CONNECT: send CONNECT host:443 instead'
      : 'linkmux: the request target is not a valid http:// URL';
    sendFailure(res, { status: 400, message });
    return;
  }
  // Only now is the body worth sending: rejections above never asked for it.
  if (expectsContinue) res.writeContinue();
  forward(ctx, req, res, target, agentFor(ctx, req.socket, client));
}

function agentFor(ctx: HttpProxyContext, socket: Socket, client: string): DialerAgent {
  let agent = agents.get(socket);
  if (agent === undefined) {
    const created = new DialerAgent(ctx.dialer, client, ctx.logger, socket.remoteAddress);
    agents.set(socket, created);
    socket.once('close', () => {
      created.destroy();
      agents.delete(socket);
    });
    agent = created;
  }
  return agent;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function forward(
  ctx: HttpProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  target: AbsoluteTarget,
  agent: DialerAgent,
): void {
  const authority = formatAuthority(target.dst);
  const label = `${clientLabel(req.socket)} ${req.method} ${authority}`;
  const method = req.method ?? 'GET';
  const withBody = hasBody(req);
  const retryable = !withBody && IDEMPOTENT.has(method);
  let current: http.ClientRequest | undefined;

  // The client left (or its connection broke) before the response was done.
  res.once('close', () => {
    if (!res.writableFinished) current?.destroy();
  });

  const send = (attempt: number): void => {
    let upstream: http.ClientRequest;
    try {
      upstream = http.request({
        agent,
        host: target.dst.host,
        port: target.dst.port,
        method,
        path: target.path,
        // The array form is sent as given: Node adds no Host and keeps repeated headers.
        headers: forwardRequestHeaders(req.rawHeaders, target.hostHeader, req.httpVersion),
        setHost: false,
      });
    } catch (err) {
      // Node refuses some methods or header bytes its parser let through.
      sendFailure(res, {
        status: 400,
        message: `linkmux: the request cannot be forwarded (${describeCode(err)})`,
      });
      return;
    }
    current = upstream;
    if (ctx.idleTimeoutMs > 0) {
      upstream.setTimeout(ctx.idleTimeoutMs, () => {
        upstream.destroy(Object.assign(new Error('upstream idle timeout'), { code: 'ETIMEDOUT' }));
      });
    }
    upstream.on('response', (upRes) => relayResponse(ctx, label, upRes, res));
    upstream.on('error', (err) => {
      if (res.destroyed) return;
      const stale = upstream.reusedSocket && systemCode(err) === 'ECONNRESET';
      if (stale && retryable && attempt === 0 && !res.headersSent) {
        // The origin closed the kept-alive connection as we reused it: nothing reached it.
        ctx.logger.debug(`http: ${label}: kept-alive connection was closed, retrying once`);
        send(1);
        return;
      }
      const failure = upstreamFailure(err, authority);
      ctx.logger.debug(`http: ${label} failed: ${failure.message}`);
      if (res.headersSent) res.destroy();
      else sendFailure(res, failure);
    });
    if (withBody) req.pipe(upstream);
    else upstream.end();
  };
  send(0);
}

function relayResponse(
  ctx: HttpProxyContext,
  label: string,
  upRes: IncomingMessage,
  res: ServerResponse,
): void {
  if (res.destroyed) {
    upRes.destroy();
    return;
  }
  try {
    res.writeHead(
      upRes.statusCode ?? 502,
      upRes.statusMessage ?? '',
      forwardResponseHeaders(upRes.rawHeaders, upRes.httpVersion),
    );
  } catch (err) {
    // A header Node's parser accepted but its writer refuses (bad bytes): not passable.
    upRes.destroy();
    sendFailure(res, {
      status: 502,
      message: `linkmux: the origin's response cannot be forwarded (${describeCode(err)})`,
    });
    return;
  }
  pipeline(upRes, res, (err) => {
    // pipeline destroyed both ends already: the client sees a cut response, not a short one.
    if (err) ctx.logger.debug(`http: ${label} response cut: ${describeCode(err)}`);
  });
}

/** Answers with a short text body; without headers sent there is still a response to give. */
function sendFailure(res: ServerResponse, failure: ProxyFailure, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${failure.message}\n`;
  res.writeHead(failure.status, {
    ...extra,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function describeCode(err: unknown): string {
  return systemCode(err) ?? (err instanceof Error ? err.message : String(err));
}
