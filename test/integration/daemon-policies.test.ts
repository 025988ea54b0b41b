/**
 * The daemon builds its policies from the runtime config, not from a
 * hand-copied subset: regressions for two bugs of that copy.
 * - `sticky.fallback` was validated, then dropped (new destinations were placed
 *   by adaptive whatever the config said);
 * - rules naming `policy:weighted` or `policy:hash` silently used the default
 *   policy, because the daemon's map of rule policies held four names.
 * The links are fakes that record where each connection went and hand back an
 * unconnected socket, so the placement is observable without any traffic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';
import { Daemon } from '../../src/daemon/daemon.js';
import { runtimeDefaults, type RuntimeConfig } from '../../src/config/runtime.js';
import type { ConnectOptions, Destination, Link, LinkCapabilities, LinkStats } from '../../src/links/link.js';
import { hash32 } from '../../src/scheduler/hash.js';
import { silentLogger } from '../../src/util/logger.js';

/** Records each connect's destination; never opens a socket. */
class RecordingLink implements Link {
  readonly capabilities: LinkCapabilities = { udp: false, remoteNames: false, families: new Set([4]) };
  readonly description: string;
  readonly dialed: string[] = [];
  readonly sockets: net.Socket[] = [];

  constructor(readonly id: string) {
    this.description = `${id} (recording fake)`;
  }

  async connect(dst: Destination, _opts?: ConnectOptions): Promise<net.Socket> {
    this.dialed.push(dst.host);
    const socket = new net.Socket();
    this.sockets.push(socket);
    return socket;
  }

  openUdp(): Promise<UdpSocket> {
    throw new Error('not used');
  }

  stats(): LinkStats {
    return { bytesIn: 0, bytesOut: 0, activeConnections: 0, connectFailures: 0 };
  }

  async close(): Promise<void> {}

  destroy(): void {
    for (const s of this.sockets) s.destroy();
  }
}

/** A daemon that is never started: no listener, no probe; its dialer is driven directly. */
function daemonWith(
  ids: string[],
  config: Partial<RuntimeConfig>,
): { daemon: Daemon; links: RecordingLink[] } {
  const links = ids.map((id) => new RecordingLink(id));
  const daemon = new Daemon({
    links,
    config: runtimeDefaults({
      listen: { socks: undefined, http: undefined, control: undefined },
      privateDirect: false,
      ...config,
    }),
    logger: silentLogger,
  });
  return { daemon, links };
}

/** Where hash-threshold (HashPolicy, RFC 2992) places `key` on `ids` when all are eligible. */
function hashPlacement(key: string, ids: string[]): string {
  return ids[Math.floor((hash32(key) * ids.length) / 2 ** 32)]!;
}

/** Dials each address once (port `port`) and returns the link each went out of. */
async function placements(daemon: Daemon, hosts: string[], port: number): Promise<string[]> {
  const out: string[] = [];
  for (const host of hosts) {
    const { socket, link } = await daemon.dialer.dial({ host, port });
    out.push(link);
    socket.destroy();
  }
  return out;
}

const IDS = ['a', 'b', 'c'];
const HOSTS = Array.from({ length: 16 }, (_, i) => `198.18.7.${i + 1}`);

test('sticky.fallback is used: with fallback hash, new destinations land where hash places them', async () => {
  const { daemon, links } = daemonWith(IDS, {
    policy: 'sticky',
    policyOptions: { ttlMs: 600_000, fallback: 'hash' },
  });
  try {
    const first = await placements(daemon, HOSTS, 443);
    assert.deepEqual(
      first,
      HOSTS.map((h) => hashPlacement(h, IDS)),
      'every new destination is placed by the configured fallback (hash), not adaptive',
    );
    // And sticky still remembers them.
    assert.deepEqual(await placements(daemon, HOSTS, 443), first);
    assert.equal(daemon.status().policy, 'sticky');
  } finally {
    for (const l of links) l.destroy();
  }
});

test('a policy:weighted rule uses the weighted policy with the config weights', async () => {
  const { daemon, links } = daemonWith(['a', 'b'], {
    policy: 'round-robin',
    weights: { a: 3, b: 1 },
    rules: [{ match: { port: 9000 }, action: 'policy:weighted' }],
  });
  try {
    // Smooth weighted round-robin with 3:1 gives a a b a (then again): exactly the weights.
    const ruled = await placements(daemon, HOSTS.slice(0, 8), 9000);
    assert.deepEqual(ruled, ['a', 'a', 'b', 'a', 'a', 'a', 'b', 'a']);
    // Other ports still use the config's policy (round-robin alternates).
    const other = await placements(daemon, HOSTS.slice(0, 4), 80);
    assert.deepEqual(new Set(other), new Set(['a', 'b']));
    assert.equal(other.filter((l) => l === 'a').length, 2);
  } finally {
    for (const l of links) l.destroy();
  }
});

test('a policy:hash rule uses hash placement: each destination on its hash slice, every time', async () => {
  const { daemon, links } = daemonWith(IDS, {
    rules: [{ match: { port: 9000 }, action: 'policy:hash' }],
  });
  try {
    const expected = HOSTS.map((h) => hashPlacement(h, IDS));
    assert.ok(new Set(expected).size > 1, 'the test hosts spread over more than one link');
    assert.deepEqual(await placements(daemon, HOSTS, 9000), expected);
    assert.deepEqual(await placements(daemon, HOSTS, 9000), expected, 'same destination, same link');
    assert.deepEqual(
      IDS.map((id) => links.find((l) => l.id === id)!.dialed.length),
      IDS.map((id) => expected.filter((e) => e === id).length * 2),
    );
  } finally {
    for (const l of links) l.destroy();
  }
});
