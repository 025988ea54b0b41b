/**
 * The bookkeeping every Link implementation shares: which sockets are still
 * connecting and which are open, byte totals that include closed sockets,
 * connect failures, drain on close() and abort on destroy(), and the connect
 * deadline (timeout + caller's AbortSignal + link shutdown) around one dial.
 *
 * Guarantees: totals never go backwards (a closing socket's bytes move from
 * "live" to "closed" in the same tick); a socket's bytes count from the moment
 * it is `opened()` — a relay's TLS and SOCKS5 handshakes, and everything of a
 * connect that failed, are not traffic of the link (the health monitor must
 * not take a failed probe's handshake bytes for proof that the link works); `drain()` resolves once no tracked
 * socket is left; `destroyAll()` cancels every dial in flight with
 * LINKMUX_ERR_ABORTED and destroys every tracked socket; a dial that loses to
 * its deadline has its half-made socket destroyed by `withDeadline`'s caller.
 */
import type { Socket } from 'node:net';
import dgram, { type Socket as UdpSocket } from 'node:dgram';
import { DialAbort } from '../util/dial-abort.js';
import { LinkmuxError, describe } from '../util/errors.js';
import type { ConnectOptions, LinkStats } from './link.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export class LinkSockets {
  private readonly pending = new Set<Socket>();
  /** Open sockets and their byte counts when they opened. */
  private readonly open = new Map<Socket, { read: number; written: number }>();
  private readonly cancels = new Set<(err: LinkmuxError) => void>();
  private readonly drainWaiters: Array<() => void> = [];
  /** UDP sockets handed out by the link's openUdp: closed by destroyAll(). */
  private readonly udp = new Set<UdpSocket>();
  private closedBytesIn = 0;
  private closedBytesOut = 0;
  private failures = 0;
  private lastError: string | undefined;

  constructor(private readonly linkId: string) {}

  /** Counts `socket` from now on; its bytes join the totals when it closes. */
  track(socket: Socket): Socket {
    this.pending.add(socket);
    socket.on('error', (err) => {
      if (this.open.has(socket)) this.lastError = `link ${this.linkId}: ${describe(err)}`;
    });
    socket.once('close', () => {
      const base = this.open.get(socket);
      if (base) {
        this.closedBytesIn += socket.bytesRead - base.read;
        this.closedBytesOut += socket.bytesWritten - base.written;
      }
      this.pending.delete(socket);
      this.open.delete(socket);
      if (this.pending.size + this.open.size === 0) {
        for (const wake of this.drainWaiters.splice(0)) wake();
      }
    });
    return socket;
  }

  /** The socket finished connecting: it counts as an active connection. */
  opened(socket: Socket): void {
    this.pending.delete(socket);
    this.open.set(socket, { read: socket.bytesRead, written: socket.bytesWritten });
  }

  /** A failed connect (aborts are not failures: the caller changed its mind). */
  failed(err: LinkmuxError): void {
    // An abort is the caller changing its mind; NO_ROUTE is the destination's family, not the link.
    if (err.code === 'LINKMUX_ERR_ABORTED' || err.code === 'LINKMUX_ERR_NO_ROUTE') return;
    this.failures++;
    this.lastError = err.message;
  }

  /** The received total alone: no write-queue walk per socket (Node's `bytesWritten` getter does one). */
  bytesIn(): number {
    let bytesIn = this.closedBytesIn;
    for (const [s, base] of this.open) bytesIn += s.bytesRead - base.read;
    return bytesIn;
  }

  stats(): LinkStats {
    let bytesIn = this.closedBytesIn;
    let bytesOut = this.closedBytesOut;
    for (const [s, base] of this.open) {
      bytesIn += s.bytesRead - base.read;
      bytesOut += s.bytesWritten - base.written;
    }
    return {
      bytesIn,
      bytesOut,
      activeConnections: this.open.size,
      connectFailures: this.failures,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /** Resolves once every tracked socket has closed. */
  drain(): Promise<void> {
    if (this.pending.size + this.open.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  destroyAll(): void {
    const shutdown = new LinkmuxError('LINKMUX_ERR_ABORTED', `link ${this.linkId} was shut down`);
    for (const stop of [...this.cancels]) stop(shutdown);
    for (const s of [...this.pending, ...this.open.keys()]) s.destroy();
    for (const u of [...this.udp]) {
      try {
        u.close();
      } catch {
        // Its owner closed it in the same tick ('close' has not been emitted yet).
      }
    }
  }

  /** Keeps a UDP socket of the link until it closes, so destroyAll() closes it too. */
  trackUdp(socket: UdpSocket): UdpSocket {
    this.udp.add(socket);
    socket.once('close', () => this.udp.delete(socket));
    return socket;
  }

  /**
   * Runs one dial under a deadline: `opts.timeoutMs` (default 10 s), the
   * caller's signal and destroyAll(). `dial` gets a signal that aborts with the
   * LinkmuxError to report; whatever `dial` throws after that abort is replaced
   * by the abort's reason, and any error is recorded with failed().
   */
  async withDeadline<T>(
    opts: ConnectOptions,
    where: string,
    timeoutHint: string,
    dial: (signal: AbortSignal) => Promise<T>,
    toError: (err: unknown) => LinkmuxError,
  ): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const cancel = new DialAbort();
    const stop = (err: LinkmuxError) => {
      if (!cancel.signal.aborted) cancel.abort(err);
    };
    const onAbort = () =>
      stop(
        new LinkmuxError(
          'LINKMUX_ERR_ABORTED',
          `connecting to ${where} through link ${this.linkId} was aborted`,
          {
            cause: opts.signal?.reason,
          },
        ),
      );
    const timer = setTimeout(
      () =>
        stop(
          new LinkmuxError(
            'LINKMUX_ERR_TIMEOUT',
            `connecting to ${where} through link ${this.linkId} took longer than ${timeoutMs} ms: ${timeoutHint}`,
          ),
        ),
      timeoutMs,
    );
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.cancels.add(stop);
    try {
      return await dial(cancel.signal);
    } catch (err) {
      const e = toError(cancel.signal.aborted ? cancel.signal.reason : err);
      this.failed(e);
      throw e;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      this.cancels.delete(stop);
    }
  }
}

/** The promise's outcome, or a rejection with the signal's reason as soon as it aborts. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}

/** A plain UDP socket bound to `address` (any address when undefined), port chosen by the OS. */
export async function bindUdp(family: 4 | 6, address?: string): Promise<UdpSocket> {
  const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ ...(address !== undefined ? { address } : {}), port: 0 }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}
