/**
 * The `linkmux up` daemon in-process over three loopback links (LocalLinks bound to
 * 127.0.0.2, .3, .4) for test/integration/daemon*.test.ts: a local origin (/big, /tiny),
 * an echo server and a health probe target, all on 127.0.0.1, closed after the file's tests.
 */
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Daemon } from '../../src/daemon/daemon.js';
import type { DaemonOptions } from '../../src/daemon/daemon.js';
import { runtimeDefaults, type RuntimeConfig } from '../../src/config/runtime.js';
import { loopbackListen } from '../helpers/runtime-config.js';
import type { DaemonStatus } from '../../src/control/status-types.js';
import { createLogger } from '../../src/util/logger.js';
import type { LocalLink } from '../../src/links/local-link.js';
import { loopbackLinks, sha256 } from '../helpers/loopback.js';
import { curlBytes } from '../helpers/proxy-clients.js';

export const MiB = 1024 * 1024;
export const LINK_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
export const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// --- local servers ----------------------------------------------------------------

export async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

export function tracked(server: net.Server): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return sockets;
}

/** The origin: /big is 2 MiB of random bytes, /tiny a few; remembers who connected. */
export const BIG = randomBytes(2 * MiB);
export const BIG_SHA = sha256(BIG);
export const peers: string[] = [];
export const origin = http.createServer((req, res) => {
  if (req.url === '/big') {
    res.writeHead(200, { 'Content-Length': BIG.length });
    res.end(BIG);
  } else if (req.url === '/tiny') {
    res.end('tiny');
  } else {
    res.statusCode = 404;
    res.end('no such route');
  }
});
origin.on('connection', (s: net.Socket) => peers.push(s.remoteAddress ?? '?'));
tracked(origin);
export const originPort = await listen(origin);

/** An echo server: what a tunnel sends comes back; the tunnel stays open until a side closes it. */
export const echo = net.createServer((s) => {
  s.on('error', () => {});
  s.pipe(s);
});
export const echoSockets = tracked(echo);
export const echoPort = await listen(echo);

/** Health probe target: accepts and closes. */
export const probe = net.createServer((s) => s.destroy());
tracked(probe);
export const probePort = await listen(probe);

// --- the daemon -------------------------------------------------------------------

export interface Running {
  daemon: Daemon;
  links: LocalLink[];
  socks: number;
  http: number;
  control: number;
  log: string[];
  stop: (drainMs?: number) => Promise<void>;
}

/** The daemon's options: `over.config` is laid over this file's runtime config, the rest over the options. */
export interface Over extends Partial<Omit<DaemonOptions, 'config'>> {
  config?: Partial<RuntimeConfig>;
}

export function options(links: LocalLink[], log: string[], over: Over = {}): DaemonOptions {
  const { config, ...rest } = over;
  return {
    links,
    config: runtimeDefaults({
      listen: loopbackListen(),
      connectTimeoutMs: 2_000,
      failover: { attempts: 3, staggerMs: 300 },
      health: {
        intervalMs: 200,
        timeoutMs: 300,
        failThreshold: 2,
        riseThreshold: 2,
        slowRttMs: 300,
        targets: [{ kind: 'tcp', host: '127.0.0.1', port: probePort }],
      },
      privateDirect: false,
      ...config,
    }),
    logger: createLogger('debug', (line) => void log.push(line)),
    ...rest,
  };
}

export const portOf = (addr: string | undefined) => Number(/:(\d+)$/.exec(addr ?? '')?.[1]);

export async function startDaemon(over: Over = {}): Promise<Running> {
  const links = loopbackLinks(3);
  const log: string[] = [];
  const daemon = new Daemon(options(links, log, over));
  await daemon.start();
  let stopped: Promise<void> | undefined;
  const stop = (drainMs = 0) => (stopped ??= daemon.stop(drainMs));
  cleanups.push(() => stop());
  const a = daemon.addresses;
  return {
    daemon,
    links,
    socks: portOf(a.socks),
    http: portOf(a.http),
    control: portOf(a.control),
    log,
    stop,
  };
}

export async function status(controlPort: number): Promise<DaemonStatus> {
  const res = await fetch(`http://127.0.0.1:${controlPort}/status`);
  assert.equal(res.status, 200);
  return (await res.json()) as DaemonStatus;
}

/** One tiny request through SOCKS5 (curl, name resolved by the daemon). */
export async function tinyViaSocks(socks: number): Promise<void> {
  const r = await curlBytes([
    '--socks5-hostname',
    `127.0.0.1:${socks}`,
    `http://localhost:${originPort}/tiny`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.body.toString(), 'tiny');
}

export const FAIL = (rep: string) => `05${rep}0001000000000000`;
