/**
 * A LinkResolver wired to a DnsResponder through fake links, all on loopback,
 * with a temp hosts file and no system settings (hermetic: the machine's
 * resolv.conf and /etc/hosts never leak in).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HostsFile } from '../../src/dns/hosts-file.js';
import { LinkResolver, type LinkResolverOptions } from '../../src/dns/resolver.js';
import type { Link } from '../../src/links/link.js';
import { DnsResponder } from './dns-responder.js';
import { FakeLink } from './fake-links.js';
import { tempDir } from './loopback.js';

export interface DnsFixture {
  server: DnsResponder;
  resolver: LinkResolver;
  links: Link[];
  hostsPath: string;
  close(): Promise<void>;
}

export async function dnsFixture(
  opts: {
    links?: Link[];
    hostsText?: string;
    /** Servers to ask; default: the responder alone. */
    servers?: (server: DnsResponder) => LinkResolverOptions['servers'];
    resolver?: Partial<LinkResolverOptions>;
  } = {},
): Promise<DnsFixture> {
  const server = await DnsResponder.start();
  const { dir, cleanup } = await tempDir('lmx-dns-');
  const hostsPath = join(dir, 'hosts');
  await writeFile(hostsPath, opts.hostsText ?? '');
  const links = opts.links ?? [new FakeLink('live')];
  const resolver = new LinkResolver({
    links: () => links,
    servers: opts.servers?.(server) ?? [{ address: '127.0.0.1', port: server.port }],
    useSystemServers: false,
    loopbackDirect: false,
    hosts: new HostsFile({ path: hostsPath }),
    readSystem: async () => ({ nameservers: [], search: [], ndots: 1 }),
    perTryMs: 200,
    totalMs: 2_000,
    ...opts.resolver,
  });
  return {
    server,
    resolver,
    links,
    hostsPath,
    close: async () => {
      try {
        for (const link of links) link.destroy();
      } finally {
        await server.close();
        await cleanup();
      }
    },
  };
}

/** Runs `fn`, returning its outcome and how long it took (ms, wall clock). */
export async function timed<T>(
  fn: () => Promise<T>,
): Promise<{ ms: number } & ({ ok: true; value: T } | { ok: false; error: unknown })> {
  const start = performance.now();
  try {
    const value = await fn();
    return { ms: performance.now() - start, ok: true, value };
  } catch (error) {
    return { ms: performance.now() - start, ok: false, error };
  }
}

export const V4 = new Set<4 | 6>([4]);
export const V6 = new Set<4 | 6>([6]);
export const BOTH = new Set<4 | 6>([4, 6]);

export { FakeLink };
