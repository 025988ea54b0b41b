/**
 * The socket side of the connection gate (connection-gate.ts): each front end
 * calls `admitSocket` on a connection it has just accepted, before any parser
 * touches it. Admitted: the lease is released when the socket closes.
 * Refused: the protocol's own refusal, at once, and the socket is gone.
 *
 *   SOCKS5, node (TLS) → a plain close: RFC 1928 has no reply before the
 *                        greeting, and reading one would hold the descriptor;
 *   HTTP               → "503 Service Unavailable" + Retry-After, then close.
 *
 * Guarantees: a refused socket is destroyed within SHED_LINGER_MS, and at most
 * MAX_LINGERING refused sockets wait for their 503 to be read (the others are
 * closed at once), so shedding a flood never holds more than a few
 * descriptors; nothing here throws.
 */
import type { Socket } from 'node:net';
import type { Clock } from '../util/clock.js';
import type { ConnectionGate, ShedReason } from './connection-gate.js';

export type GatedFrontEnd = 'socks5' | 'http' | 'node';

export interface FrontEndGate {
  gate: ConnectionGate;
  clock: Clock;
  /** Called for every refused connection (the daemon counts and logs, rate-limited). */
  onShed?: (reason: ShedReason, frontEnd: GatedFrontEnd, address: string | undefined) => void;
}

const SHED_LINGER_MS = 1_000;
const MAX_LINGERING = 64;
let lingering = 0;

const BODY = 'linkmux: too many connections; try again shortly\n';
const RESPONSE_503 =
  'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n' +
  `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\n\r\n${BODY}`;

/** True when the socket may be served; false when it was refused (and is being closed). */
export function admitSocket(g: FrontEndGate | undefined, socket: Socket, frontEnd: GatedFrontEnd): boolean {
  if (!g) return true;
  const admission = g.gate.admit(socket.remoteAddress, g.clock.now());
  if (admission.ok) {
    socket.once('close', () => admission.lease.release());
    return true;
  }
  socket.on('error', () => {});
  try {
    g.onShed?.(admission.reason, frontEnd, socket.remoteAddress);
  } catch {
    // A logging failure must not keep a shed socket open.
  }
  if (frontEnd !== 'http' || lingering >= MAX_LINGERING || admission.reason === 'pressure') {
    socket.destroy();
    return false;
  }
  lingering++;
  const timer = setTimeout(() => socket.destroy(), SHED_LINGER_MS);
  socket.once('close', () => {
    lingering--;
    clearTimeout(timer);
  });
  // Read and drop the request, so closing does not turn into a reset that loses the 503.
  socket.resume();
  socket.end(RESPONSE_503);
  return false;
}
