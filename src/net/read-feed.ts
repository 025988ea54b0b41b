/**
 * Socket reads into a buffer that is reused, instead of one fresh 64 KiB
 * ArrayBuffer per read (Node's `onread` option), for the sockets linkmux opens
 * itself and then relays. At 200 Mbit/s the fresh buffers kept V8's
 * concurrent marking and sweeping busy (docs/architecture.md, "Relay cost per
 * byte").
 *
 * A socket made with `feed.onread` emits no 'data' of its own. Until a relay
 * takes it over (`setSink`), every read is copied into a fresh Buffer and
 * pushed into the socket's Readable side, so any other reader (a handshake,
 * node:http, TLS) sees an ordinary socket. A sink gets each read as a view of
 * the socket's own buffer, valid only during the call; the sink says when it
 * kept a reference (a write that did not complete at once), and the next read
 * then goes to a new buffer, so a queued write is never overwritten. A
 * socket reads into the process-wide shared buffer (and the relay gets a copy)
 * until a read is large: quiet tunnels keep no buffer of their own.
 *
 * Guarantees: bytes are delivered once and in order; back-pressure works both
 * ways (push returning false, or the sink returning false, stops reading until
 * the socket is resumed); no buffer a pending write holds is ever read into;
 * the process-wide shared buffer is never lent to a sink (reads into it are copied).
 */
import type { Socket } from 'node:net';

/** Node reads 64 KiB at most per read: the same size here. */
const READ_BYTES = 64 * 1024;

/** Where every feed's socket reads until it has a sink and a large read: reads are copied out at once, so one buffer serves all. */
const shared = Buffer.allocUnsafeSlow(READ_BYTES);

/**
 * A socket gets a buffer of its own after a read this large; smaller reads are copied out of
 * the shared one (as Node would allocate them), so thousands of quiet tunnels hold no 64 KiB each.
 */
const OWN_BUFFER_FROM = 16 * 1024;

/** Takes one read (valid only during the call); false pauses the socket until it is resumed. */
export type ReadSink = (chunk: Buffer) => boolean;

/**
 * The feed rides on its socket as a symbol-keyed property, not in a WeakMap:
 * the feed refers to its socket, and V8's scavenger (Node 20) keeps a WeakMap
 * entry whose value refers to its key alive, so every closed connection (the
 * socket and all its listeners reach) was promoted to old space and lived
 * until the next full GC (docs/architecture.md, "Connect overhead").
 */
const FEED = Symbol('linkmux.readFeed');
type WithFeed = Socket & { [FEED]?: ReadFeed };

/** The feed a socket was made with, or undefined for an ordinary socket. */
export function readFeedOf(socket: unknown): ReadFeed | undefined {
  return (socket as WithFeed | undefined)?.[FEED];
}

export class ReadFeed {
  private socket: Socket | undefined;
  private current: Buffer = shared;
  private sink: ReadSink | undefined;
  private kept: (() => boolean) | undefined;
  private lent = false;
  /** The last read copied out of the shared buffer was large: this socket gets its own. */
  private bulk = false;
  /** Node asked for the first buffer: the socket was made with `onread`. */
  private started = false;

  /** For `net.connect` / `new net.Socket`: pass this, then `attach` the socket. */
  readonly onread = {
    buffer: (): Buffer => this.next(),
    callback: (n: number, buf: Uint8Array): boolean => this.onRead(n, buf),
  };

  /**
   * Binds the feed to the socket made with `this.onread` (in the same tick). A
   * socket that did not take the option (a test's fake) stays an ordinary one.
   */
  attach(socket: Socket): Socket {
    if (this.current !== shared || !this.started) return socket;
    this.socket = socket;
    (socket as WithFeed)[FEED] = this;
    return socket;
  }

  /**
   * Hands every later read to `sink`; `kept()` is asked after each and says
   * whether the sink still holds the chunk (e.g. the write it went into is
   * queued). Undefined gives the reads back to the socket's Readable side.
   * Bytes already pushed into the Readable side stay there: read them first.
   */
  setSink(sink: ReadSink | undefined, kept?: () => boolean): void {
    this.sink = sink;
    this.kept = sink ? kept : undefined;
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    const view = Buffer.from(buf.buffer, buf.byteOffset, n);
    if (!this.sink) {
      // No relay yet: an ordinary socket for whoever reads it.
      return this.socket ? this.socket.push(Buffer.from(view)) : false;
    }
    if (view.buffer === shared.buffer) {
      // The shared buffer must never be held by a write: this read is copied.
      this.bulk = n >= OWN_BUFFER_FROM;
      return this.sink(Buffer.from(view));
    }
    const more = this.sink(view);
    this.lent = this.kept?.() ?? true;
    return more;
  }

  /** Node asks after every read (and once at the start) where the next read goes. */
  private next(): Buffer {
    this.started = true;
    if (this.sink && (this.current === shared ? this.bulk : this.lent)) {
      this.current = Buffer.allocUnsafeSlow(READ_BYTES);
      this.lent = false;
    } else if (!this.sink && this.lent) {
      this.current = shared;
      this.lent = false;
    }
    return this.current;
  }
}
