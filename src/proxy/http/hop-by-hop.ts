/**
 * Header rewriting for forwarded HTTP messages (RFC 9110 §7.6): hop-by-hop
 * headers describe one connection, so a proxy must not pass them on, and it
 * adds itself to `Via`. Works on Node's `rawHeaders` (name, value, name,
 * value…) so that repeated headers (Set-Cookie) and the sender's order and
 * spelling survive. Pure functions.
 *
 * Guarantees: the result never holds Connection, the headers Connection names,
 * Proxy-Connection, Keep-Alive, Proxy-Authorization, Proxy-Authenticate, TE,
 * Trailer, Transfer-Encoding or Upgrade. Message framing is redone by Node on
 * each side, so it must be stated exactly: Content-Length is end-to-end and
 * kept (a Connection header cannot strip it), and a request that arrived
 * chunked is forwarded with an explicit `Transfer-Encoding: chunked` — without
 * it Node would send a GET's body unframed, and the origin would read that
 * body as the next request (request smuggling).
 */

/** Lower-cased names of the headers that are always hop-by-hop. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Names a Connection header may not strip: message framing depends on them. */
const PROTECTED_HEADERS: ReadonlySet<string> = new Set(['content-length']);

/** The names a message's Connection headers list (lower-cased), e.g. "close, X-Foo" → x-foo. */
export function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() !== 'connection') continue;
    for (const token of (rawHeaders[i + 1] ?? '').split(',')) {
      const t = token.trim().toLowerCase();
      if (t !== '' && !PROTECTED_HEADERS.has(t)) tokens.add(t);
    }
  }
  return tokens;
}

/**
 * rawHeaders without hop-by-hop headers and without any name in `drop`
 * (lower-case), in the original order.
 */
export function stripHopByHop(rawHeaders: readonly string[], drop: Iterable<string> = []): string[] {
  const named = connectionTokens(rawHeaders);
  for (const d of drop) named.add(d);
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    const lower = name.toLowerCase();
    if (HOP_BY_HOP_HEADERS.has(lower) || named.has(lower)) continue;
    out.push(name, rawHeaders[i + 1] ?? '');
  }
  return out;
}

/** The Via entry for a message received as HTTP/`httpVersion` ("1.1 linkmux"). */
export function viaEntry(httpVersion: string): string {
  return `${httpVersion} linkmux`;
}

/**
 * The headers of a request to forward to the origin: hop-by-hop removed, Host
 * replaced by the one from the absolute URI (first, as RFC 9112 asks), a Via
 * entry appended after any the client sent, and the body framing restated.
 */
export function forwardRequestHeaders(
  rawHeaders: readonly string[],
  hostHeader: string,
  httpVersion: string,
): string[] {
  // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3): drop the latter.
  const chunked = hasHeader(rawHeaders, 'transfer-encoding');
  const drop = chunked ? ['host', 'content-length'] : ['host'];
  const framing = chunked ? ['Transfer-Encoding', 'chunked'] : [];
  return ['Host', hostHeader, ...stripHopByHop(rawHeaders, drop), 'Via', viaEntry(httpVersion), ...framing];
}

export function hasHeader(rawHeaders: readonly string[], lowerName: string): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === lowerName) return true;
  }
  return false;
}

/** The headers of a response to pass back to the client: hop-by-hop removed, Via appended. */
export function forwardResponseHeaders(rawHeaders: readonly string[], httpVersion: string): string[] {
  return [...stripHopByHop(rawHeaders), 'Via', viaEntry(httpVersion)];
}
