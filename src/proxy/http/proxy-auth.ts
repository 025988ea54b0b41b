/**
 * Proxy-Authorization: Basic (RFC 7617) for the HTTP proxy. The check compares
 * SHA-256 digests with timingSafeEqual, so neither the length nor the first
 * differing byte of the configured credentials leaks through response timing,
 * and the username and password are both always compared (no short circuit).
 *
 * Guarantees: credentials are never returned, logged or put in an error.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface BasicCredentials {
  username: string;
  password: string;
}

/** The value of the challenge header sent with 407. */
export const PROXY_AUTHENTICATE = 'Basic realm="linkmux"';

/**
 * Decodes "Basic base64(user:pass)"; undefined for other schemes, bad base64
 * or a missing colon. The username may not hold ':', the password may.
 */
export function parseBasicAuthorization(value: string | undefined): BasicCredentials | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(value);
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * A checker for one set of credentials: true when the Proxy-Authorization
 * header value carries exactly those.
 */
export function createBasicAuthCheck(expected: BasicCredentials): (header: string | undefined) => boolean {
  const user = digest(expected.username);
  const pass = digest(expected.password);
  return (header) => {
    const given = parseBasicAuthorization(header);
    // Hash something even without credentials, so a missing header costs the same.
    const u = timingSafeEqual(digest(given?.username ?? ''), user);
    const p = timingSafeEqual(digest(given?.password ?? ''), pass);
    return given !== undefined && u && p;
  };
}
