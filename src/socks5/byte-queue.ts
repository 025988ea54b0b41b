/**
 * The chunk queue both SOCKS5 state machines (server-side parser, client-side
 * reader) read from: chunks arrive in any sizes, messages are taken whole.
 */

/** Removes n bytes (n <= what `chunks` holds) from the front, copying only when they span chunks. */
export function takeBytes(chunks: Buffer[], n: number): Buffer {
  const first = chunks[0] as Buffer;
  if (first.length === n) return chunks.shift() as Buffer;
  if (first.length > n) {
    chunks[0] = first.subarray(n);
    return first.subarray(0, n);
  }
  const out = Buffer.allocUnsafe(n);
  let filled = 0;
  while (filled < n) {
    const c = chunks[0] as Buffer;
    const take = Math.min(c.length, n - filled);
    c.copy(out, filled, 0, take);
    filled += take;
    if (take === c.length) chunks.shift();
    else chunks[0] = c.subarray(take);
  }
  return out;
}
