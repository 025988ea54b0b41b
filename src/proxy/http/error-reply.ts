/**
 * How the HTTP proxy tells a client that something failed: which status a
 * failure maps to (502 bad gateway, 504 timeout, 403 rule, 400 malformed) with
 * a one-line text body naming the problem, and how that reply is written on a
 * raw socket (CONNECT, parse errors) before the socket is closed.
 *
 * Guarantees: bodies name the destination and the failure, never credentials
 * or link internals; a socket given to `replyAndClose` is always destroyed
 * (after the reply is flushed, or at the latest after LINGER_MS).
 */
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { isLinkmuxError, systemCode } from '../../util/errors.js';

export interface ProxyFailure {
  status: number;
  /** One line for the response body and the debug log. */
  message: string;
}

/** How long a closing socket may wait for the client to read our reply and hang up. */
export const LINGER_MS = 2_000;

const TIMEOUT_CODES = new Set(['LINKMUX_ERR_TIMEOUT', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);
const DNS_CODES = new Set(['LINKMUX_ERR_DNS', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME']);

/** The code that best names a failure: the LinkmuxError code, else the system code of it or its cause. */
function failureCode(err: unknown): string | undefined {
  if (isLinkmuxError(err)) return err.code;
  return systemCode(err) ?? (err instanceof Error ? systemCode(err.cause) : undefined);
}

function causeCode(err: unknown): string | undefined {
  return err instanceof Error ? (systemCode(err.cause) ?? systemCode(err)) : systemCode(err);
}

/** Maps a failure to open a connection to `target` ("host:port") to a status and message. */
export function dialFailure(err: unknown, target: string): ProxyFailure {
  const code = failureCode(err);
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return { status: 504, message: `linkmux: connecting to ${target} timed out` };
  }
  if (code !== undefined && DNS_CODES.has(code)) {
    return { status: 502, message: `linkmux: the host name of ${target} did not resolve` };
  }
  // A dialer that applies the routing rules itself refuses with this code.
  if (code === 'LINKMUX_ERR_DENIED') {
    return { status: 403, message: `linkmux: ${target} is refused by a rule` };
  }
  if (code === 'LINKMUX_ERR_NO_ROUTE' && isLinkmuxError(err)) {
    return { status: 502, message: `linkmux: ${err.message}` };
  }
  if (code === 'LINKMUX_ERR_REFUSED') {
    return {
      status: 502,
      message: `linkmux: cannot connect to ${target} (ECONNREFUSED): nothing listens there`,
    };
  }
  if (code === 'LINKMUX_ERR_UNREACHABLE') {
    return { status: 502, message: `linkmux: ${target} is unreachable (no route to it)` };
  }
  if (code === 'LINKMUX_ERR_NO_LINKS') {
    return { status: 502, message: `linkmux: no uplink is available to reach ${target}` };
  }
  const why = causeCode(err);
  const detail = why && why !== code ? ` (${why})` : '';
  return { status: 502, message: `linkmux: cannot connect to ${target}${detail}` };
}

/** Maps a failure after the connection was open (reset, malformed reply, idle timeout). */
export function upstreamFailure(err: unknown, target: string): ProxyFailure {
  // Dial errors come through the same request 'error' event as everything else.
  if (isLinkmuxError(err)) return dialFailure(err, target);
  const code = failureCode(err);
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return { status: 504, message: `linkmux: ${target} did not answer in time` };
  }
  if (code?.startsWith('HPE_')) {
    return { status: 502, message: `linkmux: ${target} sent a malformed HTTP response` };
  }
  const detail = code ? ` (${code})` : '';
  return { status: 502, message: `linkmux: ${target} closed the connection without a response${detail}` };
}

/** A complete HTTP/1.1 response with a text body that closes the connection. */
export function rawResponse(
  status: number,
  message: string,
  extraHeaders: Record<string, string> = {},
): string {
  const body = `${message}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    ...Object.entries(extraHeaders).map(([k, v]) => `${k}: ${v}`),
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * Writes a final reply on a raw client socket and closes it. Unread input is
 * drained rather than left in the kernel buffer, because closing a socket with
 * unread data sends RST, which can make the client lose the reply.
 */
export function replyAndClose(
  socket: Duplex,
  status: number,
  message: string,
  extraHeaders?: Record<string, string>,
): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', () => socket.destroy());
  // Sockets auto-destroy once both directions have ended, i.e. when the client hangs up.
  socket.end(rawResponse(status, message, extraHeaders));
  socket.resume();
}
