/**
 * `/jsonrpc` over HTTP POST and WebSocket, as aria2 serves it, mountable on any
 * node:http server (the RPC's own listener and the control server alike).
 *
 *   POST /jsonrpc  {"jsonrpc":"2.0","id":…,"method":"aria2.addUri","params":["token:S",[…]]}
 *   WS   /jsonrpc  the same messages both ways, plus aria2.onDownload* notifications
 *
 * CORS as aria2 with --rpc-allow-origin-all: `Access-Control-Allow-Origin: *`
 * and a preflight answer, so AriaNg or an extension on another origin works —
 * but only when a secret is set. Without one, a request from a browser page of
 * another origin is refused (403): otherwise any web site could make this
 * machine download files. On loopback a Host header that is a DNS name other
 * than localhost is refused (DNS rebinding), as on the control API.
 * Bodies are capped at 2 MiB (aria2's rpc-max-request-size).
 */
import type { ControlRoute } from '../control/control-route.js';
import { hostAllowed } from '../control/control-server.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../util/logger.js';
import { describe } from '../util/errors.js';
import { notification, type Dispatcher } from './json-rpc.js';

export const MAX_REQUEST_BYTES = 2 * 1024 * 1024;

export interface RpcEndpointOptions {
  dispatcher: Dispatcher;
  /** Set: cross-origin browsers are allowed (the secret guards every aria2.* call). */
  hasSecret: boolean;
  /** Refuse Host headers that are DNS names other than localhost (loopback listeners). */
  checkHost: boolean;
  logger: Logger;
}

export interface RpcEndpoint {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Sends an aria2.onDownload* notification to every WebSocket client. */
  notify(method: string, gid: string): void;
  close(): void;
}

export function createRpcEndpoint(opts: RpcEndpointOptions): RpcEndpoint {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_REQUEST_BYTES });
  const clients = new Set<WebSocket>();

  const refusal = (req: IncomingMessage): string | undefined => {
    if (opts.checkHost && !hostAllowed(req.headers.host)) {
      return 'forbidden: the Host header must be an IP address or localhost';
    }
    if (!opts.hasSecret && crossOrigin(req)) {
      return 'forbidden: requests from another origin need rpc.secret to be set (give the same secret to the client)';
    }
    return undefined;
  };

  wss.on('connection', (ws: WebSocket) => {
    clients.add(ws);
    ws.on('close', () => clients.delete(ws));
    ws.on('error', () => ws.terminate());
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.concat(data as Buffer[]).toString('utf8');
      void opts.dispatcher.dispatchText(text).then(
        ({ body }) => {
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(body));
        },
        (err: unknown) => opts.logger.warn(`rpc: websocket call failed: ${describe(err)}`),
      );
    });
  });

  return {
    request(req, res) {
      const cors = opts.hasSecret && req.headers.origin !== undefined;
      const headers: Record<string, string> = {
        'cache-control': 'no-cache',
        ...(cors ? { 'access-control-allow-origin': '*' } : {}),
      };
      const why = refusal(req);
      if (why) return end(res, 403, { ...headers, 'content-type': 'text/plain; charset=utf-8' }, `${why}\n`);
      if (req.method === 'OPTIONS') {
        if (cors) {
          headers['access-control-allow-methods'] = 'POST, GET, OPTIONS';
          headers['access-control-max-age'] = '1728000';
          const asked = req.headers['access-control-request-headers'];
          if (asked) headers['access-control-allow-headers'] = String(asked);
        }
        return end(res, 200, headers, '');
      }
      if (req.method !== 'POST') {
        return end(
          res,
          405,
          { ...headers, allow: 'POST, OPTIONS', 'content-type': 'text/plain; charset=utf-8' },
          'use POST (JSON-RPC 2.0) or a WebSocket\n',
        );
      }
      readBody(req, MAX_REQUEST_BYTES).then(
        async (text) => {
          if (text === undefined) {
            return end(res, 413, { ...headers, connection: 'close' }, '');
          }
          const { body, status } = await opts.dispatcher.dispatchText(text);
          end(res, status, { ...headers, 'content-type': 'application/json-rpc' }, JSON.stringify(body));
        },
        (err: unknown) => {
          opts.logger.debug(`rpc: request failed: ${describe(err)}`);
          res.destroy();
        },
      );
    },
    upgrade(req, socket, head) {
      const why = refusal(req);
      if (why) {
        socket.end(`HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-type: text/plain\r\n\r\n${why}\n`);
        return;
      }
      wss.handleUpgrade(req, socket as Socket, head, (ws) => wss.emit('connection', ws, req));
    },
    notify(method, gid) {
      const frame = notification(method, gid);
      for (const ws of clients) if (ws.readyState === ws.OPEN) ws.send(frame);
    },
    close() {
      for (const ws of clients) ws.terminate();
      clients.clear();
      wss.close();
    },
  };
}

function end(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The body as text, or undefined past `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A browser page of another origin than the one it talks to (tools send no Origin). */
function crossOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== (req.headers.host ?? '');
  } catch {
    return true;
  }
}

/**
 * The endpoint as a route of the control server (`/jsonrpc` beside the
 * dashboard, same origin). The endpoint answers its own methods (POST, the
 * CORS preflight, and aria2's refusal of anything else); the RPC service owns
 * its lifetime, so the route has no close().
 */
export function jsonRpcRoute(endpoint: RpcEndpoint): ControlRoute {
  return {
    matches: (path) => path === '/jsonrpc',
    methods: ['GET', 'POST', 'OPTIONS'],
    handle: (req, res) => endpoint.request(req, res),
    upgrade: (req, socket, head) => endpoint.upgrade(req, socket, head),
  };
}
