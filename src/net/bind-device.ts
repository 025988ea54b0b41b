/**
 * SO_BINDTODEVICE for Node sockets on Linux, through the koffi FFI module.
 *
 * Node cannot set socket options before connect(), and binding only the source
 * address does not choose the outgoing interface on Linux. So we create the
 * socket ourselves in libc, bind it to the device, and hand the fd to
 * `new net.Socket({ fd })`, which Node then connects.
 *
 * Guarantees:
 * - koffi is loaded lazily, on first use; when it is missing, fails to load or
 *   the platform is not Linux, `bindDeviceSupport()` says so and nothing throws
 *   at import time.
 * - A failed setsockopt never leaks the fd; the error is a LINKMUX_ERR_BIND_FAILED
 *   whose `cause` carries the errno name as `code` (EPERM, ENODEV …), so callers
 *   can use `systemCode(err.cause)`.
 * - `connectThroughDevice` wraps and connects in the same tick (wrapping first and
 *   connecting later makes Node start reading the unconnected fd → ENOTCONN), and
 *   only to an IP literal (a host name would let Node's happy-eyeballs open fresh,
 *   unbound sockets).
 * - `createBoundUdpSocket` binds the source address as well as the device (see
 *   there why UDP needs both); a failed bind never leaks the fd either.
 */
import { createRequire } from 'node:module';
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import { LinkmuxError, describe } from '../util/errors.js';

// Linux values, identical on every architecture koffi ships a Linux build for
// (x64, ia32, arm, arm64, riscv64, loong64, ppc64).
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_BINDTODEVICE = 25;
/** IFNAMSIZ, including the terminating NUL. */
const IFNAMSIZ = 16;

export type BindDeviceSupport = { available: true } | { available: false; reason: string };

/** The few libc calls socket code needs (shared with mptcp-socket.ts). */
export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  inetPton(family: number, text: string, dst: Buffer): number;
  close(fd: number): number;
  errno(): number;
  errnoName(n: number): string;
}

let loaded: { libc: Libc } | { reason: string } | undefined;

function loadLibc(platform: NodeJS.Platform = process.platform): { libc: Libc } | { reason: string } {
  if (platform !== 'linux') return { reason: `SO_BINDTODEVICE exists only on Linux (this is ${platform})` };
  if (loaded) return loaded;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    // The running process already has libc mapped: dlopen(NULL) finds it on glibc and musl alike.
    const lib = koffi.load(null);
    const names = new Map(Object.entries(koffi.os.errno).map(([name, n]) => [n, name]));
    loaded = {
      libc: {
        socket: lib.func('int socket(int, int, int)'),
        setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
        bind: lib.func('int bind(int, const void *, uint32_t)'),
        inetPton: lib.func('int inet_pton(int, const char *, void *)'),
        close: lib.func('int close(int)'),
        errno: () => koffi.errno(),
        errnoName: (n) => names.get(n) ?? `errno ${n}`,
      },
    };
  } catch (err) {
    loaded = { reason: `the koffi FFI module could not be loaded (${describe(err)})` };
  }
  return loaded;
}

/** libc through koffi, or why it cannot be had (not Linux, koffi missing): loaded once, lazily. */
export function socketLibc(
  platform: NodeJS.Platform = process.platform,
): { libc: Libc } | { reason: string } {
  return loadLibc(platform);
}

/** Whether SO_BINDTODEVICE can be used at all here (does not check permission: see probeBindToDevice). */
export function bindDeviceSupport(platform: NodeJS.Platform = process.platform): BindDeviceSupport {
  const l = loadLibc(platform);
  return 'libc' in l ? { available: true } : { available: false, reason: l.reason };
}

/**
 * Creates a non-blocking TCP socket bound to `device` and wraps it in a
 * net.Socket. The caller MUST call `socket.connect({ host: <IP literal>, port })`
 * in the same tick; prefer `connectThroughDevice`, which does.
 * Throws LINKMUX_ERR_UNSUPPORTED_PLATFORM or LINKMUX_ERR_BIND_FAILED.
 */
export function createBoundSocket(device: string, family: 4 | 6, onread?: net.OnReadOpts): net.Socket {
  const fd = openBoundFd(device, family);
  try {
    return new net.Socket({ fd, readable: true, writable: true, ...(onread ? { onread } : {}) });
  } catch (err) {
    closeFd(fd);
    throw new LinkmuxError(
      'LINKMUX_ERR_BIND_FAILED',
      `cannot wrap the socket bound to ${device}: ${describe(err)}`,
      {
        cause: err,
      },
    );
  }
}

/** Opens a socket bound to `device` and starts connecting it to `ip:port` (an IP literal); `onread` as in net.Socket. */
export function connectThroughDevice(
  device: string,
  ip: string,
  port: number,
  onread?: net.OnReadOpts,
): net.Socket {
  const family = net.isIP(ip);
  if (family !== 4 && family !== 6) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONNECT',
      `connectThroughDevice needs an IP address, got "${ip}": resolve the name first (this is a bug in the caller)`,
    );
  }
  const socket = createBoundSocket(device, family, onread);
  socket.connect({ host: ip, port });
  return socket;
}

/**
 * Tries SO_BINDTODEVICE on a throwaway socket: undefined when it works, else the
 * errno name (EPERM: no CAP_NET_RAW on a kernel older than 5.7; ENODEV: no such
 * device) or 'UNAVAILABLE' when koffi or the platform lacks it.
 */
export function probeBindToDevice(device: string, family: 4 | 6 = 4): string | undefined {
  try {
    closeFd(openBoundFd(device, family));
    return undefined;
  } catch (err) {
    if (err instanceof LinkmuxError && err.code === 'LINKMUX_ERR_UNSUPPORTED_PLATFORM') return 'UNAVAILABLE';
    const cause = (err as { cause?: { code?: unknown } }).cause;
    return typeof cause?.code === 'string' ? cause.code : 'UNKNOWN';
  }
}

/**
 * A UDP socket bound to `device` AND to `address` (one of the device's own, its
 * family decides the socket's), on an ephemeral port, wrapped in a dgram.Socket:
 * every datagram it sends leaves through that interface with that source.
 *
 * Why both: an unconnected UDP send routes each datagram with the socket's bound
 * source, so an unbound one (source 0.0.0.0) matches no `ip rule from ADDR`; when
 * the device's default route lives only in such a policy table, the kernel finds
 * no route, treats the destination as on-link and ARPs for it on the device (TCP
 * is spared: connect() looks the route up again once it has picked a source).
 */
export async function createBoundUdpSocket(device: string, address: string): Promise<dgram.Socket> {
  const family = net.isIP(address);
  if (family !== 4 && family !== 6) {
    throw new LinkmuxError(
      'LINKMUX_ERR_BIND_FAILED',
      `cannot open a UDP socket on ${device}: "${address}" is not an IP address (this is a bug in the caller)`,
    );
  }
  const fd = openBoundFd(device, family, SOCK_DGRAM);
  try {
    bindAddress(fd, device, family, address);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ fd }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    socket.close();
    closeFd(fd);
    throw new LinkmuxError(
      'LINKMUX_ERR_BIND_FAILED',
      `cannot open a UDP socket on ${device}: ${describe(err)}`,
      {
        cause: err,
      },
    );
  }
  return socket;
}

/** bind(2) of `fd` to `address`, port 0 (the kernel picks one). */
function bindAddress(fd: number, device: string, family: 4 | 6, address: string): void {
  const { libc } = loadLibc() as { libc: Libc }; // openBoundFd succeeded, so libc is loaded
  // struct sockaddr_in (16 bytes: family, port, 4-byte address, zero padding) or
  // struct sockaddr_in6 (28: family, port, flowinfo, 16-byte address, scope id).
  const sa = Buffer.alloc(family === 4 ? 16 : 28);
  // sa_family_t is in host byte order; the port (0) in network order needs no care.
  if (os.endianness() === 'LE') sa.writeUInt16LE(family === 4 ? AF_INET : AF_INET6, 0);
  else sa.writeUInt16BE(family === 4 ? AF_INET : AF_INET6, 0);
  const addr = sa.subarray(family === 4 ? 4 : 8, family === 4 ? 8 : 24);
  if (libc.inetPton(family === 4 ? AF_INET : AF_INET6, address, addr) !== 1) {
    throw new LinkmuxError(
      'LINKMUX_ERR_BIND_FAILED',
      `cannot open a UDP socket on ${device}: "${address}" is not an IPv${family} address`,
    );
  }
  if (libc.bind(fd, sa, sa.length) !== 0) {
    const code = libc.errnoName(libc.errno());
    const cause = Object.assign(new Error(`bind() failed: ${code}`), { code });
    const hint =
      code === 'EADDRNOTAVAIL'
        ? `${address} is no longer an address of ${device}: rerun so linkmux picks up the new address`
        : 'check the interface with `linkmux links`';
    throw new LinkmuxError(
      'LINKMUX_ERR_BIND_FAILED',
      `cannot bind a UDP socket on ${device} to ${address}: bind() ${code}; ${hint}`,
      { cause },
    );
  }
}

/** The NUL-terminated name setsockopt takes, made once per device (every connect needs it). */
const deviceNames = new Map<string, Buffer>();
function deviceName(device: string): Buffer {
  let name = deviceNames.get(device);
  if (name === undefined) {
    name = Buffer.from(`${device}\0`, 'utf8');
    if (deviceNames.size < 256) deviceNames.set(device, name);
  }
  return name;
}

function openBoundFd(device: string, family: 4 | 6, type = SOCK_STREAM): number {
  const l = loadLibc();
  if (!('libc' in l)) {
    throw new LinkmuxError(
      'LINKMUX_ERR_UNSUPPORTED_PLATFORM',
      `cannot bind a socket to interface ${device}: ${l.reason}. Use --bind address together with ` +
        `policy routes (\`linkmux route setup --apply\`)`,
    );
  }
  const { libc } = l;
  const name = deviceName(device);
  if (device.length === 0 || device.includes('\0') || name.length > IFNAMSIZ) {
    throw new LinkmuxError(
      'LINKMUX_ERR_BIND_FAILED',
      `"${device}" is not a valid interface name (1 to ${IFNAMSIZ - 1} bytes): check it with \`linkmux links --all\``,
    );
  }
  const fd = libc.socket(family === 4 ? AF_INET : AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw bindError(device, 'socket()', libc.errnoName(libc.errno()));
  // errno is only meaningful when the call failed: on success it holds a stale value.
  if (libc.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length) !== 0) {
    const code = libc.errnoName(libc.errno());
    libc.close(fd);
    throw bindError(device, 'setsockopt(SO_BINDTODEVICE)', code);
  }
  return fd;
}

function closeFd(fd: number): void {
  const l = loadLibc();
  if ('libc' in l) l.libc.close(fd);
}

function bindError(device: string, call: string, code: string): LinkmuxError {
  const cause = Object.assign(new Error(`${call} failed: ${code}`), { code });
  if (code === 'EMFILE' || code === 'ENFILE') {
    // The process (or system) is out of descriptors: not the link's fault, and binding has nothing to do with it.
    return new LinkmuxError(
      'LINKMUX_ERR_NO_DESCRIPTORS',
      `cannot open a socket for ${device}: ${call} ${code}, out of file descriptors; too many connections are open`,
      { cause },
    );
  }
  const hint =
    code === 'EPERM'
      ? 'binding a socket to an interface needs CAP_NET_RAW here: run as root, or install policy rules ' +
        'with `linkmux route setup --apply` and use --bind address'
      : code === 'ENODEV'
        ? `there is no interface named ${device}: list them with \`linkmux links --all\``
        : 'use --bind address together with policy routes (`linkmux route setup --apply`) instead';
  return new LinkmuxError(
    'LINKMUX_ERR_BIND_FAILED',
    `cannot bind a socket to ${device}: ${call} ${code}; ${hint}`,
    {
      cause,
    },
  );
}
