/**
 * Loopback fixtures for the HTTP proxy tests: a FAKE Dialer (net.connect to the
 * requested address, counting its open sockets, honouring abort) standing in for
 * the link pool, a small origin HTTP server with a few routes, and clients that
 * talk to the proxy (Node http with an absolute-form target, raw sockets,
 * CONNECT tunnels, curl with proxy variables cleared).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Destination } from '../../src/links/link.js';
import type { DialContext, Dialed, Dialer } from '../../src/proxy/dialer.js';
import { createHttpProxyServer } from '../../src/proxy/http/http-proxy-server.js';
import type { HttpProxyOptions } from '../../src/proxy/http/http-proxy-server.js';
import { LinkmuxError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';

export interface FakeDialer extends Dialer {
  /** Sockets it opened that are not closed yet. */
  open: Set<net.Socket>;
  dials: number;
  contexts: DialContext[];
}

/**
 * A Dialer that connects straight to dst with net.connect, the way a LocalLink
 * would without the binding. Ports in `timeoutPorts` fail like a link whose
 * connect timed out. It honours the abort signal like the real one must.
 */
export function fakeDialer(timeoutPorts: ReadonlySet<number> = new Set()): FakeDialer {
  const fake: FakeDialer = {
    open: new Set(),
    dials: 0,
    contexts: [],
    dial(dst: Destination, ctx?: DialContext): Promise<Dialed> {
      fake.dials++;
      if (ctx) fake.contexts.push(ctx);
      return new Promise((resolve, reject) => {
        const signal = ctx?.signal;
        if (signal?.aborted) return reject(new LinkmuxError('LINKMUX_ERR_ABORTED', 'dial aborted'));
        if (timeoutPorts.has(dst.port)) {
          return reject(
            new LinkmuxError('LINKMUX_ERR_TIMEOUT', `connect to ${dst.host}:${dst.port} timed out`),
          );
        }
        const socket = net.connect({ host: dst.host, port: dst.port });
        fake.open.add(socket);
        socket.once('close', () => fake.open.delete(socket));
        const onAbort = () => {
          socket.destroy();
          reject(new LinkmuxError('LINKMUX_ERR_ABORTED', 'dial aborted'));
        };
        const onError = (err: Error) => {
          signal?.removeEventListener('abort', onAbort);
          socket.destroy();
          reject(
            new LinkmuxError('LINKMUX_ERR_CONNECT', `cannot connect to ${dst.host}:${dst.port}`, {
              cause: err,
            }),
          );
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        socket.once('error', onError);
        socket.once('connect', () => {
          signal?.removeEventListener('abort', onAbort);
          socket.off('error', onError);
          resolve({ socket, link: 'fake0' });
        });
      });
    },
    openUdp: () => Promise.reject(new Error('UDP is not used by the HTTP proxy')),
  };
  return fake;
}

/** The origin: a small HTTP server with a few routes, remembering its connections. */
export async function originServer(host = '127.0.0.1') {
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    if (url.pathname === '/x') {
      res.end('hello from x');
    } else if (url.pathname === '/headers') {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ url: req.url, raw: req.rawHeaders, version: req.httpVersion }));
    } else if (url.pathname === '/sha') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      req.on('end', () => res.end(JSON.stringify({ sha: hash.digest('hex'), bytes })));
      req.on('error', () => {});
    } else if (url.pathname === '/big') {
      const n = Number(url.searchParams.get('n') ?? 65536);
      res.writeHead(200, { 'Content-Length': n });
      const chunk = Buffer.alloc(16384, 0x61);
      let left = n;
      const pump = () => {
        while (left > 0) {
          const part = chunk.subarray(0, Math.min(left, chunk.length));
          left -= part.length;
          if (!res.write(part)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (url.pathname === '/cookies') {
      res.writeHead(200, [
        'Set-Cookie', 'a=1',
        'Set-Cookie', 'b=2',
        'Connection', 'X-Hop',
        'X-Hop', 'secret',
        'Content-Length', '2',
      ]); // prettier-ignore
      res.end('ok');
    } else if (url.pathname === '/die') {
      // Announces 1000 bytes, sends 10, then drops the connection.
      res.writeHead(200, { 'Content-Length': 1000 });
      res.write(Buffer.alloc(10, 0x62), () => setTimeout(() => req.socket.destroy(), 20));
    } else {
      res.statusCode = 404;
      res.end('no such route');
    }
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, host);
  await once(server, 'listening');
  return { server, sockets, port: (server.address() as AddressInfo).port };
}

export async function startProxy(options: Partial<HttpProxyOptions> & { dialer: Dialer }) {
  const server = createHttpProxyServer({ logger: silentLogger, ...options });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** Stops the server and ends every connection it holds (tunnels included). */
export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
  });
}

export function connections(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** Polls `check` until it holds or `ms` passes (bounded: nothing hangs CI). */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  ms = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  raw: string[];
  body: Buffer;
  localPort: number;
}

/** One request through the proxy with Node's http client (absolute-form target). */
export function viaProxy(
  proxyPort: number,
  url: string,
  opts: {
    method?: string;
    headers?: http.OutgoingHttpHeaders;
    agent?: http.Agent | false;
    body?: Buffer;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: opts.method ?? 'GET',
      path: url,
      headers: { Host: new URL(url).host, ...opts.headers },
      agent: opts.agent ?? false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          raw: res.rawHeaders,
          body: Buffer.concat(chunks),
          localPort: req.socket?.localPort ?? 0,
        }),
      );
    });
    req.end(opts.body);
  });
}

/** Writes raw bytes to the proxy and collects everything until it closes the connection. */
export function rawExchange(port: number, bytes: string | Buffer, ms = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${ms} ms; got ${JSON.stringify(Buffer.concat(chunks).toString())}`));
    }, ms);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(bytes);
  });
}

/** Opens a CONNECT tunnel and returns the socket once the proxy said 200. */
export async function openTunnel(
  proxyPort: number,
  target: string,
  extra = '',
): Promise<{ socket: net.Socket; head: string }> {
  const socket = net.connect({ host: '127.0.0.1', port: proxyPort });
  await once(socket, 'connect');
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${extra}\r\n`);
  let buf = Buffer.alloc(0);
  while (!buf.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    buf = Buffer.concat([buf, chunk]);
  }
  const end = buf.indexOf('\r\n\r\n') + 4;
  if (buf.length > end) socket.unshift(buf.subarray(end));
  return { socket, head: buf.subarray(0, end).toString() };
}

/** A plain HTTP/1.1 GET over an open tunnel; resolves with the response text once the origin closes. */
export async function getOverSocket(socket: net.Socket, host: string, path: string): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  await once(socket, 'close');
  return Buffer.concat(chunks).toString();
}

export const curlEnv = {
  ...process.env,
  http_proxy: '',
  https_proxy: '',
  HTTPS_PROXY: '',
  no_proxy: '',
  NO_PROXY: '',
};

export function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '20', ...args],
      { env: curlEnv, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A port where nothing listens (a listener opened and closed). */
export async function deadPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await closeServer(s);
  return port;
}
