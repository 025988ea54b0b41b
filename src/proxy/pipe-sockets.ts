/**
 * Relays bytes both ways between two connected sockets with symmetric
 * teardown: a half-close (FIN) is passed on, and an error or close on either
 * side destroys the other, so no half-dead pair or leaked socket survives.
 *
 *   client <──► linkmux <──► target
 */
import type { Duplex } from 'node:stream';

export interface PipeResult {
  /** Bytes from a to b and from b to a. */
  aToB: number;
  bToA: number;
  error?: Error;
}

export function pipeSockets(a: Duplex, b: Duplex): Promise<PipeResult> {
  return new Promise((resolve) => {
    let aToB = 0;
    let bToA = 0;
    let firstError: Error | undefined;
    let closed = 0;
    const onA = (chunk: Buffer) => {
      aToB += chunk.length;
    };
    const onB = (chunk: Buffer) => {
      bToA += chunk.length;
    };
    a.on('data', onA);
    b.on('data', onB);
    a.pipe(b);
    b.pipe(a);
    const fail = (err: Error) => {
      firstError ??= err;
      a.destroy();
      b.destroy();
    };
    const onClose = () => {
      // One side is gone: the other cannot carry anything useful any more.
      a.destroy();
      b.destroy();
      if (++closed === 2) {
        a.off('data', onA);
        b.off('data', onB);
        resolve({ aToB, bToA, ...(firstError ? { error: firstError } : {}) });
      }
    };
    a.on('error', fail);
    b.on('error', fail);
    a.once('close', onClose);
    b.once('close', onClose);
  });
}
