/**
 * A minimal HTTP/1.1 client for the range requests of one connection slot over
 * plain http: one keep-alive connection through the slot's link, one request
 * at a time, bodies delimited by Content-Length only.
 *
 * Why not undici here: its body path (the socket in paused mode, `read()`
 * concatenating buffered reads, a second Readable for the body) copies every
 * byte once more and cost 0.30 user s per 512 MiB on loopback where taking the
 * socket's 'data' chunks as they come cost under 0.08; and an http download
 * that never loads undici (link-fetch.ts) also saw V8's full collections
 * vanish (21 → 1 per 512 MiB). With the batched writes: 2.73 → 1.53 CPU-s/GiB
 * for `get` at 3 × 400 Mbit/s (docs/architecture.md, issue 15). https keeps
 * undici (certificate checks, session reuse).
 *
 * Guarantees: a reply this client does not handle (chunked or close-delimited
 * bodies, an oversized head) fails with `PlainHttpUnsupported`, before any body
 * byte is handed out, so the caller can repeat the request with undici; a
 * connection is reused only after its previous body was read to the end; a
 * reused connection that the server closed while idle is replaced once, at
 * once, for a request whose reply had not started.
 */
import type { Socket } from 'node:net';
import type { Link } from '../links/link.js';
import { LinkmuxError } from '../util/errors.js';
import type { Headers } from './http-headers.js';
import type { RangeResponse, ResponseBody } from './http-request.js';

const MAX_HEAD = 64 * 1024;
/** The socket is paused while the consumer has this much unread. */
const HIGH_WATER = 1024 * 1024;

/** The reply needs a feature this client lacks: repeat the request with undici. */
export class PlainHttpUnsupported extends Error {}

export interface PlainRequest {
  url: URL;
  headers: Record<string, string>;
  signal: AbortSignal;
  stallTimeoutMs: number;
  connectTimeoutMs: number;
}

export class PlainHttpClient {
  private conn: Connection | undefined;

  constructor(private readonly link: Link) {}

  /** GET `url` with `headers`; resolves with the status, headers and a body to iterate. */
  async get(req: PlainRequest): Promise<RangeResponse> {
    const key = `${req.url.hostname}:${port(req.url)}`;
    let conn = this.conn;
    if (conn && (conn.key !== key || !conn.idle())) {
      conn.destroy();
      conn = undefined;
    }
    if (conn) {
      try {
        return await conn.request(req);
      } catch (err) {
        // The server closed the idle connection before our request reached it: one fresh try.
        if (!(err instanceof StaleConnection) || req.signal.aborted) throw err;
      }
    }
    const socket = await this.link.connect(
      { host: req.url.hostname.replace(/^\[|\]$/g, ''), port: port(req.url) },
      { timeoutMs: req.connectTimeoutMs, signal: req.signal },
    );
    conn = new Connection(socket, key);
    this.conn = conn;
    return conn.request(req);
  }

  close(): void {
    this.conn?.destroy();
    this.conn = undefined;
  }
}

class StaleConnection extends LinkmuxError {}

function port(url: URL): number {
  return url.port ? Number(url.port) : 80;
}

/** One TCP connection: a head parser, then the body handed out as chunks. */
class Connection {
  private state: 'idle' | 'head' | 'body' | 'closed' = 'idle';
  private head: Buffer[] = [];
  private headBytes = 0;
  private answered = false;
  private onHead: ((res: RangeResponse) => void) | undefined;
  /** Removes the request's abort listener (when its body ends or the connection fails). */
  private detach: (() => void) | undefined;
  private onHeadError: ((err: unknown) => void) | undefined;
  private body: SocketBody | undefined;
  private keepAlive = true;
  private stallTimeoutMs = 0;

  constructor(
    private readonly socket: Socket,
    readonly key: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => this.fail(this.closedError()));
    socket.on('close', () => this.fail(this.closedError()));
    socket.on('error', (err) => this.fail(err));
    socket.on('timeout', () => {
      if (this.body?.paused) {
        // We stopped reading (the disk lags): not a stall; watch again from now.
        socket.setTimeout(this.stallTimeoutMs);
        return;
      }
      this.fail(
        new LinkmuxError(
          'LINKMUX_ERR_TIMEOUT',
          `nothing received for ${this.stallTimeoutMs} ms; the request is retried`,
        ),
      );
    });
  }

  idle(): boolean {
    return this.state === 'idle' && !this.socket.destroyed;
  }

  request(req: PlainRequest): Promise<RangeResponse> {
    if (!this.idle()) return Promise.reject(new StaleConnection('LINKMUX_ERR_CONNECT', 'connection closed'));
    this.state = 'head';
    this.answered = false;
    this.head = [];
    this.headBytes = 0;
    this.stallTimeoutMs = req.stallTimeoutMs;
    this.socket.setTimeout(req.stallTimeoutMs);
    const { url } = req;
    const host = url.port ? `${url.hostname}:${url.port}` : url.hostname;
    let text = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${host}\r\n`;
    for (const [k, v] of Object.entries(req.headers)) text += `${k}: ${v}\r\n`;
    const result = new Promise<RangeResponse>((resolve, reject) => {
      this.onHead = resolve;
      this.onHeadError = reject;
    });
    const onAbort = () => this.fail(new LinkmuxError('LINKMUX_ERR_ABORTED', 'the request was aborted'));
    if (req.signal.aborted) onAbort();
    else {
      req.signal.addEventListener('abort', onAbort, { once: true });
      this.detach = () => req.signal.removeEventListener('abort', onAbort);
      this.socket.write(`${text}\r\n`);
    }
    return result;
  }

  destroy(): void {
    this.state = 'closed';
    this.socket.destroy();
  }

  private closedError(): LinkmuxError {
    return this.answered || this.state !== 'head'
      ? new LinkmuxError('LINKMUX_ERR_CONNECT', 'the server closed the connection mid-reply')
      : new StaleConnection('LINKMUX_ERR_CONNECT', 'the server closed the connection before replying');
  }

  private fail(err: unknown): void {
    if (this.state === 'closed') return;
    const wasHead = this.state === 'head';
    this.state = 'closed';
    this.detach?.();
    this.detach = undefined;
    this.socket.destroy();
    if (wasHead) this.onHeadError?.(err);
    this.body?.fail(err);
  }

  private onData(d: Buffer): void {
    if (this.state === 'body') {
      this.body?.push(d);
      return;
    }
    if (this.state !== 'head') {
      this.fail(new LinkmuxError('LINKMUX_ERR_BAD_RESPONSE', 'the server sent bytes nobody asked for'));
      return;
    }
    this.answered = true;
    this.head.push(d);
    this.headBytes += d.length;
    const all = this.head.length === 1 ? d : Buffer.concat(this.head, this.headBytes);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headBytes > MAX_HEAD) this.fail(new PlainHttpUnsupported('response head too large'));
      else this.head = [all];
      return;
    }
    const parsed = parseHead(all.subarray(0, end).toString('latin1'));
    const rest = all.subarray(end + 4);
    if (!parsed) {
      this.fail(new LinkmuxError('LINKMUX_ERR_BAD_RESPONSE', 'the server sent a malformed HTTP reply'));
      return;
    }
    if (parsed.status >= 100 && parsed.status < 200) {
      // An interim reply (100 Continue, 103 Early Hints): the real one follows.
      this.head = [];
      this.headBytes = 0;
      if (rest.length > 0) this.onData(rest);
      return;
    }
    const { status, headers } = parsed;
    const length = contentLength(status, headers);
    if (length === undefined) {
      this.fail(new PlainHttpUnsupported('the reply has no Content-Length'));
      return;
    }
    this.keepAlive = !/\bclose\b/i.test(String(headers.connection ?? ''));
    const body = new SocketBody(this.socket, length, () => this.bodyDone());
    this.body = body;
    this.state = 'body';
    this.onHead?.({ status, headers, body });
    this.onHead = undefined;
    if (rest.length > 0) body.push(rest);
    else if (length === 0) body.finish();
  }

  private bodyDone(): void {
    this.body = undefined;
    this.detach?.();
    this.detach = undefined;
    if (this.state !== 'body') return;
    if (!this.keepAlive) return this.destroy();
    this.state = 'idle';
    this.socket.setTimeout(0);
  }
}

/** Body length of a reply, or undefined when it is not delimited by Content-Length. */
function contentLength(status: number, headers: Headers): number | undefined {
  if (status === 204 || status === 304) return 0;
  if (headers['transfer-encoding'] !== undefined) return undefined;
  const raw = headers['content-length'];
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw.trim())) return undefined;
  return Number(raw.trim());
}

function parseHead(text: string): { status: number; headers: Headers } | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) return undefined;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { status: Number(m[1]), headers };
}

/**
 * The body of one reply as an async iterable of the socket's own chunks (no
 * copy, no concatenation). The socket is paused while the consumer lags.
 */
class SocketBody implements ResponseBody {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private remaining: number;
  private error: unknown;
  private wake: (() => void) | undefined;
  private done = false;
  paused = false;

  constructor(
    private readonly socket: Socket,
    length: number,
    private readonly onComplete: () => void,
  ) {
    this.remaining = length;
  }

  push(d: Buffer): void {
    if (this.done) return;
    if (d.length > this.remaining) {
      this.fail(new LinkmuxError('LINKMUX_ERR_BAD_RESPONSE', 'the server sent more than Content-Length'));
      this.socket.destroy();
      return;
    }
    this.remaining -= d.length;
    this.queue.push(d);
    this.queued += d.length;
    if (this.remaining === 0) this.finish();
    else if (this.queued >= HIGH_WATER && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.signal();
  }

  /** Every byte arrived: the connection is free for the next request. */
  finish(): void {
    if (this.done) return;
    this.done = true;
    this.onComplete();
    this.signal();
  }

  fail(err: unknown): void {
    if (this.done) return;
    this.error ??= err;
    this.signal();
  }

  /** Stops reading: the connection is closed unless the body was complete. */
  destroy(): void {
    if (!this.done) {
      this.fail(new LinkmuxError('LINKMUX_ERR_ABORTED', 'the body was discarded'));
      this.socket.destroy();
    }
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
            this.socket.resume();
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
