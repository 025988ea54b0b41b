/**
 * Clients for testing the proxy daemon on loopback: a raw TCP client that reads
 * exact byte counts (hand-made SOCKS5 handshakes), a SOCKS5 CONNECT helper that
 * reports which source address the daemon used (the reply's BND, i.e. which
 * loopback link carried it), curl returning the body as bytes, Node's http
 * through an HTTP proxy, and small counters (open fds, free ports).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { curlEnv } from './http-proxy-fixtures.js';

/** Hex with spaces allowed, for readable handshakes: h('050100 0501...'). */
export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
export const portHex = (port: number): string => port.toString(16).padStart(4, '0');

/** A TCP client that reads exact byte counts, for hand-made handshakes. */
export class RawClient {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  ended = false;
  readonly socket: net.Socket;
  readonly closed: Promise<void>;

  constructor(port: number, host = '127.0.0.1') {
    this.socket = net.connect({ port, host });
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    const ended = () => {
      this.ended = true;
      this.wake?.();
    };
    this.socket.on('end', ended);
    this.socket.on('close', ended);
    this.socket.on('error', () => {});
    this.closed = once(this.socket, 'close').then(() => undefined);
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** Exactly n bytes (fewer only if the peer closes first), or everything until it closes. */
  async read(n?: number, timeoutMs = 5_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && (n === undefined || this.buf.length < n)) {
      if (Date.now() > deadline) {
        throw new Error(`timed out reading ${n ?? 'to the end'}; have ${this.buf.toString('hex')}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const take = n === undefined ? this.buf.length : Math.min(n, this.buf.length);
    const out = this.buf.subarray(0, take);
    this.buf = this.buf.subarray(take);
    return out;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface SocksTarget {
  /** An IPv4 literal or a name (sent as ATYP 3, resolved by the daemon). */
  host: string;
  port: number;
}

/** The SOCKS5 CONNECT request (VER 05, CMD 01, RSV 00, address, port) as hex. */
export function connectRequest(target: SocksTarget): string {
  const addr = net.isIPv4(target.host)
    ? `01 ${Buffer.from(target.host.split('.').map(Number)).toString('hex')}`
    : `03 ${target.host.length.toString(16).padStart(2, '0')} ${Buffer.from(target.host).toString('hex')}`;
  return `050100 ${addr} ${portHex(target.port)}`;
}

/** The RFC 1929 username/password sub-negotiation. */
export function authRequest(username: string, password: string): Buffer {
  const u = Buffer.from(username);
  const p = Buffer.from(password);
  return Buffer.concat([Buffer.from([0x01, u.length]), u, Buffer.from([p.length]), p]);
}

/**
 * CONNECT through SOCKS5 (no auth, or username/password); resolves after a
 * success reply with the client and the BND address (the daemon's source
 * address toward the target: the loopback link that carries the connection).
 */
export async function socksConnect(
  socksPort: number,
  target: SocksTarget,
  auth?: { username: string; password: string },
): Promise<{ client: RawClient; bound: string }> {
  const c = new RawClient(socksPort);
  if (auth) {
    c.write(Buffer.concat([hex('050102'), authRequest(auth.username, auth.password)]));
    assert.equal((await c.read(2)).toString('hex'), '0502', 'username/password selected');
    assert.equal((await c.read(2)).toString('hex'), '0100', 'credentials accepted');
    c.write(hex(connectRequest(target)));
  } else {
    c.write(hex(`050100 ${connectRequest(target)}`));
    assert.equal((await c.read(2)).toString('hex'), '0500', 'no-auth selected');
  }
  const reply = await c.read(10);
  assert.equal(
    reply.subarray(0, 4).toString('hex'),
    '05000001',
    `success reply, got ${reply.toString('hex')}`,
  );
  return { client: c, bound: [...reply.subarray(4, 8)].join('.') };
}

/** Sends a full SOCKS5 exchange and returns everything the server answered until it closed. */
export async function socksAnswer(socksPort: number, bytes: string, timeoutMs = 5_000): Promise<string> {
  const c = new RawClient(socksPort);
  c.write(hex(bytes));
  const answer = await c.read(undefined, timeoutMs);
  await c.closed;
  return answer.toString('hex');
}

export interface CurlResult {
  code: number;
  body: Buffer;
  stderr: string;
}

/** curl with proxy variables cleared, returning the body as bytes (never fails: look at `code`). */
export function curlBytes(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '20', ...args],
      { env: curlEnv, encoding: 'buffer', maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, body: stdout, stderr: stderr.toString() });
      },
    );
  });
}

/** GET url through an HTTP proxy with Node's http (absolute-form request target). */
export function httpGetViaProxy(
  proxyPort: number,
  url: string,
  headers: http.OutgoingHttpHeaders = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get({
      host: '127.0.0.1',
      port: proxyPort,
      path: url,
      headers: { Host: new URL(url).host, ...headers },
      agent: false,
      timeout: 20_000,
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} through the proxy timed out`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
  });
}

/** Open file descriptors of this process (Linux: entries of /proc/self/fd). */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (bound, then released). */
export async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
