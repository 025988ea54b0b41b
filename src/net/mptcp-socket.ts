/**
 * Kernel MPTCP sockets for Node on Linux: socket(AF_INET[6], SOCK_STREAM,
 * IPPROTO_MPTCP = 262) made through koffi (as bind-device.ts does for
 * SO_BINDTODEVICE), then handed to Node — `new net.Socket({ fd })` connected by
 * Node on the client side, `server.listen({ fd })` on the server side. Node
 * reads and writes them like any TCP socket; the kernel spreads the bytes over
 * subflows (one per MPTCP endpoint of the client) and falls back to plain TCP
 * when the peer has no MPTCP.
 *
 * Guarantees: nothing is loaded at import time; `mptcpSupport()` names the cause
 * and the fix when MPTCP cannot be had (not Linux, no koffi, a kernel without
 * MPTCP, net.mptcp.enabled=0); a failed call never leaks the fd; the client
 * socket is wrapped and connected in the same tick, to an IP literal only (a
 * name would let Node's happy-eyeballs open plain TCP sockets of its own).
 */
import net from 'node:net';
import os from 'node:os';
import { LinkmuxError } from '../util/errors.js';
import { formatHostPort } from './address.js';
import { socketLibc, type Libc } from './bind-device.js';

export const IPPROTO_MPTCP = 262;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;

export type MptcpSupport = { available: true } | { available: false; reason: string; fix: string };

/** What an errno of socket(…, IPPROTO_MPTCP) means, and what to do about it. */
export function explainMptcpErrno(code: string): { reason: string; fix: string } {
  switch (code) {
    case 'ENOPROTOOPT':
      return {
        reason: 'MPTCP is disabled on this machine (net.mptcp.enabled = 0)',
        fix: 'enable it with `sysctl -w net.mptcp.enabled=1` (as root; add it to /etc/sysctl.d to keep it)',
      };
    case 'EPROTONOSUPPORT':
    case 'EINVAL':
      return {
        reason: 'this kernel has no MPTCP (CONFIG_MPTCP; Linux 5.6 or newer has it)',
        fix: 'use a kernel built with CONFIG_MPTCP=y (every major distribution ships one since 2022)',
      };
    case 'EAFNOSUPPORT':
      return { reason: 'this address family is disabled here', fix: 'use an IPv4 address' };
    default:
      return { reason: `socket(IPPROTO_MPTCP) failed with ${code}`, fix: 'check `sysctl net.mptcp.enabled`' };
  }
}

function libcOrThrow(): Libc {
  const l = socketLibc();
  if ('libc' in l) return l.libc;
  const reason =
    process.platform === 'linux'
      ? l.reason
      : `kernel MPTCP sockets exist only on Linux (this is ${process.platform})`;
  throw new LinkmuxError('LINKMUX_ERR_MPTCP', `cannot open an MPTCP socket: ${reason}`);
}

/** Whether an MPTCP socket can be made here: tries one and closes it. */
export function mptcpSupport(family: 4 | 6 = 4): MptcpSupport {
  try {
    closeFd(openMptcpFd(family));
    return { available: true };
  } catch (err) {
    const e = err as LinkmuxError & { fix?: string };
    return { available: false, reason: e.message, fix: e.fix ?? 'run linkmux on Linux 5.6 or newer' };
  }
}

function openMptcpFd(family: 4 | 6): number {
  const libc = libcOrThrow();
  const fd = libc.socket(
    family === 4 ? AF_INET : AF_INET6,
    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
    IPPROTO_MPTCP,
  );
  if (fd < 0) {
    const code = libc.errnoName(libc.errno());
    const { reason, fix } = explainMptcpErrno(code);
    throw Object.assign(
      new LinkmuxError('LINKMUX_ERR_MPTCP', `cannot open an MPTCP socket: ${reason}; ${fix}`, {
        cause: Object.assign(new Error(`socket() failed: ${code}`), { code }),
      }),
      { fix },
    );
  }
  return fd;
}

/**
 * An MPTCP socket connecting to `ip:port` (an IP literal), optionally from
 * `localAddress` (which, with a source policy rule, picks the uplink of the
 * first subflow). Connect in the same tick as the wrap: see the module comment.
 */
export function connectMptcp(ip: string, port: number, localAddress?: string): net.Socket {
  const family = net.isIP(ip);
  if (family !== 4 && family !== 6) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONNECT',
      `connectMptcp needs an IP address, got "${ip}": resolve the name first (this is a bug in the caller)`,
    );
  }
  const fd = openMptcpFd(family);
  let socket: net.Socket;
  try {
    if (localAddress !== undefined && net.isIP(localAddress) === family) bindFd(fd, family, localAddress, 0);
    socket = new net.Socket({ fd, readable: true, writable: true });
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  socket.connect({ host: ip, port });
  return socket;
}

/**
 * A bound (not yet listening) MPTCP socket for `server.listen({ fd })`: `host`
 * '::' listens on every IPv4 and IPv6 address (v6only off), '0.0.0.0' on every
 * IPv4 one. SO_REUSEADDR is set, as Node does for its own listeners.
 */
export function bindMptcpListener(host: string, port: number): number {
  const family = net.isIP(host);
  if (family !== 4 && family !== 6) {
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `cannot listen on "${host}": give an IP address`);
  }
  const fd = openMptcpFd(family);
  try {
    const libc = libcOrThrow();
    const one = Buffer.alloc(4);
    one.writeInt32LE(1);
    libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4);
    if (family === 6) libc.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, Buffer.alloc(4), 4);
    bindFd(fd, family, host, port);
    return fd;
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}

export function closeFd(fd: number): void {
  const l = socketLibc();
  if ('libc' in l) l.libc.close(fd);
}

function bindFd(fd: number, family: 4 | 6, address: string, port: number): void {
  const libc = libcOrThrow();
  // struct sockaddr_in (16 bytes) or sockaddr_in6 (28): family in host order, port in network order.
  const sa = Buffer.alloc(family === 4 ? 16 : 28);
  const af = family === 4 ? AF_INET : AF_INET6;
  if (os.endianness() === 'LE') sa.writeUInt16LE(af, 0);
  else sa.writeUInt16BE(af, 0);
  sa.writeUInt16BE(port, 2);
  const addr = sa.subarray(family === 4 ? 4 : 8, family === 4 ? 8 : 24);
  if (libc.inetPton(af, address, addr) !== 1) {
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `"${address}" is not an IPv${family} address`);
  }
  if (libc.bind(fd, sa, sa.length) !== 0) {
    const code = libc.errnoName(libc.errno());
    const hint =
      code === 'EADDRINUSE'
        ? 'the port is in use (another linkmux server?): stop it or choose another port'
        : code === 'EADDRNOTAVAIL'
          ? 'no interface has that address'
          : code === 'EACCES'
            ? 'ports below 1024 need root'
            : 'check the address';
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `cannot bind an MPTCP socket to ${formatHostPort({ host: address, port })}: ${code}; ${hint}`,
      { cause: Object.assign(new Error(`bind() failed: ${code}`), { code }) },
    );
  }
}
