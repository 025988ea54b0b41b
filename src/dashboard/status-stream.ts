/**
 * GET /events: the daemon's status as server-sent events, one `data:` frame of
 * the /status JSON per tick (1 s) to every connected dashboard.
 *
 * Guarantees:
 * - The timer runs only while a client is connected, so a daemon nobody watches
 *   pays nothing; it is unref'd and never keeps the process alive.
 * - At most `maxClients` streams; one more gets 503 with Retry-After.
 * - One status() call and one JSON.stringify per tick, whatever the number of clients.
 * - A client that stops reading is skipped until its socket drains: memory per
 *   client is bounded by the socket's buffer, never by how long it lags.
 * - The first frame goes out at once (the page fills without waiting a tick),
 *   preceded by `retry:` so a browser reconnects within RETRY_MS after the daemon restarts.
 * - close() ends every stream and stops the timer; later requests get 503.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DaemonStatus } from '../control/status-types.js';
import { describe } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

/** What EventSource waits before reconnecting, ms (sent as the `retry:` field). */
export const RETRY_MS = 1000;

export interface StatusStreamOptions {
  status: () => DaemonStatus;
  logger: Logger;
  /** Tick, ms. Default 1000: the "at most once a second". */
  intervalMs?: number;
  /** Concurrent streams. Default 8. */
  maxClients?: number;
}

export class StatusStream {
  private readonly clients = new Set<ServerResponse>();
  /** Clients whose last write did not fit in the socket buffer; skipped until 'drain'. */
  private readonly lagging = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private warned = false;
  private readonly intervalMs: number;
  private readonly maxClients: number;

  constructor(private readonly opts: StatusStreamOptions) {
    this.intervalMs = opts.intervalMs ?? 1000;
    this.maxClients = opts.maxClients ?? 8;
  }

  /** Connected streams now (tests and the CPU bench look at it). */
  get size(): number {
    return this.clients.size;
  }

  /** True while the tick timer runs. */
  get ticking(): boolean {
    return this.timer !== undefined;
  }

  accept(req: IncomingMessage, res: ServerResponse): void {
    if (this.closed || this.clients.size >= this.maxClients) {
      const body = this.closed
        ? 'the daemon is shutting down\n'
        : `too many dashboard clients (at most ${this.maxClients}); close another dashboard tab\n`;
      res.writeHead(503, {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'retry-after': '5',
        'cache-control': 'no-store',
      });
      res.end(body);
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    req.socket.setNoDelay(true);
    this.clients.add(res);
    res.on('close', () => this.drop(res));
    res.write(`retry: ${RETRY_MS}\n\n`);
    const frame = this.frame();
    if (frame !== undefined) this.write(res, frame);
    this.timer ??= setInterval(() => this.tick(), this.intervalMs).unref();
  }

  close(): void {
    this.closed = true;
    this.stop();
    for (const res of this.clients) res.end();
    this.clients.clear();
    this.lagging.clear();
  }

  private tick(): void {
    const frame = this.frame();
    if (frame === undefined) return;
    for (const res of this.clients) if (!this.lagging.has(res)) this.write(res, frame);
  }

  private frame(): string | undefined {
    try {
      return `data: ${JSON.stringify(this.opts.status())}\n\n`;
    } catch (err) {
      // status() is documented not to throw; if it does, say so once and skip the tick.
      if (!this.warned) this.opts.logger.warn(`dashboard events: status failed: ${describe(err)}`);
      this.warned = true;
      return undefined;
    }
  }

  private write(res: ServerResponse, frame: string): void {
    if (res.write(frame)) return;
    this.lagging.add(res);
    res.once('drain', () => this.lagging.delete(res));
  }

  private drop(res: ServerResponse): void {
    this.clients.delete(res);
    this.lagging.delete(res);
    if (this.clients.size === 0) this.stop();
  }

  private stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
