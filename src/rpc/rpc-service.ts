/**
 * The aria2 JSON-RPC service of `linkmux up`: the download manager, the method
 * table, the `/jsonrpc` endpoint, and its own HTTP listener (aria2's port 6800
 * by default). The daemon also mounts `endpoint` on the control server, so the
 * dashboard drives downloads from its own origin.
 *
 * Lifecycle: start() loads the session and listens (or throws naming the
 * address, with nothing left behind); close() stops listening, closes the
 * WebSockets, stops the running downloads (kept for the next start) and saves.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Link } from '../links/link.js';
import type { DownloadOptions } from '../download/downloader.js';
import type { DownloadSummary } from '../download/progress.js';
import { formatControlAddress, parseControlAddress } from '../control/control-address.js';
import { isLoopbackHost } from '../net/address.js';
import { LinkmuxError, systemCode } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { createDispatcher } from './json-rpc.js';
import { DownloadManager } from './download-manager.js';
import { aria2Methods } from './methods.js';
import { createRpcEndpoint, type RpcEndpoint } from './rpc-endpoint.js';
import { SessionStore } from './session-store.js';

export interface RpcServiceOptions {
  /** HOST:PORT of the RPC's own listener; undefined = only on the control server. */
  listen: string | undefined;
  /** `token:SECRET` required on every aria2.* call when set. Never logged. */
  secret: string | undefined;
  /** Where rpc-session.json lives. */
  stateDir: string;
  /** Default download directory. */
  dir: string;
  maxConcurrentDownloads: number;
  connectionsPerLink: number;
  /** Bytes/s over every download, 0 = no limit. */
  maxOverallDownloadLimit?: number;
  maxResults?: number;
  links: () => Link[];
  logger: Logger;
  connectTimeoutMs?: number;
  /** The engine (tests inject a fake). */
  run?: (opts: DownloadOptions) => Promise<DownloadSummary>;
}

export interface RpcService {
  readonly manager: DownloadManager;
  /** For the control server's `/jsonrpc` route. */
  readonly endpoint: RpcEndpoint;
  /** Where the own listener listens (the real port when 0 was asked). */
  readonly address: string | undefined;
  close(): Promise<void>;
}

export async function startRpcService(opts: RpcServiceOptions): Promise<RpcService> {
  if (opts.listen !== undefined) {
    const a = parseControlAddress(opts.listen, 'rpc.listen');
    if (a.kind === 'tcp' && !isLoopbackHost(a.host) && !opts.secret) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `rpc.listen is ${opts.listen}, beyond loopback, without rpc.secret: anyone who reaches it could ` +
          'make this machine download files. Set rpc.secret, or listen on 127.0.0.1',
      );
    }
  }
  const manager = new DownloadManager({
    links: opts.links,
    global: {
      dir: opts.dir,
      maxConcurrentDownloads: opts.maxConcurrentDownloads,
      maxOverallDownloadLimit: opts.maxOverallDownloadLimit ?? 0,
      connectionsPerLink: opts.connectionsPerLink,
    },
    store: new SessionStore(opts.stateDir, opts.logger),
    logger: opts.logger,
    ...(opts.run ? { run: opts.run } : {}),
    ...(opts.maxResults !== undefined ? { maxResults: opts.maxResults } : {}),
    ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
  });
  const dispatcher = createDispatcher(aria2Methods(manager), opts.secret);
  const listenAddr = opts.listen !== undefined ? parseControlAddress(opts.listen, 'rpc.listen') : undefined;
  const loopback = listenAddr?.kind === 'tcp' && isLoopbackHost(listenAddr.host);
  const endpoint = createRpcEndpoint({
    dispatcher,
    hasSecret: opts.secret !== undefined,
    checkHost: loopback,
    logger: opts.logger,
  });
  manager.on('notification', (method, gid) => endpoint.notify(method, gid));
  await manager.start();

  let server: Server | undefined;
  let address: string | undefined;
  if (listenAddr && listenAddr.kind === 'tcp') {
    const srv = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/jsonrpc') return endpoint.request(req, res);
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found: the aria2 JSON-RPC is at /jsonrpc\n');
    });
    srv.on('upgrade', (req, socket, head) => {
      if ((req.url ?? '/').split('?')[0] === '/jsonrpc') endpoint.upgrade(req, socket, head);
      else socket.destroy();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ host: listenAddr.host, port: listenAddr.port }, () => {
          srv.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      endpoint.close();
      await manager.stop();
      const code = systemCode(err);
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `cannot listen for the aria2 JSON-RPC on ${opts.listen}: ` +
          (code === 'EADDRINUSE'
            ? 'the address is in use (aria2c itself, or another linkmux?): stop it or choose another port'
            : String(err)),
        { cause: err },
      );
    }
    server = srv;
    const info = srv.address() as AddressInfo;
    address = formatControlAddress({ kind: 'tcp', host: info.address, port: info.port });
  }

  let closing: Promise<void> | undefined;
  return {
    manager,
    endpoint,
    address,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((r) => (server ? server.close(() => r()) : r()));
        server?.closeAllConnections();
        endpoint.close();
        await closed;
        await manager.stop();
      })();
      return closing;
    },
  };
}
