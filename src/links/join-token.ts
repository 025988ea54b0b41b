/**
 * The join token `linkmux node` prints and another machine pastes to use that
 * node as a link: where to dial, which certificate to pin, the SOCKS5 password
 * and which of the node's uplinks to offer.
 *
 *   lmx1_<base64url( payload ‖ SHA-256(payload)[0..4] )>
 *
 *   payload (version 1, big-endian):
 *     32 B  fingerprint   SHA-256 of the node's DER certificate
 *     32 B  secret        the SOCKS5 password's 32 random bytes
 *      2 B  port          1..65535
 *   1+n B  name          n = 1..32, [A-Za-z0-9._-]
 *   1+n B  host          n = 1..253, an IP literal or a host name (ASCII)
 *      1 B  link count    0..16, then per link 1+n B (n = 1..32)
 *    [1 B  kind]         absent = a node; 1 = a `linkmux server` (MPTCP relay)
 *
 * The kind byte came later: a node's token is byte for byte what it always was,
 * and a token without it decodes as a node's, so every token already handed out
 * keeps working. (An older linkmux refuses a server token as malformed.)
 *
 * Binary rather than JSON keeps a token near 130 characters, one line in any
 * terminal. Guarantees: decode tells apart, each with its own message, an
 * empty paste, something that is not a token, a token of another format
 * version, a character no token holds, a damaged or truncated token (the
 * checksum catches a cut or a changed character with odds of 1 in 2^32 of
 * missing it) and well-formed bytes holding bad fields (each named); quotes,
 * surrounding spaces and line breaks a terminal inserted are ignored. No
 * message quotes the secret or the pasted text (only a stray character, and
 * the decoded name, host and links of a token whose checksum held).
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { LinkmuxError } from '../util/errors.js';

export interface JoinToken {
  /** The node's display name, 1-32 characters of [A-Za-z0-9._-]. */
  name: string;
  /** An IP literal (IPv6 without brackets) or host name the client dials. */
  host: string;
  /** 1..65535. */
  port: number;
  /** SHA-256 of the node's DER certificate: 64 lowercase hex digits, no colons. */
  fingerprint: string;
  /** The SOCKS5 password: base64url of 32 random bytes (43 characters). */
  secret: string;
  /** Ids of node uplinks offered as separate links; [] = the node picks (one link). */
  links: string[];
  /** What made the token: a LAN node (default, also when absent) or a `linkmux server`. */
  kind?: TokenKind;
}

export type TokenKind = 'node' | 'server';
const KIND_BYTE: Record<TokenKind, number | undefined> = { node: undefined, server: 1 };

export const TOKEN_PREFIX = 'lmx1_';
const CHECKSUM_BYTES = 4;
const MAX_LINKS = 16;
const NAME_RE = /^[A-Za-z0-9._-]{1,32}$/;
/** Interface names: Linux allows no '/', ':' or spaces in them. */
const LINK_RE = /^[A-Za-z0-9._@+-]{1,32}$/;
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);

const WHOLE_LINE = 'the whole line `linkmux node` printed';
const COPY_AGAIN = `copy ${WHOLE_LINE}`;
const GET_NEW = 'get a new one with `linkmux node --token` on that machine';

/** A fresh secret: base64url of 32 random bytes. */
export function newTokenSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function encodeJoinToken(t: JoinToken): string {
  const bad = fieldProblems(t);
  if (bad.length > 0) {
    throw new LinkmuxError('LINKMUX_ERR_TOKEN', `cannot make a join token: ${bad.join('; ')}`);
  }
  const text = (s: string) => {
    const b = Buffer.from(s, 'latin1');
    return Buffer.concat([Buffer.from([b.length]), b]);
  };
  const port = Buffer.alloc(2);
  port.writeUInt16BE(t.port);
  const payload = Buffer.concat([
    Buffer.from(t.fingerprint, 'hex'),
    Buffer.from(t.secret, 'base64url'),
    port,
    text(t.name),
    text(t.host),
    Buffer.from([t.links.length]),
    ...t.links.map(text),
    ...kindBytes(t.kind),
  ]);
  return TOKEN_PREFIX + Buffer.concat([payload, checksum(payload)]).toString('base64url');
}

export function decodeJoinToken(text: string): JoinToken {
  const s = unwrap(text);
  if (s === '') throw tokenError(`the join token is empty: paste ${WHOLE_LINE}`);
  if (!s.startsWith(TOKEN_PREFIX)) {
    const version = /^lmx(\d+)_/i.exec(s)?.[1];
    if (version !== undefined && version !== '1') {
      throw tokenError(
        `this join token has format version ${version} (lmx${version}_), which this linkmux does not read: ` +
          'update linkmux on this machine, or get a version 1 token from the node',
      );
    }
    throw tokenError(`not a linkmux join token: it should start with ${TOKEN_PREFIX}; ${COPY_AGAIN}`);
  }
  const body = s.slice(TOKEN_PREFIX.length);
  const badChar = /[^A-Za-z0-9_-]/.exec(body);
  if (badChar) {
    // A character outside base64url carries nothing of the secret, so naming it is safe.
    throw tokenError(
      `the join token holds ${JSON.stringify(badChar[0])} at character ${TOKEN_PREFIX.length + badChar.index + 1}, ` +
        `which no token holds (only A-Z a-z 0-9 _ -): ${COPY_AGAIN}`,
    );
  }
  const bytes = Buffer.from(body, 'base64url');
  // Re-encoding must give the same text: a length of 4k+1 is no base64 at all, and a
  // changed last character may differ only in spare bits the decoder drops.
  const intact =
    bytes.toString('base64url') === body &&
    bytes.length > CHECKSUM_BYTES &&
    checksum(bytes.subarray(0, -CHECKSUM_BYTES)).equals(bytes.subarray(-CHECKSUM_BYTES));
  if (!intact) throw tokenError(`the join token is damaged or truncated: copy it again (${WHOLE_LINE})`);
  const payload = bytes.subarray(0, -CHECKSUM_BYTES);
  const t = parsePayload(payload);
  const bad = fieldProblems(t);
  if (bad.length > 0) throw tokenError(`the join token holds bad fields: ${bad.join('; ')}; ${GET_NEW}`);
  return t;
}

/**
 * Lowercase hex of a SHA-256 fingerprint given as 64 hex digits or as 32
 * colon-separated pairs (what `openssl x509 -noout -fingerprint -sha256`
 * prints, its "sha256 Fingerprint=" prefix included).
 */
export function normalizeFingerprint(text: string): string {
  const s = text.trim().replace(/^sha-?256(?:\s+fingerprint)?\s*[=:]\s*/i, '');
  const ok = /^[0-9a-f]{64}$/i.test(s) || /^[0-9a-f]{2}(?::[0-9a-f]{2}){31}$/i.test(s);
  if (!ok) {
    const shown = text.length > 110 ? `${text.slice(0, 100)}…` : text;
    throw tokenError(
      `${JSON.stringify(shown)} is not a SHA-256 certificate fingerprint: expected 64 hex digits, bare or as ` +
        '32 colon-separated pairs (AB:CD:…, as `openssl x509 -noout -fingerprint -sha256` prints)',
    );
  }
  return s.replace(/:/g, '').toLowerCase();
}

function tokenError(message: string): LinkmuxError {
  return new LinkmuxError('LINKMUX_ERR_TOKEN', message);
}

/** The token without surrounding quotes and without any whitespace (terminals wrap long lines). */
function unwrap(text: string): string {
  let s = String(text).trim();
  const q = s[0];
  if (s.length >= 2 && (q === '"' || q === "'" || q === '`') && s.endsWith(q)) s = s.slice(1, -1);
  return s.replace(/\s+/g, '');
}

function checksum(payload: Uint8Array): Buffer {
  return createHash('sha256').update(payload).digest().subarray(0, CHECKSUM_BYTES);
}

/** The fields of a payload whose checksum held; a layout that does not add up is "malformed". */
function parsePayload(p: Buffer): JoinToken {
  let at = 0;
  const malformed = (what: string) =>
    tokenError(`the join token is malformed (${what}): it was not made by a compatible linkmux; ${GET_NEW}`);
  const take = (n: number, field: string): Buffer => {
    if (at + n > p.length) throw malformed(`it ends inside ${field}`);
    const out = p.subarray(at, at + n);
    at += n;
    return out;
  };
  const text = (field: string) => take(take(1, field)[0] ?? 0, field).toString('latin1');
  const fingerprint = take(32, 'the fingerprint').toString('hex');
  const secret = take(32, 'the secret').toString('base64url');
  const port = take(2, 'the port').readUInt16BE(0);
  const name = text('the name');
  const host = text('the host');
  const count = take(1, 'the link count')[0] ?? 0;
  if (count > MAX_LINKS) throw malformed(`${count} links, at most ${MAX_LINKS}`);
  const links: string[] = [];
  for (let i = 0; i < count; i++) links.push(text(`link ${i + 1}`));
  if (at === p.length) return { name, host, port, fingerprint, secret, links };
  // One byte more may be the kind; anything else is bytes after the last field.
  const kindByte = p[at];
  const kind = (Object.keys(KIND_BYTE) as TokenKind[]).find((k) => KIND_BYTE[k] === kindByte);
  if (kind === undefined || at + 1 !== p.length)
    throw malformed(`${p.length - at} bytes follow the last field`);
  return { name, host, port, fingerprint, secret, links, kind };
}

/** Nothing for a node (old tokens stay byte-identical), one byte for a server. */
function kindBytes(kind: TokenKind | undefined): Buffer[] {
  const b = KIND_BYTE[kind ?? 'node'];
  return b === undefined ? [] : [Buffer.from([b])];
}

/** "field: what is wrong" for each bad field, in layout order; never quotes the secret. */
function fieldProblems(t: JoinToken): string[] {
  const bad: string[] = [];
  if (typeof t.fingerprint !== 'string' || !/^[0-9a-f]{64}$/.test(t.fingerprint))
    bad.push('fingerprint: must be 64 lowercase hex digits (the certificate SHA-256)');
  if (typeof t.secret !== 'string' || !isSecret(t.secret))
    bad.push('secret: must be 43 base64url characters (32 random bytes)');
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535)
    bad.push(`port: ${String(t.port)} is not a port from 1 to 65535`);
  if (typeof t.name !== 'string' || !NAME_RE.test(t.name))
    bad.push(`name: ${JSON.stringify(t.name)} is not 1-32 characters of A-Z a-z 0-9 . _ -`);
  if (typeof t.host !== 'string' || !isHost(t.host))
    bad.push(`host: ${JSON.stringify(t.host)} is neither an IP address nor a host name`);
  if (t.kind !== undefined && !(t.kind in KIND_BYTE))
    bad.push(`kind: ${JSON.stringify(t.kind)} is not node or server`);
  if (!Array.isArray(t.links) || t.links.length > MAX_LINKS) {
    bad.push(`links: must be a list of at most ${MAX_LINKS} link ids`);
  } else {
    t.links.forEach((id, i) => {
      if (typeof id !== 'string' || !LINK_RE.test(id))
        bad.push(`links[${i}]: ${JSON.stringify(id)} is not a link id (an interface name like eth0)`);
      else if (t.links.indexOf(id) !== i) bad.push(`links[${i}]: "${id}" is listed twice`);
    });
  }
  return bad;
}

function isSecret(s: string): boolean {
  // Canonical only: the 43rd character's two spare bits must be zero, so one secret has one spelling.
  return /^[A-Za-z0-9_-]{43}$/.test(s) && Buffer.from(s, 'base64url').toString('base64url') === s;
}

function isHost(h: string): boolean {
  if (h.includes('%')) return false; // a zone means nothing on another machine
  if (net.isIP(h) !== 0) return true;
  if (h.length > 253 || !HOSTNAME_RE.test(h)) return false;
  // "10.0.0.256" looks like a name but every resolver reads it as a broken IPv4 address.
  return !/^\d+$/.test(h.replace(/\.$/, '').split('.').pop() ?? '');
}
