/**
 * What a SOCKS5 server sends: method selection (RFC 1928 §3), the
 * username/password status (RFC 1929 §2) and the reply to a request (RFC 1928
 * §6), plus the choice of REP code for a failed dial.
 *
 * Guarantees: pure functions returning fresh buffers, byte-exact to the RFCs
 * (tested against hex); a reply's BND address is IPv4 or IPv6 (IPv4-mapped
 * IPv6 is sent as IPv4), 0.0.0.0:0 when the server has nothing to report.
 */
import { encodeAddress } from './socks5-address.js';
import { isLinkmuxError, systemCode } from '../util/errors.js';

export const SOCKS_VERSION = 0x05;
export const METHOD_NO_AUTH = 0x00;
export const METHOD_USERNAME_PASSWORD = 0x02;
export const METHOD_NONE_ACCEPTABLE = 0xff;
export type Socks5AuthMethod =
  typeof METHOD_NO_AUTH | typeof METHOD_USERNAME_PASSWORD | typeof METHOD_NONE_ACCEPTABLE;

/** REP codes of RFC 1928 §6. */
export const REP = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;
export type Socks5ReplyCode = (typeof REP)[keyof typeof REP];

/** How the server answers a malformed message (the parser's error outcome). */
export type Socks5ErrorAnswer =
  /** Not SOCKS5 at all (wrong VER): answer nothing, close. */
  | { kind: 'close' }
  /** Malformed greeting: METHOD 0xFF (no acceptable methods), close. */
  | { kind: 'no-acceptable-methods' }
  /** Malformed request: a reply with this REP code, close. */
  | { kind: 'reply'; rep: Socks5ReplyCode };

/** VER METHOD */
export function encodeMethodSelection(method: Socks5AuthMethod): Buffer {
  return Buffer.from([SOCKS_VERSION, method]);
}

/** VER(0x01) STATUS: 0x00 success, 0x01 failure (the server then closes). */
export function encodeAuthStatus(ok: boolean): Buffer {
  return Buffer.from([0x01, ok ? 0x00 : 0x01]);
}

/** VER REP RSV ATYP BND.ADDR BND.PORT; BND defaults to 0.0.0.0:0. */
export function encodeReply(rep: Socks5ReplyCode, bnd?: { host: string; port: number }): Buffer {
  // encodeAddress sends an IPv4-mapped BND as the IPv4 address (ATYP 1).
  const address = encodeAddress(bnd?.host ?? '0.0.0.0', bnd?.port ?? 0);
  return Buffer.concat([Buffer.from([SOCKS_VERSION, rep, 0x00]), address]);
}

/** The bytes answering a malformed message, or undefined when the connection just closes. */
export function encodeErrorAnswer(answer: Socks5ErrorAnswer): Buffer | undefined {
  switch (answer.kind) {
    case 'close':
      return undefined;
    case 'no-acceptable-methods':
      return encodeMethodSelection(METHOD_NONE_ACCEPTABLE);
    case 'reply':
      return encodeReply(answer.rep);
  }
}

/**
 * The REP code for a dial that failed, read from the error's own code, which
 * says who is to blame (set where the fact was known: the link, the relay's
 * reply): the destination refused → 0x05; the destination is unreachable, a
 * timeout, a name that does not resolve or a family no link has → 0x04 (host
 * unreachable); our links failed or there is none → 0x03 (network
 * unreachable); refused by the rules or a relay's policy → 0x02. A bare system
 * error (a dialer that is not linkmux's) is read by its own errno. Anything
 * else is 0x01.
 */
export function replyCodeForDialError(err: unknown): Socks5ReplyCode {
  if (isLinkmuxError(err)) {
    switch (err.code) {
      case 'LINKMUX_ERR_REFUSED':
        return REP.CONNECTION_REFUSED;
      case 'LINKMUX_ERR_UNREACHABLE':
      case 'LINKMUX_ERR_TIMEOUT':
      case 'LINKMUX_ERR_DNS':
      case 'LINKMUX_ERR_NO_ROUTE':
        return REP.HOST_UNREACHABLE;
      case 'LINKMUX_ERR_DENIED':
        return REP.NOT_ALLOWED;
      case 'LINKMUX_ERR_CONNECT':
      case 'LINKMUX_ERR_NO_LINKS':
      case 'LINKMUX_ERR_ALL_LINKS_FAILED':
        return REP.NETWORK_UNREACHABLE;
      default:
        return REP.GENERAL_FAILURE;
    }
  }
  switch (systemCode(err)) {
    case 'ECONNREFUSED':
      return REP.CONNECTION_REFUSED;
    case 'ENETUNREACH':
    case 'ENETDOWN':
      return REP.NETWORK_UNREACHABLE;
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
    case 'ETIMEDOUT':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return REP.HOST_UNREACHABLE;
    default:
      return REP.GENERAL_FAILURE;
  }
}
