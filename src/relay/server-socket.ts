/**
 * The congestion control of `linkmux server`'s MPTCP connections, set once on
 * the listening socket: the accepted connections inherit it and the kernel
 * applies it to every subflow they gain (MPTCP syncs TCP_CONGESTION to new
 * subflows).
 *
 * Why not the system's: measured on the testbed (bench:server, kernel 6.18,
 * docs/architecture.md), subflows running BBR — a common VPS default — carried
 * 6.3–7.5 Mbit/s of 8, retransmitted ~40× more than CUBIC and kept ~1 s of data
 * unsent each, so one download reached 0.83–0.955 × the sum of the links and a
 * blackholed uplink stalled it 3.9–5.6 s; with CUBIC, 0.93–0.97 and 2.2–2.8 s.
 * CUBIC is in every Linux kernel and in `net.ipv4.tcp_allowed_congestion_control`
 * by default, so setting it needs no privilege. `--congestion` picks another.
 *
 * Guarantees: never throws; a refusal (an algorithm this kernel lacks, or one
 * not allowed to this user) is returned as text and the system default stays.
 */
import { socketLibc, type Libc } from '../net/bind-device.js';

const IPPROTO_TCP = 6;
const TCP_CONGESTION = 13;

/** What the server's subflows run unless configured otherwise. */
export const SERVER_CONGESTION = 'cubic';

/**
 * Sets TCP_CONGESTION on the listening socket `fd` (`libc` null: none here).
 * Returns undefined when set, else why not.
 */
export function setListenerCongestion(
  fd: number,
  name: string,
  libc: Libc | null = loadedLibc(),
): string | undefined {
  if (!libc) return 'libc is not available here';
  const value = Buffer.from(name);
  if (libc.setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, value, value.length) === 0) return undefined;
  const code = libc.errnoName(libc.errno());
  const why =
    code === 'ENOENT'
      ? `this kernel has no "${name}" congestion control (see net.ipv4.tcp_available_congestion_control)`
      : code === 'EPERM'
        ? `"${name}" is not in net.ipv4.tcp_allowed_congestion_control`
        : `setsockopt(TCP_CONGESTION) failed with ${code}`;
  return `${why}; the subflows keep the system default (net.ipv4.tcp_congestion_control)`;
}

function loadedLibc(): Libc | null {
  const l = socketLibc();
  return 'libc' in l ? l.libc : null;
}
