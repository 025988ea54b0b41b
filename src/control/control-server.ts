/**
 * The daemon's local control API: a tiny HTTP server on loopback or a unix socket.
 *
 *   GET /status   → DaemonStatus as JSON (what `linkmux status` reads)
 *   GET /metrics  → Prometheus text (see metrics.ts)
 *   GET /healthz  → 200 "ok" (liveness for systemd/containers)
 *   GET /, /events, /assets/… → the live dashboard (src/dashboard), unless `dashboard: false`
 *   routes mounted by the caller (`routes`, see control-route.ts), behind the same guards
 *   other paths → 404; other methods → 405 (HEAD is served like GET)
 *
 * Guarantees:
 * - It never listens beyond this machine unless asked: the API has no
 *   authentication and reveals the uplinks and their addresses, so a non-loopback
 *   TCP address is refused (LINKMUX_ERR_USAGE) without `allowRemote: true`. On
 *   loopback, requests whose Host header is a DNS name other than localhost get
 *   403, which defeats DNS rebinding (a web page aliasing its own name to 127.0.0.1).
 * - A unix socket is created with mode 0600 (the umask is tightened around the
 *   bind, so there is no window with a wider mode) and removed on close. A
 *   socket file left by a crashed daemon is removed at start; one that still
 *   answers belongs to a live daemon and is left alone (an "in use" error).
 * - Listen failures (address in use, not available, permission) become one
 *   LinkmuxError naming the address and what to do.
 * - close() stops listening and destroys open connections (keep-alive included),
 *   so it resolves promptly and leaves no handle behind. It is idempotent.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect, isIP } from 'node:net';
import type { AddressInfo } from 'node:net';
import { chmod, lstat, unlink } from 'node:fs/promises';
import { LinkmuxError, describe, systemCode } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { isLoopbackHost } from '../net/address.js';
import { formatControlAddress, parseControlAddress } from './control-address.js';
import type { ControlAddress } from './control-address.js';
import { createMetricsRegistry, type MetricsSource } from './metrics.js';
import type { ControlRoute } from './control-route.js';
import { createDashboard } from '../dashboard/dashboard.js';
import type { DaemonStatus } from './status-types.js';

export interface ControlServerOptions {
  /** "127.0.0.1:9190", "[::1]:9190", "localhost:9190" or a unix socket path starting with "/". Port 0 picks a free port. */
  listen: string | ControlAddress;
  /** Called on every GET /status and once per GET /metrics; must be cheap and must not throw. */
  status: () => DaemonStatus;
  logger: Logger;
  /** Serve on a non-loopback TCP address although the API has no authentication. Default false. */
  allowRemote?: boolean;
  /** More routes (e.g. the aria2 JSON-RPC); the built-in paths win over them. */
  routes?: ControlRoute[];
  /** Serve the dashboard at GET /. Default true. */
  dashboard?: boolean;
}

export interface ControlServer {
  /** Where it listens: "127.0.0.1:41234" (the real port when 0 was asked), "[::1]:9190" or the socket path. */
  readonly address: string;
  /** Stops listening, destroys open connections and removes the unix socket file. Idempotent. */
  close(): Promise<void>;
}

/** How long a stale-socket check waits for an answer before assuming a live but busy daemon. */
const PROBE_TIMEOUT_MS = 1000;

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const addr = typeof opts.listen === 'string' ? parseControlAddress(opts.listen) : opts.listen;
  const shown = formatControlAddress(addr);
  const allowRemote = opts.allowRemote ?? false;
  if (addr.kind === 'tcp' && !allowRemote && !isLoopbackHost(addr.host)) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `refusing to serve the control API on ${shown}: it is not a loopback address, and the API has no ` +
        'authentication, so anyone who can reach it could read your links, their addresses and traffic. ' +
        'Use 127.0.0.1:PORT or a unix socket path, or allow remote access explicitly (allowRemote) if you mean it',
    );
  }
  if (addr.kind === 'unix') await removeStaleSocket(addr.path);

  const registry = createMetricsRegistry(opts.status);
  // DNS rebinding only matters where a browser can reach us: loopback TCP.
  const checkHost = addr.kind === 'tcp' && !allowRemote;
  const routes = [...(opts.routes ?? [])];
  if (opts.dashboard ?? true) routes.push(createDashboard({ status: opts.status, logger: opts.logger }));
  const server = createServer((req, res) => {
    handle(req, res, { status: opts.status, registry, logger: opts.logger, checkHost, routes }).catch(
      (err) => {
        opts.logger.warn(`control API: ${req.method} ${req.url} failed: ${describe(err)}`);
        if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
        else res.destroy();
      },
    );
  });

  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = routes.find((r) => r.upgrade !== undefined && r.matches(path));
    if (route?.upgrade && (!checkHost || hostAllowed(req.headers.host))) route.upgrade(req, socket, head);
    // Another room may serve this upgrade; only the sole listener closes an unclaimed socket.
    else if (route || server.listenerCount('upgrade') === 1) socket.destroy();
  });
  try {
    await listen(server, addr);
  } catch (err) {
    server.close();
    throw listenError(err, addr, shown);
  }
  // Belt and braces: the umask already made it 0600, unless this runs in a worker
  // thread, where process.umask() cannot change the mask.
  if (addr.kind === 'unix') await chmod(addr.path, 0o600);
  server.on('error', (err) => opts.logger.warn(`control API on ${shown}: ${describe(err)}`));

  const address = addr.kind === 'unix' ? addr.path : tcpAddress(server.address() as AddressInfo);
  // debug: the daemon's own start-up line already names every address it serves.
  opts.logger.debug(`control API listening on ${address} (GET /status, /metrics, /healthz)`);

  let closing: Promise<void> | undefined;
  return {
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const route of routes) route.close?.();
        // libuv unlinks a unix socket file when its listening handle closes.
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function tcpAddress(info: AddressInfo): string {
  return formatControlAddress({ kind: 'tcp', host: info.address, port: info.port });
}

interface HandlerContext {
  status: () => DaemonStatus;
  registry: MetricsSource;
  logger: Logger;
  checkHost: boolean;
  routes: ControlRoute[];
}

const ROUTES = new Set(['/status', '/metrics', '/healthz']);

async function handle(req: IncomingMessage, res: ServerResponse, ctx: HandlerContext): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const route = ROUTES.has(path) ? undefined : ctx.routes.find((r) => r.matches(path));
  if (route !== undefined) {
    await handleRoute(route, req, res, path, ctx);
    return;
  }
  if (!ROUTES.has(path)) {
    send(
      res,
      404,
      'text/plain; charset=utf-8',
      'not found: the control API serves GET /status, /metrics, /healthz\n',
    );
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, 'text/plain; charset=utf-8', `method ${req.method} not allowed: use GET\n`);
    return;
  }
  if (refusedHost(req, res, ctx.checkHost)) return;
  if (path === '/healthz') {
    send(res, 200, 'text/plain; charset=utf-8', 'ok');
  } else if (path === '/status') {
    send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(ctx.status(), null, 2)}\n`);
  } else {
    const text = await ctx.registry.metrics();
    send(res, 200, ctx.registry.contentType, text);
  }
}

async function handleRoute(
  route: ControlRoute,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  ctx: HandlerContext,
): Promise<void> {
  if (!route.methods.includes(req.method ?? '')) {
    res.setHeader('allow', route.methods.join(', '));
    send(
      res,
      405,
      'text/plain; charset=utf-8',
      `method ${req.method} not allowed: use ${route.methods.join(', ')}\n`,
    );
    return;
  }
  if (refusedHost(req, res, ctx.checkHost)) return;
  await route.handle(req, res, path);
}

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

/**
 * An IP literal or localhost: what a local client sends. A web page that made
 * its own DNS name resolve to 127.0.0.1 sends that name, and is refused. No Host
 * header at all (HTTP/1.0 tools) is not a browser, so it passes.
 */
export function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return true;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(host);
  const name = m?.[1] ?? m?.[2];
  if (name === undefined) return false;
  return name.toLowerCase() === 'localhost' || isIP(name) !== 0;
}

/** Answers 403 to a Host header a local client would not send (DNS rebinding); true when it did. */
function refusedHost(req: IncomingMessage, res: ServerResponse, checkHost: boolean): boolean {
  if (!checkHost || hostAllowed(req.headers.host)) return false;
  send(
    res,
    403,
    'text/plain; charset=utf-8',
    'forbidden: the Host header must be an IP address or localhost\n',
  );
  return true;
}

/** Starts listening; resolves on 'listening', rejects with the raw system error. */
function listen(server: Server, addr: ControlAddress): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    if (addr.kind === 'tcp') {
      server.listen({ host: addr.host, port: addr.port });
      return;
    }
    // The socket file is created by the synchronous bind() inside listen(), so a
    // tightened umask around this call yields mode 0600 from the first instant.
    let previous: number | undefined;
    try {
      previous = process.umask(0o177);
    } catch {
      // Worker threads cannot change the umask; the chmod after listening covers it.
    }
    try {
      server.listen({ path: addr.path });
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
  });
}

/**
 * Removes a socket file left by a daemon that died without closing it, so a
 * restart does not fail with EADDRINUSE. A file that is not a socket, or a
 * socket that still accepts connections, is left alone: deleting either would
 * destroy something that is not ours to remove.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if (systemCode(err) === 'ENOENT') return;
    throw listenError(err, { kind: 'unix', path }, path);
  }
  if (!isSocket) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `cannot serve the control API on ${path}: the file exists and is not a socket; ` +
        'remove it or choose another socket path',
    );
  }
  const answer = await probeSocket(path);
  if (answer === 'live') {
    throw listenError(
      Object.assign(new Error('in use'), { code: 'EADDRINUSE' }),
      { kind: 'unix', path },
      path,
    );
  }
  if (answer === 'stale') {
    await unlink(path).catch((err: unknown) => {
      if (systemCode(err) !== 'ENOENT') throw listenError(err, { kind: 'unix', path }, path);
    });
  }
}

function probeSocket(path: string): Promise<'live' | 'stale' | 'gone'> {
  return new Promise((resolve, reject) => {
    const sock = connect({ path });
    const done = (result: 'live' | 'stale' | 'gone' | Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (result instanceof Error) reject(listenError(result, { kind: 'unix', path }, path));
      else resolve(result);
    };
    // Busy but alive is still alive: never delete a socket that might be in use.
    const timer = setTimeout(() => done('live'), PROBE_TIMEOUT_MS);
    sock.once('connect', () => done('live'));
    sock.once('error', (err) => {
      const code = systemCode(err);
      if (code === 'ECONNREFUSED') done('stale');
      else if (code === 'ENOENT') done('gone');
      else done(err);
    });
  });
}

/** A listen-time system error → a LinkmuxError that names the address and the way out. */
function listenError(err: unknown, addr: ControlAddress, shown: string): LinkmuxError {
  if (err instanceof LinkmuxError) return err;
  const code = systemCode(err);
  const where = `cannot serve the control API on ${shown}`;
  const other = addr.kind === 'unix' ? 'socket path' : 'address';
  switch (code) {
    case 'EADDRINUSE':
      return new LinkmuxError(
        'LINKMUX_ERR_ADDRESS_IN_USE',
        `${where}: the ${other} is already in use, probably by another linkmux daemon ` +
          `(\`linkmux status --control ${shown}\` tells). Stop that daemon, or choose another control ${other}`,
        { cause: err },
      );
    case 'EADDRNOTAVAIL':
      return new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `${where}: no interface of this machine has that address; use 127.0.0.1:PORT`,
        { cause: err },
      );
    case 'EACCES':
    case 'EPERM':
      return new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        addr.kind === 'unix'
          ? `${where}: permission denied; choose a socket path in a directory you can write (or run as its owner)`
          : `${where}: permission denied (ports below 1024 need root); choose a port from 1024 up`,
        { cause: err },
      );
    case 'ENOENT':
    case 'ENOTDIR':
      return new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `${where}: the directory does not exist; create it or choose another socket path`,
        { cause: err },
      );
    default:
      return new LinkmuxError('LINKMUX_ERR_IO', `${where}: ${describe(err)}`, { cause: err });
  }
}
