/**
 * Where a node listens and what its join token tells clients to dial. Pure.
 *
 * "lan" means every address of this machine in a private range (RFC 1918,
 * IPv6 ULA): the LAN side, reachable by the machines that should join, and
 * never a public address of an uplink, where anyone scanning could knock. On a
 * laptop behind a home router the WiFi address is both its LAN and its
 * uplink's source: it is private, so it is listened on, and that is right.
 */
import type { NetInterface } from '../net/interfaces-types.js';
import { isIP } from 'node:net';
import { LinkmuxError } from '../util/errors.js';
import { specialRangesList } from '../net/ip-ranges.js';

const PRIVATE = specialRangesList(['private', 'unique-local']);

export type NodeListen = { kind: 'lan'; port: number } | { kind: 'tcp'; host: string; port: number };

export interface ListenPoint {
  host: string;
  port: number;
}

/** The addresses to listen on; LINKMUX_ERR_USAGE when "lan" finds no private address. */
export function nodeListenPoints(listen: NodeListen, interfaces: readonly NetInterface[]): ListenPoint[] {
  if (listen.kind === 'tcp') return [{ host: listen.host, port: listen.port }];
  const points: ListenPoint[] = [];
  for (const iface of interfaces) {
    if (!iface.up || iface.loopback) continue;
    for (const a of iface.addresses) {
      if (PRIVATE.check(a.address, a.family === 4 ? 'ipv4' : 'ipv6'))
        points.push({ host: a.address, port: listen.port });
    }
  }
  if (points.length === 0) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      "the node listens on this machine's LAN addresses by default, and none was found (no interface has a " +
        'private address such as 192.168.x.x): give one with --listen HOST:PORT (node.listen in the config)',
    );
  }
  return points;
}

/** host and port for the token: `advertise` (HOST or HOST:PORT) when given, else the first listen point. */
export function advertisedAddress(
  points: readonly ListenPoint[],
  advertise: string | undefined,
): ListenPoint {
  const first = points[0];
  if (advertise !== undefined) {
    const at = parseAdvertise(advertise, first?.port);
    if (!at) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `--advertise ${advertise}: expected HOST or HOST:PORT with a host name or an IP address other ` +
          'machines can dial (not 0.0.0.0 or ::)',
      );
    }
    return at;
  }
  if (!first) throw new LinkmuxError('LINKMUX_ERR_USAGE', 'the node has no address to listen on');
  if (first.host === '0.0.0.0' || first.host === '::') {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `the node listens on ${first.host}, which other machines cannot dial: say which address the join token ` +
        'should carry with --advertise HOST (node.advertise in the config)',
    );
  }
  return first;
}

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

/** HOST, HOST:PORT, [V6]:PORT or a bare IPv6 address; undefined when malformed or a wildcard. */
function parseAdvertise(text: string, defaultPort: number | undefined): ListenPoint | undefined {
  const t = text.trim();
  let host: string;
  let port: number | undefined = defaultPort;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(t);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
    if (!isIP(host)) return undefined;
  } else if (isIP(t) === 6) {
    host = t;
  } else {
    const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(t);
    if (!m) return undefined;
    host = m[1]!;
    if (m[2] !== undefined) port = Number(m[2]);
    if (!isIP(host) && !HOSTNAME.test(host)) return undefined;
  }
  if (host === '0.0.0.0' || host === '::' || port === undefined || port < 1 || port > 65535) return undefined;
  return { host, port };
}
