/** `limits`: deadlines, connection caps and failed-login logging of every front end. */
import { z } from 'zod';
import { count, duration } from '../fields.js';

export const limitsSchema = z
  .strictObject({
    /**
     * Seconds a SOCKS5 client has from connecting to a complete request (greeting,
     * login, request); a node gives as long to the TLS handshake and again to the
     * SOCKS5 exchange inside it. Default 10.
     */
    handshakeTimeout: duration(0.1, 600).default(10),
    /** Seconds an HTTP proxy request's headers may take to arrive, trickled or not; then 408 and close. Default 10. */
    headersTimeout: duration(0.1, 600).default(10),
    /**
     * Seconds without a byte either way after which an established tunnel (SOCKS5,
     * HTTP CONNECT or forwarded exchange, node relay) is closed; 0 = never.
     * Default 7200 (2 h, like a NAT).
     */
    idleTimeout: duration(0, 30 * 24 * 3600).default(7200),
    /**
     * Client connections open at once, all front ends together; more are refused
     * (SOCKS5: closed, HTTP: 503). 0 = derived: (file descriptor limit − fdReserve) / 2. Default 0.
     */
    maxConnections: count(0, 10_000_000).default(0),
    /** Client connections open at once from one address; 0 = half of maxConnections. Default 0. */
    maxConnectionsPerClient: count(0, 10_000_000).default(0),
    /** File descriptors kept for the control API, health probes and DNS; 0 = derived: limit / 8, 64 to 4096. Default 0. */
    fdReserve: count(0, 10_000_000).default(0),
    /** Seconds between two log lines about failed logins from one client address. Default 60. */
    loginLogInterval: duration(1, 24 * 3600).default(60),
    /**
     * Seconds a relayed download or upload may wait in the kernel before it is read,
     * so that a slow link's trickle is read and sent in fewer, larger pieces (fewer
     * wake-ups per byte). Only a one-way transfer (bulk for a second, nothing the
     * other way for a second) waits this long; other bulk streams wait at most
     * 0.02 s (or this, if less); requests, answers, keystrokes and the first bytes
     * after a pause never wait. 0 turns coalescing off. Default 0.1.
     */
    relayHold: duration(0, 1).default(0.1),
  })
  .prefault({});
