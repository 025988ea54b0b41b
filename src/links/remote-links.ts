/**
 * Links that are not interfaces of this machine, from what users write:
 *
 *   --link socks5://[user:pass@]host:port[#name]   any SOCKS5 server (router, `ssh -D`)
 *   --join lmx1_…                                  a linkmux node (one link, or one per uplink it offers)
 *
 * Pure: text in, Socks5Link options out; errors are LINKMUX_ERR_USAGE naming
 * the problem and never quoting a password.
 */
import { formatHostPort, stripBrackets } from '../net/address.js';
import { LinkmuxError } from '../util/errors.js';
import type { JoinToken } from './join-token.js';
import { nodeUsername } from './node-credentials.js';
import type { Socks5LinkOptions } from './socks5-link.js';

const SCHEMES = ['socks5:', 'socks5h:'];

/** True for `--link` values that name a SOCKS5 upstream rather than a local interface. */
export function isSocks5LinkRequest(text: string): boolean {
  return /^socks5h?:\/\//i.test(text.trim());
}

/** `socks5://user:pass@host:port#name` → link options; the id is the name, else host:port. */
export function parseSocks5Link(text: string): Socks5LinkOptions {
  // Everything before the last "@" may be credentials (a password may hold ":", "/" or "@").
  const shown = text.replace(/\/\/[\s\S]*@/, '//***@');
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw usage(`--link ${shown} is not a valid URL: write socks5://[user:pass@]host:port[#name]`);
  }
  if (!SCHEMES.includes(url.protocol.toLowerCase())) {
    throw usage(`--link ${shown}: only socks5:// upstreams are supported`);
  }
  if (url.pathname !== '' && url.pathname !== '/') {
    throw usage(`--link ${shown}: a SOCKS5 upstream has no path; write socks5://host:port`);
  }
  if (url.port === '') throw usage(`--link ${shown}: give the port (socks5://${url.hostname}:1080)`);
  const host = stripBrackets(url.hostname);
  if (host === '') throw usage(`--link ${shown}: give the server's host`);
  const decode = (part: string, what: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw usage(`--link ${shown}: the ${what} has a malformed %-escape: write % as %25`);
    }
  };
  const username = decode(url.username, 'user');
  const password = decode(url.password, 'password');
  if ((username === '') !== (password === '')) {
    throw usage(`--link ${shown}: give both user and password (socks5://user:pass@host:port), or neither`);
  }
  if (Buffer.byteLength(username) > 255 || Buffer.byteLength(password) > 255) {
    throw usage(`--link ${shown}: SOCKS5 user and password are at most 255 bytes each`);
  }
  const port = Number(url.port);
  if (port < 1) throw usage(`--link ${shown}: the port must be 1-65535`);
  const name = decode(url.hash.slice(1), 'name after #');
  if (name !== '' && !/^[A-Za-z0-9._:/-]{1,48}$/.test(name)) {
    throw usage(`--link ${shown}: the name after # may hold letters, digits and . _ : / - (at most 48)`);
  }
  const hostPort = formatHostPort({ host, port });
  return {
    id: name || hostPort,
    server: { host, port },
    auth: username ? { username, password } : undefined,
    kind: 'socks5 upstream',
  };
}

/** The links a join token gives: one per uplink the node offers, or one the node balances itself. */
export function nodeLinkOptions(token: JoinToken): Socks5LinkOptions[] {
  if (token.kind === 'server') {
    throw usage(
      `this is the token of linkmux server ${token.name}, not of a node: give it to --server (server.token)`,
    );
  }
  const base = {
    server: { host: token.host, port: token.port },
    pinnedFingerprint: token.fingerprint,
    kind: `node ${token.name}`,
  };
  if (token.links.length === 0) {
    return [{ ...base, id: token.name, auth: { username: nodeUsername(), password: token.secret } }];
  }
  return token.links.map((link) => ({
    ...base,
    id: `${token.name}/${link}`,
    auth: { username: nodeUsername(link), password: token.secret },
  }));
}

function usage(message: string): LinkmuxError {
  return new LinkmuxError('LINKMUX_ERR_USAGE', message);
}
