/** `links` and `join`: the entries naming links (interfaces, SOCKS5 upstreams, nodes' tokens). */
import { z } from 'zod';
import { decodeJoinToken, encodeJoinToken } from '../../links/join-token.js';
import { isSocks5LinkRequest, parseSocks5Link } from '../../links/remote-links.js';
import { LinkmuxError } from '../../util/errors.js';

/** A join token (lmx1_…) from `linkmux node`, checked whole: version, checksum, fields. */
export const joinToken = z.string().transform((text, ctx) => {
  try {
    // Stored in its canonical form: quotes and line breaks from a terminal's wrapping removed.
    return encodeJoinToken(decodeJoinToken(text));
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof LinkmuxError ? err.message : String(err) });
    return z.NEVER;
  }
});

/** An interface name or address, or a SOCKS5 upstream URL (checked here, never echoing its password). */
export const linkRequest = z
  .string()
  .trim()
  .min(1)
  .superRefine((text, ctx) => {
    if (!isSocks5LinkRequest(text)) return;
    try {
      parseSocks5Link(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof LinkmuxError ? err.message : String(err) });
    }
  });
