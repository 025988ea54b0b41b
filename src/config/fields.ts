/**
 * The config's own value types, each a zod field with its parser: durations
 * (seconds, or text with a unit), listen addresses, probe targets and rule
 * parts. Each parser accepts its own output, so a parsed config parses again to
 * itself (that is how flags are merged), and each error message names what is
 * expected and quotes what was given. Pure: no sockets, no DNS.
 */
import { z } from 'zod';
import { parseProbeTarget } from '../health/probe-target.js';
import { formatHostPort, ipFamily, parseCidr, parseHostPort } from '../net/address.js';
import { POLICY_NAMES, isPolicyName } from '../scheduler/policies.js';

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** A zod field backed by a parser, so the parser's message becomes the issue's. */
function field<T>(parse: (value: unknown) => Parsed<T>) {
  return z.unknown().transform((value, ctx): T => {
    const r = parse(value);
    if (r.ok) return r.value;
    ctx.addIssue({ code: 'custom', message: r.message, input: value });
    return z.NEVER;
  });
}

/** How a value is quoted in messages: strings in quotes, objects by their kind. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null (an empty value)';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/** Seconds from 1.5, "1.5", "500ms", "2s", "1m" or "1h"; undefined for anything else. */
export function parseSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$/.exec(value);
  if (!m) return undefined;
  // Rounded to the millisecond so "0.1s" and 0.1 give the same number.
  return Math.round(Number(m[1]) * UNIT_SECONDS[m[2] ?? 's']! * 1000) / 1000;
}

/** A whole number within [min, max]. */
export const count = (min: number, max: number) => z.number().int().min(min).max(max);

/** A duration in seconds within [min, max]; text with a unit is accepted and turned into seconds. */
export function duration(min: number, max: number) {
  return field((value) => {
    const s = parseSeconds(value);
    if (s === undefined) {
      return {
        ok: false,
        message: `expected a number of seconds (e.g. 1.5) or a duration like "500ms" or "2m", got ${show(value)}`,
      };
    }
    if (s < min || s > max) {
      return { ok: false, message: `must be from ${min} to ${max} seconds, got ${show(value)}` };
    }
    return { ok: true, value: s };
  });
}

/**
 * A listen address: "HOST:PORT", a bare port (= 127.0.0.1:PORT), or false / ""
 * / an empty value to disable the listener; with `unix`, also an absolute path
 * (a unix socket). Port 0 asks the OS for a free port.
 */
export function listenAddress(unix: boolean) {
  return field<string | false>((value) => {
    if (value === false || value === '' || value === null) return { ok: true, value: false };
    const expected =
      `expected HOST:PORT (e.g. 127.0.0.1:1080 or [::1]:1080), a port number${unix ? ', an absolute unix socket path' : ''} ` +
      `or false to disable it, got ${show(value)}`;
    if (typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value.trim()))) {
      const port = Number(value);
      if (!Number.isInteger(port) || port < 0 || port > 65535) return { ok: false, message: expected };
      return { ok: true, value: `127.0.0.1:${port}` };
    }
    if (typeof value !== 'string') return { ok: false, message: expected };
    const text = value.trim();
    if (unix && text.startsWith('/')) return { ok: true, value: text };
    const hp = parseHostPort(text);
    return hp ? { ok: true, value: formatHostPort(hp) } : { ok: false, message: expected };
  });
}

/** A probe target, kept as text in the config ("tcp://1.1.1.1:443", an http(s) URL). */
export const probeTarget = field<string>((value) => {
  if (typeof value !== 'string') {
    return { ok: false, message: `expected tcp://HOST:PORT or an http(s) URL, got ${show(value)}` };
  }
  const r = parseProbeTarget(value);
  return r.ok ? { ok: true, value: value.trim() } : { ok: false, message: r.message };
});

/** ".example.org" (the name and every subdomain) or "example.org" (that name only). */
export const domainMatch = field<string>((value) => {
  const d = typeof value === 'string' ? value.trim().toLowerCase() : '';
  if (!/^\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/.test(d)) {
    return {
      ok: false,
      message: `expected a domain name, ".example.org" for it and its subdomains or "example.org" for that name only, got ${show(value)}`,
    };
  }
  return { ok: true, value: d };
});

/** "10.0.0.0/8", "2001:db8::/32", or one address (a /32 or /128). */
export const cidrMatch = field<string>((value) => {
  const text = typeof value === 'string' ? value.trim() : '';
  if (!parseCidr(text)) {
    return { ok: false, message: `expected a network like 10.0.0.0/8 or 2001:db8::/32, got ${show(value)}` };
  }
  return { ok: true, value: text };
});

/** A port (443) or an inclusive range ("8000-8999"). */
export const portMatch = field<number | string>((value) => {
  const text = typeof value === 'number' || typeof value === 'string' ? String(value).trim() : '';
  const m = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(text);
  const lo = Number(m?.[1]);
  const hi = Number(m?.[2] ?? m?.[1]);
  if (!m || lo < 1 || hi > 65535 || lo > hi) {
    return {
      ok: false,
      message: `expected a port (1-65535) or a range like "8000-8999", got ${show(value)}`,
    };
  }
  return { ok: true, value: m[2] === undefined ? lo : `${lo}-${hi}` };
});

export type RuleActionText = 'direct' | 'deny' | `link:${string}` | `policy:${string}`;

/** direct | deny | link:<id> | policy:<name>, with the policy name checked. */
export const ruleAction = field<RuleActionText>((value) => {
  const text = typeof value === 'string' ? value.trim() : '';
  if (text === 'direct' || text === 'deny') return { ok: true, value: text };
  const link = /^link:(\S+)$/.exec(text);
  if (link) return { ok: true, value: `link:${link[1]!}` };
  const policy = /^policy:(\S+)$/.exec(text);
  if (policy) {
    const name = policy[1]!;
    if (isPolicyName(name)) return { ok: true, value: `policy:${name}` };
    return {
      ok: false,
      message: `unknown policy "${name}" in ${show(value)}: choose one of ${POLICY_NAMES.join(', ')}`,
    };
  }
  return {
    ok: false,
    message: `expected direct, deny, link:<link id> or policy:<policy name>, got ${show(value)}`,
  };
});

export const DEFAULT_NODE_PORT = 7300;

/**
 * Where a node listens: "lan" or "lan:PORT" (every private address of this
 * machine: the LAN, never the uplinks' public side), HOST:PORT, or a port
 * (= lan:PORT). Canonical output: "lan:7300" or "HOST:PORT".
 */
export const nodeListen = field<string>((value) => {
  const expected = `expected "lan" or "lan:PORT" (this machine's LAN addresses), HOST:PORT or a port number, got ${show(value)}`;
  const text = typeof value === 'number' ? `lan:${value}` : typeof value === 'string' ? value.trim() : '';
  const lan = /^lan(?::(\d{1,5}))?$/i.exec(/^\d+$/.test(text) ? `lan:${text}` : text);
  if (lan) {
    const port = lan[1] === undefined ? DEFAULT_NODE_PORT : Number(lan[1]);
    return port >= 1 && port <= 65535 ? { ok: true, value: `lan:${port}` } : { ok: false, message: expected };
  }
  const hp = parseHostPort(text);
  return hp ? { ok: true, value: formatHostPort(hp) } : { ok: false, message: expected };
});

/** A node's name: what clients call its links. */
export const nodeName = field<string>((value) => {
  const text = typeof value === 'string' ? value.trim() : '';
  return /^[A-Za-z0-9._-]{1,32}$/.test(text)
    ? { ok: true, value: text }
    : { ok: false, message: `expected 1-32 letters, digits, ".", "_" or "-", got ${show(value)}` };
});

/** A nameserver: an IP address ("1.1.1.1", "2606:4700::1111"), or with a port ("9.9.9.9:53", "[::1]:5353"). */
export const nameserver = field<string>((value) => {
  const expected = `expected an IP address, optionally with a port (1.1.1.1, 9.9.9.9:53, [2606:4700::1111]:53), got ${show(value)}`;
  if (typeof value !== 'string') return { ok: false, message: expected };
  const text = value.trim();
  if (ipFamily(text)) return { ok: true, value: text };
  const hp = parseHostPort(text);
  if (!hp || !ipFamily(hp.host) || hp.port < 1) return { ok: false, message: expected };
  return { ok: true, value: formatHostPort(hp) };
});

/** The nameserver text of the config as address and port (53 when none is given). */
export function toNameserver(text: string): { address: string; port: number } {
  if (ipFamily(text)) return { address: text, port: 53 };
  const hp = parseHostPort(text);
  return { address: hp?.host ?? text, port: hp?.port ?? 53 };
}
