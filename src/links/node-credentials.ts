/**
 * The SOCKS5 credentials a linkmux node accepts (RFC 1929), shared by the node
 * and by the links that use it:
 *
 *   username  "linkmux"          the node picks one of its uplinks (adaptive)
 *             "linkmux/<link>"   that uplink of the node (a token may list several)
 *   password  the secret from the join token
 *
 * Guarantees: parsing is pure and total; the secret is compared in constant
 * time over fixed-length digests, so timing says nothing about it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const NODE_USERNAME = 'linkmux';

export function nodeUsername(link?: string): string {
  return link === undefined ? NODE_USERNAME : `${NODE_USERNAME}/${link}`;
}

/** undefined: not a node username; { link: undefined }: the node picks. */
export function parseNodeUsername(username: string): { link: string | undefined } | undefined {
  if (username === NODE_USERNAME) return { link: undefined };
  const prefix = `${NODE_USERNAME}/`;
  if (username.startsWith(prefix) && username.length > prefix.length)
    return { link: username.slice(prefix.length) };
  return undefined;
}

/** A checker for one secret that keeps only its digest. */
export function secretChecker(secret: string): (password: Buffer) => boolean {
  const want = sha256(Buffer.from(secret, 'utf8'));
  return (password) => timingSafeEqual(sha256(password), want);
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}
