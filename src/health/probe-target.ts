/**
 * Probe targets as users write them: "tcp://1.1.1.1:443", "tcp://[2606:4700::1111]:443",
 * "dns://192.168.1.1", "dns://[2001:db8::53]:5353" or an http(s) URL. A dns:// target
 * names a nameserver by IP address (a name would need DNS to reach DNS), port 53
 * unless given; IPv6 addresses go in brackets, as in URLs. One parser for the config file and flags, and the inverse
 * used in logs, so a target is always shown the way it was configured (URLs
 * with their credentials replaced by "***"). Pure: no DNS, no sockets.
 */
import { formatHost, ipFamily } from '../net/address.js';
import { redactUrl } from '../util/errors.js';
import type { ProbeTarget } from './config.js';

export type ParsedTarget = { ok: true; target: ProbeTarget } | { ok: false; message: string };

const TCP = /^tcp:\/\/(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/[\]]+)):(\d{1,5})\/?$/;
const DNS = /^dns:\/\/(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+))(?::(\d{1,5}))?\/?$/i;
const DNS_FORM =
  'expected dns://IP[:PORT] with an IP address (e.g. dns://192.168.1.1 or dns://[2001:db8::53]:53)';

function parseDns(text: string, value: string): ParsedTarget {
  const m = DNS.exec(value);
  const v6 = m?.[1];
  const v4 = m?.[2];
  const host = v6 ?? v4;
  if (
    !m ||
    host === undefined ||
    (v6 !== undefined && ipFamily(v6) !== 6) ||
    (v4 !== undefined && ipFamily(v4) !== 4)
  ) {
    return { ok: false, message: `${DNS_FORM}, got "${text}"` };
  }
  const port = m[3] === undefined ? 53 : Number(m[3]);
  if (port < 1 || port > 65535) return { ok: false, message: `port ${port} is out of range 1-65535` };
  return { ok: true, target: { kind: 'dns', host, port } };
}

/** Parses one target; on failure the message says what form is expected. */
export function parseProbeTarget(text: string): ParsedTarget {
  const value = text.trim();
  const expected =
    'expected tcp://HOST:PORT (e.g. tcp://1.1.1.1:443), dns://IP[:PORT] or an http:// or https:// URL';
  if (/^dns:/i.test(value)) return parseDns(text, value);
  if (/^tcp:/i.test(value)) {
    const m = TCP.exec(value);
    const host = m?.[1] ?? m?.[2];
    const port = Number(m?.[3]);
    if (!m || host === undefined || (m[1] !== undefined && ipFamily(host) !== 6)) {
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
  const host = formatHost(target.host);
  if (target.kind === 'dns') return target.port === 53 ? `dns://${host}` : `dns://${host}:${target.port}`;
  return `tcp://${host}:${target.port}`;
}
