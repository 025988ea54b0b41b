/**
 * The system's resolver settings, read from /etc/resolv.conf: nameservers,
 * search domains and `ndots`. linkmux sends its own queries through the links,
 * so it needs the nameservers themselves, not the libc resolver.
 *
 * A loopback stub (systemd-resolved's 127.0.0.53, or 127.0.0.54) forwards
 * through the main route, which is the single point of failure linkmux exists
 * to remove: when /run/systemd/resolve/resolv.conf lists the upstream servers,
 * those are used instead. Other loopback servers (dnsmasq, unbound on this
 * machine) are kept: they are local services, asked over plain sockets.
 *
 * Guarantees: `parseResolvConf` is pure and never throws (unknown lines are
 * ignored, as libc does); reading a missing or unreadable file gives no
 * nameservers, never an error; IPv6 zone ids (`fe80::1%eth0`) are kept out,
 * since a link-local server cannot be reached through another link.
 */
import { readFile } from 'node:fs/promises';
import net from 'node:net';

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  /** Names with fewer dots than this are tried with the search domains first (default 1). */
  ndots: number;
}

export const RESOLV_CONF = '/etc/resolv.conf';
export const SYSTEMD_UPSTREAM_CONF = '/run/systemd/resolve/resolv.conf';
const STUBS = new Set(['127.0.0.53', '127.0.0.54']);

export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [], ndots: 1 };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...values] = line.split(/\s+/);
    if (key === 'nameserver' && values[0] !== undefined) {
      const ip = values[0];
      // net.isIP accepts a zone id (fe80::1%eth0); such a server is kept out (see above).
      if (net.isIP(ip) && !ip.includes('%') && !out.nameservers.includes(ip)) out.nameservers.push(ip);
    } else if (key === 'search' || key === 'domain') {
      out.search = values.map((d) => d.replace(/\.$/, '').toLowerCase()).filter((d) => d.length > 0);
    } else if (key === 'options') {
      for (const opt of values) {
        const m = /^ndots:(\d+)$/.exec(opt);
        if (m) out.ndots = Math.min(15, Number(m[1]));
      }
    }
  }
  return out;
}

/** True for systemd-resolved's stub listeners, which forward through the main route. */
export function isResolvedStub(ip: string): boolean {
  return STUBS.has(ip);
}

/** Reads resolv.conf, swapping a systemd-resolved stub for its upstream servers when they are known. */
export async function readResolvConf(
  read: (path: string) => Promise<string> = (p) => readFile(p, 'utf8'),
): Promise<ResolvConf> {
  const conf = parseResolvConf(await read(RESOLV_CONF).catch(() => ''));
  if (!conf.nameservers.some(isResolvedStub)) return conf;
  const upstream = parseResolvConf(await read(SYSTEMD_UPSTREAM_CONF).catch(() => ''));
  const real = upstream.nameservers.filter((ip) => !net.isIPv4(ip) || !ip.startsWith('127.'));
  if (real.length === 0) return conf;
  return { ...conf, nameservers: [...real, ...conf.nameservers.filter((ip) => !isResolvedStub(ip))] };
}

/** The system's nameservers (stubs replaced by their upstreams), e.g. for health probes. */
export async function systemNameservers(): Promise<string[]> {
  return (await readResolvConf()).nameservers;
}
