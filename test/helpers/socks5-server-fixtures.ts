/**
 * Fixtures of the SOCKS5 front-end tests (test/integration/socks5-server*.test.ts): a fake
 * Dialer over loopback sockets, local HTTP and echo servers, raw SOCKS5 clients and curl.
 * Everything they open is closed after the file's tests. Nothing leaves the machine.
 */
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import type { Destination } from '../../src/links/link.js';
import type { DialContext, Dialed, Dialer } from '../../src/proxy/dialer.js';
import { createSocks5Server } from '../../src/proxy/socks5/socks5-server.js';
import type { Socks5ServerOptions } from '../../src/proxy/socks5/socks5-server.js';
import { LinkmuxError, systemCode } from '../../src/util/errors.js';
import { RawClient } from '../helpers/proxy-clients.js';

export const run = promisify(execFile);
export const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
export const portHex = (port: number) => port.toString(16).padStart(4, '0');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- fixtures -------------------------------------------------------------------

/** A Dialer over plain sockets on loopback that counts what it has open. */
export class FakeDialer implements Dialer {
  readonly tcp = new Set<net.Socket>();
  readonly udp = new Set<dgram.Socket>();
  readonly dials: Destination[] = [];
  aborts = 0;
  /** Delay before connecting, to test clients that leave while a dial is in flight. */
  delayMs = 0;
  /** Names it "resolves"; anything else that is not an IP literal is a DNS failure. */
  readonly names: Record<string, string> = { localhost: '127.0.0.1' };

  get open(): number {
    return this.tcp.size + this.udp.size;
  }

  async dial(dst: Destination, ctx: DialContext = {}): Promise<Dialed> {
    this.dials.push(dst);
    const ip = net.isIP(dst.host) ? dst.host : this.names[dst.host];
    if (ip === undefined) {
      throw new LinkmuxError('LINKMUX_ERR_DNS', `${dst.host} does not resolve`, {
        cause: Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }),
      });
    }
    if (this.delayMs > 0) await sleep(this.delayMs);
    if (ctx.signal?.aborted) {
      this.aborts++;
      throw new LinkmuxError('LINKMUX_ERR_ABORTED', 'aborted');
    }
    const socket = net.connect({ host: ip, port: dst.port });
    this.tcp.add(socket);
    socket.once('close', () => this.tcp.delete(socket));
    const onAbort = () => {
      this.aborts++;
      socket.destroy(new Error('aborted'));
    };
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await once(socket, 'connect');
      return { socket, link: 'fake0' };
    } catch (err) {
      socket.destroy();
      // As linkmux's links do: a refusal is the destination's answer, said by the code.
      const code = systemCode(err) === 'ECONNREFUSED' ? 'LINKMUX_ERR_REFUSED' : 'LINKMUX_ERR_CONNECT';
      throw new LinkmuxError(code, `cannot connect to ${dst.host}:${dst.port}`, { cause: err });
    } finally {
      ctx.signal?.removeEventListener('abort', onAbort);
    }
  }

  async openUdp(family: 4 | 6): Promise<{ socket: dgram.Socket; link: string }> {
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    this.udp.add(socket);
    socket.once('close', () => this.udp.delete(socket));
    socket.bind(0, family === 6 ? '::1' : '127.0.0.1');
    await once(socket, 'listening');
    return { socket, link: 'fake0' };
  }
}

export const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

export async function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startSocks(opts: Partial<Socks5ServerOptions> = {}, host = '127.0.0.1') {
  const dialer = (opts.dialer as FakeDialer | undefined) ?? new FakeDialer();
  const server = createSocks5Server({ ...opts, dialer });
  const port = await listen(server, host);
  cleanups.push(() => {
    server.closeAllConnections();
    return closeServer(server);
  });
  return { server, port, dialer };
}

export async function httpServer(host = '127.0.0.1') {
  const server = http.createServer((req, res) => res.end(`hello from ${host} ${req.url}`));
  const port = await listen(server, host);
  cleanups.push(() => {
    server.closeAllConnections();
    return closeServer(server);
  });
  return port;
}

export const echoSockets = new Set<net.Socket>();
export async function echoServer(host = '127.0.0.1') {
  const server = net.createServer((s) => {
    echoSockets.add(s);
    s.on('close', () => echoSockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  const port = await listen(server, host);
  cleanups.push(() => {
    for (const s of echoSockets) s.destroy();
    return closeServer(server);
  });
  return port;
}

export async function canListenOnIPv6(): Promise<boolean> {
  const s = net.createServer();
  try {
    await listen(s, '::1');
    await closeServer(s);
    return true;
  } catch {
    return false;
  }
}

/** Connects through SOCKS with no auth to 127.0.0.1:port; returns the client after a success reply. */
export async function socksConnect(socksPort: number, targetPort: number): Promise<RawClient> {
  const c = new RawClient(socksPort);
  c.write(h(`050100 05010001 7f000001 ${portHex(targetPort)}`));
  assert.equal((await c.read(2)).toString('hex'), '0500');
  const reply = await c.read(10);
  assert.equal(reply.subarray(0, 4).toString('hex'), '05000001', 'success reply with an IPv4 BND');
  return c;
}

/** Sends `hex` after a no-auth greeting and returns everything the server sends until it closes. */
export async function requestAnswer(socksPort: number, requestHex: string): Promise<string> {
  const c = new RawClient(socksPort);
  c.write(h('050100' + requestHex));
  const answer = await c.read();
  await c.closed;
  return answer.toString('hex');
}

export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function connections(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
}

export async function curl(args: string[]): Promise<string> {
  // A clean environment: no proxy variables from the machine may steer curl.
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  return stdout;
}

/** Proves the server still serves: one full CONNECT + echo. */
export async function assertServing(socksPort: number): Promise<void> {
  const echo = await echoServer();
  const c = await socksConnect(socksPort, echo);
  c.write('still alive');
  assert.equal((await c.read(11)).toString(), 'still alive');
  c.destroy();
}
