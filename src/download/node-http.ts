/**
 * The range requests of one connection slot over plain http, sent with Node's
 * own HTTP/1.1 client (`node:http`, its native llhttp parser): one keep-alive
 * connection through the slot's link (an `http.Agent` with one socket, whose
 * `createConnection` hands over the socket `link.connect` opened), one request
 * at a time. Chunked and close-delimited bodies, 1xx replies and header limits
 * are core's business. https stays on undici (link-fetch.ts).
 *
 * Guarantees: the stall timeout covers the wait for the head and every gap
 * between two body chunks, but not a pause this module made itself because the
 * consumer lags; a connection is reused only after its previous body was read
 * to the end (a body dropped early destroys its socket); a reused connection
 * that the server closed while idle is replaced once, at once, for a request
 * whose reply had not started; every failure is a LinkmuxError.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { stripBrackets } from '../net/address.js';
import type { Link } from '../links/link.js';
import { LinkmuxError, describe } from '../util/errors.js';
import type { Headers } from './http-headers.js';
import type { RangeResponse, ResponseBody } from './http-request.js';

/** The response is paused while the consumer has this much unread. */
const HIGH_WATER = 1024 * 1024;

export interface LinkRequest {
  url: URL;
  headers: Record<string, string>;
  signal: AbortSignal;
  stallTimeoutMs: number;
  connectTimeoutMs: number;
}

export class LinkHttpClient {
  private agent: http.Agent | undefined;
  /** The request whose connection is being opened (one at a time: maxSockets 1). */
  private connecting: LinkRequest | undefined;

  constructor(private readonly link: Link) {}

  /** GET `url` with `headers`; resolves with the status, headers and a body to iterate. */
  async get(req: LinkRequest): Promise<RangeResponse> {
    try {
      return await this.send(req);
    } catch (err) {
      // The server closed the idle connection before our request reached it: one fresh try.
      if (!(err instanceof StaleConnection) || req.signal.aborted) throw err;
      return this.send(req);
    }
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  private ensureAgent(): http.Agent {
    if (this.agent) return this.agent;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
    // Node's contract: return nothing and call `oncreate(err, socket)` once connected.
    type OnCreate = (err: Error | null, socket?: Socket) => void;
    const createConnection = (
      options: { host?: string | null; port?: number | null },
      oncreate: OnCreate,
    ) => {
      const req = this.connecting;
      this.link
        .connect(
          { host: stripBrackets(options.host ?? ''), port: Number(options.port) },
          { timeoutMs: req?.connectTimeoutMs ?? 10_000, ...(req ? { signal: req.signal } : {}) },
        )
        .then(
          (socket) => {
            socket.setNoDelay(true);
            oncreate(null, socket);
          },
          (err: Error) => oncreate(err),
        );
      return undefined;
    };
    agent.createConnection = createConnection as unknown as typeof agent.createConnection;
    this.agent = agent;
    return agent;
  }

  private send(req: LinkRequest): Promise<RangeResponse> {
    const { url } = req;
    const agent = this.ensureAgent();
    this.connecting = req;
    return new Promise<RangeResponse>((resolve, reject) => {
      let body: MessageBody | undefined;
      let socket: Socket | undefined;
      let settled = false;
      const fail = (err: unknown) => {
        cleanup();
        if (!settled) {
          settled = true;
          reject(err);
        }
        body?.fail(err);
        creq.destroy();
      };
      const onAbort = () => fail(new LinkmuxError('LINKMUX_ERR_ABORTED', 'the request was aborted'));
      const onTimeout = () => {
        if (body?.paused) {
          // We stopped reading (the disk lags): not a stall; watch again from now.
          socket?.setTimeout(req.stallTimeoutMs);
          return;
        }
        fail(
          new LinkmuxError(
            'LINKMUX_ERR_TIMEOUT',
            `nothing received for ${req.stallTimeoutMs} ms; the request is retried`,
          ),
        );
      };
      const cleanup = () => {
        req.signal.removeEventListener('abort', onAbort);
        socket?.removeListener('timeout', onTimeout);
        socket?.setTimeout(0);
      };
      const creq = http.request({
        agent,
        host: stripBrackets(url.hostname),
        port: url.port ? Number(url.port) : 80,
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { host: url.port ? `${url.hostname}:${url.port}` : url.hostname, ...req.headers },
      });
      creq.on('socket', (s: Socket) => {
        socket = s;
        s.setTimeout(req.stallTimeoutMs);
        s.on('timeout', onTimeout);
      });
      creq.on('error', (err) => {
        if (err instanceof LinkmuxError) return fail(err);
        const code = (err as NodeJS.ErrnoException).code;
        if (!settled && creq.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) {
          return fail(
            new StaleConnection('LINKMUX_ERR_CONNECT', 'the server closed the connection before replying'),
          );
        }
        fail(
          new LinkmuxError('LINKMUX_ERR_CONNECT', `HTTP request failed: ${describe(err)}`, { cause: err }),
        );
      });
      creq.on('response', (res: http.IncomingMessage) => {
        settled = true;
        body = new MessageBody(res, cleanup);
        resolve({ status: res.statusCode ?? 0, headers: res.headers as Headers, body });
      });
      if (req.signal.aborted) return onAbort();
      req.signal.addEventListener('abort', onAbort, { once: true });
      creq.end();
    });
  }
}

class StaleConnection extends LinkmuxError {}

/**
 * The body of one reply as an async iterable of the parser's chunks as they
 * come (no concatenation, unlike a Readable's own iterator). The response is
 * paused while the consumer lags.
 */
class MessageBody implements ResponseBody {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private error: unknown;
  private wake: (() => void) | undefined;
  private done = false;
  paused = false;

  constructor(
    private readonly res: http.IncomingMessage,
    private readonly onSettled: () => void,
  ) {
    res.on('data', (d: Buffer) => {
      this.queue.push(d);
      this.queued += d.length;
      if (this.queued >= HIGH_WATER && !this.paused) {
        this.paused = true;
        res.pause();
      }
      this.signal();
    });
    res.on('end', () => {
      this.done = true;
      this.onSettled();
      this.signal();
    });
    res.on('error', (err) => this.fail(err));
    res.on('close', () => {
      if (!this.done)
        this.fail(new LinkmuxError('LINKMUX_ERR_CONNECT', 'the server closed the connection mid-reply'));
    });
  }

  fail(err: unknown): void {
    if (this.done) return;
    this.error ??=
      err instanceof LinkmuxError
        ? err
        : new LinkmuxError('LINKMUX_ERR_CONNECT', `the reply broke off: ${describe(err)}`, { cause: err });
    this.onSettled();
    this.signal();
  }

  /** Stops reading: the connection is closed unless the body was complete. */
  destroy(): void {
    if (this.done) return;
    this.fail(new LinkmuxError('LINKMUX_ERR_ABORTED', 'the body was discarded'));
    this.res.destroy();
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    try {
      for (;;) {
        const chunk = this.queue.shift();
        if (chunk) {
          this.queued -= chunk.length;
          if (this.paused && this.queued < HIGH_WATER / 2) {
            this.paused = false;
            this.res.resume();
          }
          yield chunk;
          continue;
        }
        if (this.error !== undefined) throw this.error;
        if (this.done) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.destroy();
    }
  }
}
