/** `server`: `linkmux server` (kernel MPTCP) and its clients. */
import { isIP } from 'node:net';
import { z } from 'zod';
import { decodeJoinToken, encodeJoinToken } from '../../links/join-token.js';
import { formatHostPort, parseHostPort } from '../../net/address.js';
import { LinkmuxError } from '../../util/errors.js';
import { cidrMatch, nodeName } from '../fields.js';

/** The join token of a `linkmux server` (`linkmux server --init` prints it); a node's token is refused here. */
const serverToken = z.string().transform((text, ctx) => {
  try {
    const t = decodeJoinToken(text);
    if (t.kind !== 'server') {
      ctx.addIssue({
        code: 'custom',
        message: `this is the token of node ${t.name}, not of a linkmux server: give it to join (--join), or print the server's with \`linkmux server --token\``,
      });
      return z.NEVER;
    }
    return encodeJoinToken(t);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof LinkmuxError ? err.message : String(err) });
    return z.NEVER;
  }
});

export const DEFAULT_SERVER_PORT = 7400;

/** Every address (IPv4 and IPv6) or HOST:PORT; a bare port means every address. */
const serverListen = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const text = String(value).trim();
  if (/^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535) return `[::]:${Number(text)}`;
  const hp = parseHostPort(text);
  if (hp && isIP(hp.host) !== 0 && hp.port >= 1) return formatHostPort(hp);
  ctx.addIssue({
    code: 'custom',
    message: `expected HOST:PORT with an IP address ([::]:7400 is every address) or a port, got ${JSON.stringify(value)}`,
  });
  return z.NEVER;
});

/**
 * `linkmux server` (kernel MPTCP through a machine of the user's own): `token`
 * is for the client (`up --server`, `get --server`); the other keys are the
 * server's own settings.
 */
export const serverSchema = z
  .strictObject({
    /** A server's join token: every connection goes through it over one MPTCP connection (root). Default: none. */
    token: serverToken.optional(),
    /** Where `linkmux server` listens: HOST:PORT or a port. Default "[::]:7400" (every address; the token is always required). */
    listen: serverListen.default('[::]:7400'),
    /** The HOST or HOST:PORT written into the server's token (its public name or address). Default: none (required by --init). */
    advertise: z.string().trim().min(1).optional(),
    /** The server's name in its token. Default: this machine's host name. */
    name: nodeName.optional(),
    /** Private or loopback destinations the server may relay to anyway (CIDRs). Default []. */
    allow: z.array(cidrMatch).default([]),
    /** The server's identity (in server/ below it) and the client's MPTCP ownership record. Default: as node.stateDir. */
    stateDir: z.string().trim().min(1).optional(),
  })
  .prefault({});
