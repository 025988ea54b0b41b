/**
 * Probe targets as users write them: "tcp://1.1.1.1:443", "tcp://[2606:4700::1111]:443"
 * or an http(s) URL. One parser for the config file and flags, and the inverse
 * used in logs, so a target is always shown the way it was configured (URLs
 * with their credentials replaced by "***"). Pure: no DNS, no sockets.
 */
import { isIP } from 'node:net';
import { redactUrl } from '../util/errors.js';
import type { ProbeTarget } from './config.js';

export type ParsedTarget = { ok: true; target: ProbeTarget } | { ok: false; message: string };

const TCP = /^tcp:\/\/(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/[\]]+)):(\d{1,5})\/?$/;

/** Parses one target; on failure the message says what form is expected. */
export function parseProbeTarget(text: string): ParsedTarget {
  const value = text.trim();
  const expected = 'expected tcp://HOST:PORT (e.g. tcp://1.1.1.1:443) or an http:// or https:// URL';
  if (/^tcp:/i.test(value)) {
    const m = TCP.exec(value);
    const host = m?.[1] ?? m?.[2];
    const port = Number(m?.[3]);
    if (!m || host === undefined || (m[1] !== undefined && isIP(host) !== 6)) {
      return { ok: false, message: `${expected}, got "${text}"` };
    }
    if (port < 1 || port > 65535) return { ok: false, message: `port ${port} is out of range 1-65535` };
    return { ok: true, target: { kind: 'tcp', host, port } };
  }
  if (/^https?:\/\//i.test(value)) {
    try {
      const url = new URL(value);
      if (!url.hostname) throw new Error('no host');
      return { ok: true, target: { kind: 'http', url: url.toString() } };
    } catch {
      return { ok: false, message: `"${redactUrl(value)}" is not a valid URL` };
    }
  }
  return { ok: false, message: `${expected}, got "${text.includes('@') ? redactUrl(text) : text}"` };
}

/** The target as the user writes it (credentials in URLs redacted). */
export function formatProbeTarget(target: ProbeTarget): string {
  if (target.kind === 'http') return redactUrl(target.url);
  const host = isIP(target.host) === 6 ? `[${target.host}]` : target.host;
  return `tcp://${host}:${target.port}`;
}
