/**
 * The live dashboard on the control address: GET / (the page), /assets/… (its
 * modules, styles and the vendored preact, htm and uPlot) and /events (the status
 * stream). The page drives downloads itself through the aria2 JSON-RPC methods
 * at /jsonrpc, exactly as AriaNg would; this side serves files and status only.
 *
 * Every response forbids what the page does not need: Content-Security-Policy
 * `default-src 'self'` (no inline script, no other origin), no framing (the
 * pause and remove buttons cannot be clickjacked), no referrer. The one
 * widening: `/?rpc=URL` may name an aria2 endpoint on another loopback origin
 * (a separate aria2c, or linkmux's own `rpc.listen`), which is then the only
 * other origin the page may connect to. The control server's Host check and
 * loopback-only listening apply before any of this runs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ControlRoute } from '../control/control-route.js';
import { isLoopbackHost } from '../net/address.js';
import type { DaemonStatus } from '../control/status-types.js';
import type { Logger } from '../util/logger.js';
import { AssetStore } from './assets.js';
import { StatusStream } from './status-stream.js';

export interface DashboardOptions {
  status: () => DaemonStatus;
  logger: Logger;
  /** Concurrent /events streams. Default 8. */
  maxClients?: number;
  /** Status frame interval, ms. Default 1000. */
  intervalMs?: number;
  /** Web folder (tests); default the shipped one. */
  webDir?: string;
}

export interface Dashboard extends ControlRoute {
  readonly stream: StatusStream;
}

const BASE_CSP =
  "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

export function createDashboard(opts: DashboardOptions): Dashboard {
  const assets = new AssetStore(opts.webDir);
  const stream = new StatusStream(opts);
  return {
    stream,
    methods: ['GET', 'HEAD'],
    matches: (p) => p === '/' || p === '/index.html' || p === '/events' || p.startsWith('/assets/'),
    async handle(req, res, p) {
      if (p === '/events') {
        res.setHeader('content-security-policy', BASE_CSP);
        stream.accept(req, res);
        return;
      }
      await serveAsset(assets, req, res, p);
    },
    close: () => stream.close(),
  };
}

async function serveAsset(assets: AssetStore, req: IncomingMessage, res: ServerResponse, p: string) {
  const asset = await assets.get(p);
  const headers: Record<string, string | number> = {
    'content-security-policy': p === '/' || p === '/index.html' ? pageCsp(req.url ?? '/') : BASE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  if (asset === undefined) {
    const body = `not found: ${p}\n`;
    res.writeHead(404, {
      ...headers,
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
    });
    res.end(body);
    return;
  }
  headers.etag = asset.etag;
  headers['cache-control'] = 'no-cache';
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-type': asset.type, 'content-length': asset.body.length });
  res.end(asset.body);
}

/** The page's CSP: the base one, plus the origin of `?rpc=` when it is an http(s) URL on loopback. */
export function pageCsp(url: string): string {
  const origin = rpcOrigin(url);
  return origin === undefined ? BASE_CSP : `${BASE_CSP}; connect-src 'self' ${origin}`;
}

/** The loopback origin named by `?rpc=`, or undefined (absent, malformed or not loopback). */
export function rpcOrigin(url: string): string | undefined {
  const rpc = new URL(url, 'http://localhost').searchParams.get('rpc');
  if (rpc === null) return undefined;
  let target: URL;
  try {
    target = new URL(rpc);
  } catch {
    return undefined;
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') return undefined;
  return isLoopbackHost(target.hostname) ? target.origin : undefined;
}
