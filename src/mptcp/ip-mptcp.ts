/**
 * Reading and writing the kernel's MPTCP path-manager settings through `ip mptcp`:
 * the endpoints (local addresses subflows may start from) and the limits.
 *
 *   ip mptcp endpoint show   →  "198.18.2.2 id 200 subflow dev up1 "   (one per line)
 *   ip mptcp limits show     →  "add_addr_accepted 0 subflows 2 "
 *
 * The text form is parsed (iproute2 6.1 prints limits as text even with -j, and
 * the text form is the same on every version since 5.8); fields are read by
 * name, in any order, and unknown words are kept aside rather than refused, so
 * a newer iproute2 with more flags still parses. Pure: text in, values out.
 */
import net from 'node:net';
import { LinkmuxError } from '../util/errors.js';

/** The flags linkmux uses or must recognise on an endpoint. */
export type EndpointFlag = 'subflow' | 'signal' | 'backup' | 'fullmesh' | 'implicit' | 'laminar';

export interface MptcpEndpoint {
  address: string;
  id: number;
  flags: EndpointFlag[];
  dev?: string;
  port?: number;
}

export interface MptcpLimits {
  /** Additional subflows per connection (0–8; kernel default 2). */
  subflows: number;
  /** ADD_ADDR announcements accepted per connection (0–8; kernel default 0). */
  addAddrAccepted: number;
}

/** The kernel refuses limits above this (MPTCP_PM_ADDR_MAX). */
export const MAX_LIMIT = 8;

const FLAGS = new Set<string>(['subflow', 'signal', 'backup', 'fullmesh', 'implicit', 'laminar']);

/** Parses `ip mptcp endpoint show`. A line without an address and an id is an error (not MPTCP output). */
export function parseEndpoints(text: string): MptcpEndpoint[] {
  const out: MptcpEndpoint[] = [];
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) continue;
    const [address, ...rest] = words;
    const e: Partial<MptcpEndpoint> & { flags: EndpointFlag[] } = { flags: [] };
    if (address !== undefined && net.isIP(address)) e.address = address;
    for (let i = 0; i < rest.length; i++) {
      const w = rest[i]!;
      const next = rest[i + 1];
      if (w === 'id' && next !== undefined) {
        e.id = Number(next);
        i++;
      } else if (w === 'dev' && next !== undefined) {
        e.dev = next;
        i++;
      } else if (w === 'port' && next !== undefined) {
        e.port = Number(next);
        i++;
      } else if (FLAGS.has(w)) {
        e.flags.push(w as EndpointFlag);
      }
    }
    if (e.address === undefined || e.id === undefined || !Number.isInteger(e.id)) {
      throw new LinkmuxError(
        'LINKMUX_ERR_COMMAND_FAILED',
        `\`ip mptcp endpoint show\` printed a line linkmux cannot read: ${JSON.stringify(line.trim())}; ` +
          'install iproute2 5.8 or newer',
      );
    }
    out.push(e as MptcpEndpoint);
  }
  return out;
}

/** Parses `ip mptcp limits show`. */
export function parseLimits(text: string): MptcpLimits {
  const words = text.trim().split(/\s+/);
  const value = (name: string): number | undefined => {
    const i = words.indexOf(name);
    const n = i >= 0 ? Number(words[i + 1]) : NaN;
    return Number.isInteger(n) && n >= 0 ? n : undefined;
  };
  const subflows = value('subflows');
  const addAddrAccepted = value('add_addr_accepted');
  if (subflows === undefined || addAddrAccepted === undefined) {
    throw new LinkmuxError(
      'LINKMUX_ERR_COMMAND_FAILED',
      `\`ip mptcp limits show\` printed ${JSON.stringify(text.trim())}, which linkmux cannot read; ` +
        'install iproute2 5.8 or newer',
    );
  }
  return { subflows, addAddrAccepted };
}

/** `ip` arguments that add an endpoint (dev always given: see docs/architecture.md). */
export function endpointAddArgs(e: MptcpEndpoint): string[] {
  return [
    'mptcp',
    'endpoint',
    'add',
    e.address,
    ...(e.port !== undefined ? ['port', String(e.port)] : []),
    ...(e.dev !== undefined ? ['dev', e.dev] : []),
    'id',
    String(e.id),
    ...e.flags,
  ];
}

/**
 * Deletes by id (iproute2 refuses an address beside a non-zero id); callers
 * check first that the id still holds the address they recorded.
 */
export function endpointDelArgs(e: Pick<MptcpEndpoint, 'id'>): string[] {
  return ['mptcp', 'endpoint', 'delete', 'id', String(e.id)];
}

export function limitsSetArgs(l: MptcpLimits): string[] {
  return [
    'mptcp',
    'limits',
    'set',
    'subflows',
    String(l.subflows),
    'add_addr_accepted',
    String(l.addAddrAccepted),
  ];
}

export const ENDPOINT_SHOW_ARGS = ['mptcp', 'endpoint', 'show'];
export const LIMITS_SHOW_ARGS = ['mptcp', 'limits', 'show'];
