/**
 * Small tools for bench/proxy.ts: a minimal SOCKS5 CONNECT client (no auth,
 * IPv4 literal) and a plain TCP connect, both timed and bounded; readers of a
 * process's CPU time, RSS and open descriptors from /proc; statistics and
 * number formatting. No state, no sockets left behind on failure.
 */
import net, { type Socket } from 'node:net';
import { readFile, readdir } from 'node:fs/promises';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

export interface HostPort {
  host: string;
  port: number;
}

export function hostPort(text: string): HostPort {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

export interface Timed {
  socket: Socket;
  /** From the connect() call to the connection being usable, in ms. */
  ms: number;
}

/** TCP connect to `dst`; resolves once connected. */
export function tcpConnect(dst: HostPort, timeoutMs: number): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = net.connect({ host: dst.host, port: dst.port });
    const timer = setTimeout(
      () => fail(new Error(`connect to ${dst.host}:${dst.port} timed out`)),
      timeoutMs,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve({ socket, ms: performance.now() - t0 });
    });
  });
}

/**
 * SOCKS5 CONNECT through `proxy` to the IPv4 literal `dst`, the way curl does
 * it (greeting, wait for the method, then the request): resolves when the
 * proxy answered "succeeded", with the time from the TCP connect() call.
 */
export function socks5Connect(proxy: HostPort, dst: HostPort, timeoutMs: number): Promise<Timed> {
  const octets = dst.host.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255)))
    return Promise.reject(new Error(`socks5Connect: ${dst.host} is not an IPv4 literal`));
  const request = Buffer.from([5, 1, 0, 1, ...octets, dst.port >> 8, dst.port & 0xff]);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = net.connect({ host: proxy.host, port: proxy.port });
    socket.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let phase: 'method' | 'reply' = 'method';
    const timer = setTimeout(() => fail(new Error(`SOCKS5 connect via ${proxy.port} timed out`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (phase === 'method') {
        if (buf.length < 2) return;
        if (buf[0] !== 5 || buf[1] !== 0)
          return fail(new Error(`SOCKS5 method refused: ${buf.toString('hex')}`));
        buf = buf.subarray(2);
        phase = 'reply';
        socket.write(request);
      }
      if (buf.length < 5) return;
      const atyp = buf[3];
      const need = atyp === 1 ? 10 : atyp === 4 ? 22 : 7 + (buf[4] ?? 0);
      if (buf.length < need) return;
      if (buf[1] !== 0) return fail(new Error(`SOCKS5 reply 0x${(buf[1] ?? 0).toString(16)}`));
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onClose);
      resolve({ socket, ms: performance.now() - t0 });
    };
    socket.on('data', onData);
    socket.once('error', fail);
    const onClose = () => fail(new Error('SOCKS5 proxy closed the connection'));
    socket.once('close', onClose);
    socket.once('connect', () => socket.write(Buffer.from([5, 1, 0])));
  });
}

/**
 * CPU seconds (user + system) and minor page faults of a process so far
 * (/proc/<pid>/stat fields 14 + 15, and 10).
 */
export async function procCounters(
  pid: number,
  ticksPerSecond = 100,
): Promise<{ cpu: number; minflt: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { cpu: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond, minflt: Number(fields[7]) };
}

/** Resident set size in KiB (/proc/<pid>/status VmRSS). */
export async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN);
}

export async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

export const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Nearest-rank percentile, p in [0, 100]. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

export const median = (xs: readonly number[]) => percentile(xs, 50);

/** bytes/s → "12.34" Mbit/s. */
export const mbit = (bytesPerSec: number) => ((bytesPerSec * 8) / 1e6).toFixed(2);
