/**
 * Where an HTTP proxy request wants to go: the CONNECT authority (`host:port`,
 * `[v6]:port`) and the absolute URI (`http://host:port/path?q`) of a forwarded
 * request. Pure functions that return undefined (never throw) on malformed
 * input, so the server can answer 400 without a try/catch around every parse.
 *
 * Guarantees: a returned host is a valid IPv4 literal, an unbracketed IPv6
 * literal, or a lower-cased DNS name (letters, digits, '-', '_', '.'); a port
 * is an integer in 1..65535; the forwarded path is the client's bytes as sent
 * (no dot-segment or percent normalisation: a proxy must not rewrite it).
 */
import { formatHost, ipFamily } from '../../net/address.js';
import type { Destination } from '../../links/link.js';

/** A DNS name as clients send it; '_' appears in real names, so it is allowed. */
const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?$/;

/** Parses a port of 1..5 decimal digits in 1..65535; anything else is undefined. */
export function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Validates a host as it appears in an authority; IPv6 must be bracketed there. */
export function parseHost(text: string): string | undefined {
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) return undefined;
    const inner = text.slice(1, -1);
    // Zone ids (fe80::1%eth0) name an interface of the client, not of a link.
    return ipFamily(inner) === 6 && !inner.includes('%') ? inner.toLowerCase() : undefined;
  }
  // ASCII case only: toLowerCase() would turn U+212A (Kelvin sign) into "k", accepting a non-ASCII name.
  const host = text.replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (ipFamily(host) === 4) return host;
  // All-numeric names such as "1.2.3" or "999.1.1.1" are IPv4 typos, not names.
  if (/^[\d.]+$/.test(host)) return undefined;
  return HOST_NAME.test(host) ? host : undefined;
}

/**
 * Splits "host:port" / "[v6]:port". With `defaultPort`, the port may be
 * omitted (absolute URIs); without it (CONNECT), it is required.
 */
export function parseAuthority(text: string, defaultPort?: number): Destination | undefined {
  let hostPart: string;
  let portPart: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    hostPart = text.slice(0, close + 1);
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return undefined;
    portPart = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = text.lastIndexOf(':');
    hostPart = colon < 0 ? text : text.slice(0, colon);
    portPart = colon < 0 ? undefined : text.slice(colon + 1);
    // An unbracketed IPv6 literal ("::1:443") is ambiguous: refuse it.
    if (hostPart.includes(':')) return undefined;
  }
  const host = parseHost(hostPart);
  if (host === undefined) return undefined;
  if (portPart === undefined || portPart === '') {
    // "host:" with an empty port is allowed by RFC 3986 for URIs (means default).
    if (defaultPort === undefined) return undefined;
    return { host, port: defaultPort };
  }
  const port = parsePort(portPart);
  return port === undefined ? undefined : { host, port };
}

/** The target of CONNECT: "host:port" with the port required (RFC 9110 §9.3.6). */
export function parseConnectTarget(target: string): Destination | undefined {
  return parseAuthority(target);
}

export interface AbsoluteTarget {
  dst: Destination;
  /** Origin-form request target to send upstream: path and query, never the fragment. */
  path: string;
  /** Host header value for the origin (RFC 9112 §3.2.2: taken from the URI, not the client). */
  hostHeader: string;
}

/**
 * Parses an absolute-form request target "http://host[:port]/path?query".
 * Only http: is forwarded; https: URIs are undefined here because clients
 * reach TLS origins through CONNECT. User info ("user:pass@") is dropped: it
 * is not part of the origin's request and must not travel further.
 */
export function parseAbsoluteTarget(target: string): AbsoluteTarget | undefined {
  const m = /^http:\/\/([^/?#]*)([^#]*)/i.exec(target);
  if (!m) return undefined;
  let authority = m[1] ?? '';
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  const dst = parseAuthority(authority, 80);
  if (!dst) return undefined;
  const rest = m[2] ?? '';
  // Spaces or control bytes cannot come from Node's parser, but the helper is pure.
  if (hasSpaceOrControl(rest)) return undefined;
  const path = rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}`;
  return { dst, path, hostHeader: formatAuthority(dst, 80) };
}

function hasSpaceOrControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** "host:port", with IPv6 bracketed; the port is left out when it is `defaultPort`. */
export function formatAuthority(dst: Destination, defaultPort?: number): string {
  const host = formatHost(dst.host);
  return dst.port === defaultPort ? host : `${host}:${dst.port}`;
}
