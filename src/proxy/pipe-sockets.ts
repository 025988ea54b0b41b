/**
 * Relays bytes both ways between two connected sockets with symmetric
 * teardown: a half-close (FIN) is passed on, and an error or close on either
 * side destroys the other, so no half-dead pair or leaked socket survives.
 *
 *   client <──► linkmux <──► target
 *
 * Each direction is one 'data' listener that writes on and counts (no stream
 * pipe and no second listener per chunk); back-pressure pauses the source
 * until the destination drains. Small reads of a bulk stream are coalesced
 * (read-coalescing.ts): fewer, larger reads and writes, and fewer TLS records
 * on a node, for a delay of at most 20 ms, or `limits.relayHold` (100 ms) on a
 * one-way transfer, that never touches the first bytes after idle nor the
 * answer to anything sent the other way.
 */
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { DEFAULT_COALESCE, ReadHold, coalesceFor, coalesceFromEnv } from './read-coalescing.js';
import type { CoalesceOptions } from './read-coalescing.js';
import { readFeedOf } from '../net/read-feed.js';

export interface PipeResult {
  /** Bytes from a to b and from b to a. */
  aToB: number;
  bToA: number;
  error?: Error;
}

export interface PipeOptions {
  /** Coalescing of small reads on bulk streams; false relays every read at once. Default: the process's (setRelayHold, LINKMUX_RELAY_COALESCE). */
  coalesce?: Readonly<CoalesceOptions> | false;
}

interface Direction {
  bytes: number;
  hold: ReadHold | undefined;
  stop(): void;
}

function forward(src: Duplex, dst: Duplex, coalesce: Readonly<CoalesceOptions> | false): Direction {
  const hold = coalesce ? new ReadHold(src, coalesce) : undefined;
  const dir = { bytes: 0, hold, stop };
  const onData = (chunk: Buffer) => {
    dir.bytes += chunk.length;
    if (!dst.write(chunk)) {
      src.pause();
      hold?.sawRead();
    } else hold?.afterRead(chunk.length);
  };
  // A socket linkmux opened with a reused read buffer: its reads come here, not as 'data'
  // (bytes it read before, still in its Readable side, come first as 'data' on resume).
  const feed = readFeedOf(src);
  // Whether the last write still holds its chunk (then the next read must go to another buffer).
  // A TLS socket encrypts a chunk it is handed at once (or copies it), so only a chunk queued
  // behind another write is held; a TCP socket holds the rest of a chunk the kernel did not take.
  const tlsDst = dst instanceof TLSSocket;
  let queuedBefore = false;
  const kept = tlsDst ? () => queuedBefore : () => dst.writableLength > 0;
  feed?.setSink((chunk) => {
    dir.bytes += chunk.length;
    if (tlsDst) queuedBefore = dst.writableLength > 0 || dst.writableCorked > 0;
    if (!dst.write(chunk)) {
      hold?.sawRead();
      return false;
    }
    hold?.afterRead(chunk.length);
    return true;
  }, kept);
  const onDrain = () => src.resume();
  // allowHalfOpen sockets: the source's FIN becomes the destination's, the other way goes on.
  const onEnd = () => dst.end();
  src.on('data', onData);
  dst.on('drain', onDrain);
  src.once('end', onEnd);
  // Like stream.pipe: a source paused by its owner (the SOCKS5 handshake pauses it) starts flowing.
  if (src.readableEnded) process.nextTick(onEnd);
  else if (dst.writableNeedDrain) src.pause();
  else src.resume();
  function stop(): void {
    feed?.setSink(undefined);
    hold?.cancel();
    src.off('data', onData);
    dst.off('drain', onDrain);
    src.off('end', onEnd);
  }
  return dir;
}

/** LINKMUX_RELAY_COALESCE, read once: it overrides the config (benchmarks). */
const envCoalesce = coalesceFromEnv();
let processCoalesce: Readonly<CoalesceOptions> | false = envCoalesce ?? DEFAULT_COALESCE;

/** The longest hold of every later relay in this process (config `limits.relayHold`, ms; 0 = off). */
export function setRelayHold(ms: number): void {
  processCoalesce = envCoalesce ?? coalesceFor(ms);
}

/** How long the bytes queued for a side may take to drain after the other side closed cleanly. */
const FLUSH_MS = 30_000;

/** Ends `s` once its queued bytes are written (nothing more is read from it), destroys it then or after FLUSH_MS. */
function flushThenDestroy(s: Duplex): void {
  s.pause();
  const timer = setTimeout(() => s.destroy(), FLUSH_MS);
  timer.unref();
  s.once('finish', () => s.destroy());
  s.once('close', () => clearTimeout(timer));
  s.end();
}

export function pipeSockets(a: Duplex, b: Duplex, opts: PipeOptions = {}): Promise<PipeResult> {
  const coalesce = opts.coalesce ?? processCoalesce;
  return new Promise((resolve) => {
    let firstError: Error | undefined;
    let closed = 0;
    const aToB = forward(a, b, coalesce);
    const bToA = forward(b, a, coalesce);
    if (aToB.hold && bToA.hold) aToB.hold.pairWith(bToA.hold);
    const fail = (err: Error) => {
      firstError ??= err;
      a.destroy();
      b.destroy();
    };
    const onClose = (gone: Duplex, other: Duplex) => () => {
      // One side is gone: the other cannot carry anything useful any more, except the bytes still
      // queued for it when the close was clean (a target that sent its last bytes and closed, to a
      // slow client): those are flushed first, within FLUSH_MS, then it is destroyed too.
      gone.destroy();
      if (!firstError && !other.destroyed && other.writableLength > 0) flushThenDestroy(other);
      else other.destroy();
      if (++closed === 2) {
        aToB.stop();
        bToA.stop();
        resolve({
          aToB: aToB.bytes,
          bToA: bToA.bytes,
          ...(firstError ? { error: firstError } : {}),
        });
      }
    };
    a.on('error', fail);
    b.on('error', fail);
    a.once('close', onClose(a, b));
    b.once('close', onClose(b, a));
  });
}
