/**
 * PoolDialer as a node and over relay links, with FAKE links as in
 * pool-dialer.test.ts (connect() opens a real loopback socket, or fails, or is
 * refused by the relay's destination policy; openUdp() gives a real UDP socket
 * or rejects like a relay that carries TCP only). What is checked: the guard
 * refuses the RESOLVED address before any link or rule; ctx.link dials that
 * link alone; a relay's LINKMUX_ERR_DENIED is no health signal while other
 * failures are; openUdp skips links that cannot carry UDP and says why when
 * none can.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectOptions, Destination, Link, LinkStats } from '../../src/links/link.js';
import { LinkPool } from '../../src/scheduler/link-pool.js';
import type { HealthInput, LinkState } from '../../src/health/state-machine.js';
import type { ResolvedAddress } from '../../src/net/resolve.js';
import { PoolDialer } from '../../src/proxy/pool-dialer.js';
import type { PoolDialerOptions } from '../../src/proxy/pool-dialer.js';
import { RuleSet } from '../../src/proxy/rules.js';
import type { Rule } from '../../src/proxy/rules.js';
import { createPolicy } from '../../src/scheduler/policies.js';
import type { Policy } from '../../src/scheduler/snapshot.js';
import { LinkmuxError, isLinkmuxError } from '../../src/util/errors.js';
import type { ErrorCode } from '../../src/util/errors.js';

// --- fixtures -------------------------------------------------------------------

type Mode =
  | 'ok' // a real connection to the destination
  | 'fail' // rejects at once, like a link without a route
  | 'denied'; // rejects like a relay node whose destination policy refuses (SOCKS5 reply 0x02)

type UdpMode = 'ok' | 'tcp-only' | 'broken';

class FakeLink implements Link {
  readonly description: string;
  capabilities: Link['capabilities'] = { udp: true, remoteNames: false, families: new Set<4 | 6>([4, 6]) };
  mode: Mode = 'ok';
  udpMode: UdpMode = 'ok';
  connects = 0;
  udpOpens = 0;
  readonly dialed: Destination[] = [];
  readonly sockets = new Set<Socket>();
  readonly udpSockets = new Set<UdpSocket>();

  constructor(readonly id: string) {
    this.description = `fake link ${id}`;
  }

  async connect(dst: Destination, _opts: ConnectOptions = {}): Promise<Socket> {
    this.connects++;
    this.dialed.push(dst);
    const where = `${dst.host}:${dst.port}`;
    switch (this.mode) {
      case 'fail':
        throw new LinkmuxError(
          'LINKMUX_ERR_CONNECT',
          `link ${this.id}: cannot connect to ${where}: no route`,
          {
            cause: Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' }),
          },
        );
      case 'denied':
        throw new LinkmuxError(
          'LINKMUX_ERR_DENIED',
          `link ${this.id}: the node refuses ${where} (its destination policy)`,
        );
      case 'ok': {
        const socket = net.connect({ host: dst.host, port: dst.port });
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        await once(socket, 'connect');
        return socket;
      }
    }
  }

  async openUdp(family: 4 | 6): Promise<UdpSocket> {
    this.udpOpens++;
    switch (this.udpMode) {
      case 'tcp-only':
        throw new LinkmuxError(
          'LINKMUX_ERR_LINK_CAPABILITY',
          `link ${this.id} relays TCP only (UDP through node ${this.id} is not supported): UDP uses other links`,
        );
      case 'broken':
        throw new LinkmuxError(
          'LINKMUX_ERR_BIND_FAILED',
          `link ${this.id}: cannot bind a UDP socket: EADDRNOTAVAIL`,
        );
      case 'ok': {
        const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
        socket.bind(0, family === 4 ? '127.0.0.1' : '::1');
        await once(socket, 'listening');
        this.udpSockets.add(socket);
        socket.once('close', () => this.udpSockets.delete(socket));
        return socket;
      }
    }
  }

  stats(): LinkStats {
    return { bytesIn: 0, bytesOut: 0, activeConnections: this.sockets.size, connectFailures: 0 };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  destroy(): void {
    for (const s of this.sockets) s.destroy();
    for (const s of this.udpSockets) {
      // A socket closed a moment ago is still in the set until its 'close' event.
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  }
}

/** Always picks `id` first (the failover order after it is the dialer's business). */
function fixed(id: string): Policy {
  return { name: `fixed:${id}`, pick: (links) => (links.some((l) => l.id === id) ? id : undefined) };
}

/** The local destination: accepts and answers "hi"; `acceptCount` counts every connection ever made. */
const accepted = new Set<Socket>();
let acceptCount = 0;
const server = net.createServer((s) => {
  acceptCount++;
  accepted.add(s);
  s.once('close', () => accepted.delete(s));
  s.on('error', () => {});
  s.write('hi');
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = (server.address() as AddressInfo).port;
const dst: Destination = { host: '127.0.0.1', port };
after(() => {
  for (const s of accepted) s.destroy();
  server.close();
});

/** Names resolve to the local server; the lookups are recorded. */
const NAMES: Record<string, string> = { 'app.example': '127.0.0.1', 'intranet.example': '127.0.0.1' };

function setup(
  ids: string[],
  opts: {
    policy?: Policy;
    rules?: Rule[];
    state?: (id: string) => LinkState;
  } & Partial<Pick<PoolDialerOptions, 'guard' | 'attempts' | 'staggerMs'>> = {},
) {
  const links = ids.map((id) => new FakeLink(id));
  const { policy, rules, state, ...rest } = opts;
  const pool = new LinkPool(links, state ? { stateOf: state } : {});
  const reports: Array<[string, HealthInput]> = [];
  const oks: Array<[string, HealthInput]> = [];
  const lookups: string[] = [];
  const guarded: string[] = [];
  const guard = rest.guard;
  const dialer = new PoolDialer({
    pool,
    policy: policy ?? fixed(ids[0]!),
    rules: new RuleSet(rules ?? [], false),
    // Successes go apart, so the failure reports below are checked exactly.
    report: (id, input) => (input.type === 'connect-ok' ? oks : reports).push([id, input]),
    resolve: (host): Promise<ResolvedAddress> => {
      lookups.push(host);
      const address = net.isIP(host) ? host : NAMES[host];
      if (address === undefined)
        return Promise.reject(new LinkmuxError('LINKMUX_ERR_DNS', `${host}: unknown`));
      return Promise.resolve({ address, family: net.isIPv6(address) ? 6 : 4 });
    },
    staggerMs: 1_000,
    connectTimeoutMs: 2_000,
    ...rest,
    ...(guard
      ? {
          guard: (ip: string) => {
            guarded.push(ip);
            return guard(ip);
          },
        }
      : {}),
  });
  const byId = (id: string) => links.find((l) => l.id === id) as FakeLink;
  after(() => {
    for (const l of links) l.destroy();
  });
  void oks; // connect-ok reports are checked in pool-dialer.test.ts
  return { links, dialer, reports, lookups, guarded, byId };
}

async function rejects(p: Promise<unknown>, code: ErrorCode): Promise<LinkmuxError> {
  const err = await p.then(
    () => assert.fail(`expected ${code}, it succeeded`),
    (e: unknown) => e,
  );
  assert.ok(isLinkmuxError(err, code), `expected ${code}, got ${String(err)}`);
  return err;
}

async function greeting(socket: Socket): Promise<string> {
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  return chunk.toString();
}

async function eventually(check: () => boolean, what: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const noLoopback = (ip: string) =>
  ip.startsWith('127.') || ip === '::1'
    ? { allowed: false as const, reason: 'loopback is not relayed' }
    : { allowed: true as const };

// --- guard ------------------------------------------------------------------------

test('the guard refuses the resolved address with LINKMUX_ERR_DENIED before any link is tried', async () => {
  const { dialer, links, reports, guarded, lookups } = setup(['a', 'b'], { guard: noLoopback });
  const before = acceptCount;
  const err = await rejects(dialer.dial({ host: 'app.example', port }), 'LINKMUX_ERR_DENIED');
  assert.deepEqual(lookups, ['app.example']);
  assert.deepEqual(guarded, ['127.0.0.1'], 'the guard saw the address, not the name');
  assert.match(err.message, /app\.example:\d+: loopback is not relayed/);
  assert.deepEqual(
    links.map((l) => l.connects),
    [0, 0],
  );
  assert.deepEqual(reports, []);
  assert.deepEqual(dialer.stats(), { active: 0, total: 1, failed: 1 });
  await sleep(20);
  assert.equal(acceptCount, before, 'nothing reached the destination');
});

test('the guard wins over a direct rule and over ctx.link', async () => {
  const { dialer, links } = setup(['a', 'b'], {
    guard: noLoopback,
    rules: [{ match: { port }, action: 'direct' }],
  });
  const before = acceptCount;
  await rejects(dialer.dial(dst), 'LINKMUX_ERR_DENIED');
  await rejects(dialer.dial(dst, { link: 'b' }), 'LINKMUX_ERR_DENIED');
  assert.deepEqual(
    links.map((l) => l.connects),
    [0, 0],
  );
  await sleep(20);
  assert.equal(acceptCount, before, 'the direct rule did not connect either');
});

test('an address the guard allows is dialed as usual', async () => {
  const { dialer, guarded } = setup(['a'], { guard: () => ({ allowed: true }) });
  const { socket, link } = await dialer.dial({ host: 'intranet.example', port });
  assert.equal(link, 'a');
  assert.deepEqual(guarded, ['127.0.0.1']);
  assert.equal(await greeting(socket), 'hi');
  socket.destroy();
});

// --- ctx.link -----------------------------------------------------------------------

test('ctx.link dials only that link, whatever the policy would pick', async () => {
  const { dialer, links } = setup(['a', 'b', 'c'], { policy: fixed('a') });
  const { socket, link } = await dialer.dial(dst, { link: 'c' });
  assert.equal(link, 'c');
  assert.equal(await greeting(socket), 'hi');
  assert.deepEqual(
    links.map((l) => l.connects),
    [0, 0, 1],
  );
  assert.equal(dialer.connectionsOn('c'), 1);
  socket.destroy();
  await eventually(() => dialer.connectionsOn('c') === 0, 'c released');
});

test('ctx.link failing: its own error, reported, and no failover to other links', async () => {
  const { dialer, links, byId, reports } = setup(['a', 'b', 'c'], { policy: fixed('a') });
  byId('b').mode = 'fail';
  const err = await rejects(dialer.dial(dst, { link: 'b' }), 'LINKMUX_ERR_CONNECT');
  assert.match(err.message, /^link b: /);
  assert.deepEqual(
    links.map((l) => l.connects),
    [0, 1, 0],
  );
  assert.deepEqual(
    reports.map(([id, input]) => [id, input.type]),
    [['b', 'connect-failed']],
  );
});

test('ctx.link naming a link the pool lacks: LINKMUX_ERR_LINK_UNKNOWN naming it', async () => {
  const { dialer, links } = setup(['a', 'b']);
  const err = await rejects(dialer.dial(dst, { link: 'wwan9' }), 'LINKMUX_ERR_LINK_UNKNOWN');
  assert.match(err.message, /wwan9/);
  assert.deepEqual(
    links.map((l) => l.connects),
    [0, 0],
  );
});

// --- DENIED from a relay ------------------------------------------------------------

test("a relay's LINKMUX_ERR_DENIED is not reported to health; the next link is tried", async () => {
  const { dialer, links, byId, reports } = setup(['a', 'b', 'c'], { policy: fixed('a') });
  byId('a').mode = 'denied';
  const { socket, link } = await dialer.dial(dst);
  assert.equal(link, 'b');
  assert.deepEqual(
    links.map((l) => l.connects),
    [1, 1, 0],
  );
  assert.deepEqual(reports, [], 'a refused destination says nothing about the link');
  socket.destroy();
});

test('DENIED is not reported while other failures in the same race are', async () => {
  const { dialer, links, byId, reports } = setup(['a', 'b', 'c'], { policy: fixed('a') });
  byId('a').mode = 'denied';
  byId('b').mode = 'fail';
  byId('c').mode = 'denied';
  await assert.rejects(dialer.dial(dst));
  assert.deepEqual(
    links.map((l) => l.connects),
    [1, 1, 1],
  );
  assert.deepEqual(
    reports.map(([id, input]) => [id, input.type]),
    [['b', 'connect-failed']],
  );
});

test('ctx.link refused by its relay: LINKMUX_ERR_DENIED comes back, nothing reported', async () => {
  const { dialer, byId, reports } = setup(['a', 'b']);
  byId('b').mode = 'denied';
  const err = await rejects(dialer.dial(dst, { link: 'b' }), 'LINKMUX_ERR_DENIED');
  assert.match(err.message, /destination policy/);
  assert.deepEqual(reports, []);
});

test('every candidate refusing the destination: LINKMUX_ERR_DENIED (so SOCKS5 answers 0x02), not CONNECT', async () => {
  const { dialer, links, reports } = setup(['node/eth0', 'node/wlan0']);
  for (const l of links) l.mode = 'denied';
  await rejects(dialer.dial(dst), 'LINKMUX_ERR_DENIED');
  assert.deepEqual(reports, []);
});

// --- openUdp --------------------------------------------------------------------------

/** A relay: declares no UDP (and would refuse it if asked). */
function tcpOnly(link: FakeLink): void {
  link.capabilities = { ...link.capabilities, udp: false };
  link.udpMode = 'tcp-only';
}

test('openUdp: the policy sees only links that declare UDP; a relay is never asked', async () => {
  const seen: string[][] = [];
  const first: Policy = {
    name: 'first',
    pick: (links) => {
      seen.push(links.map((l) => l.id));
      return links[0]?.id;
    },
  };
  const { dialer, byId } = setup(['relay', 'eth0', 'wlan0'], { policy: first });
  tcpOnly(byId('relay'));
  const { socket, link } = await dialer.openUdp(4);
  assert.equal(link, 'eth0');
  assert.deepEqual(seen, [['eth0', 'wlan0']]);
  assert.equal(byId('relay').udpOpens, 0, 'capabilities are read, not discovered by a refusal');
  assert.equal(byId('eth0').udpOpens, 1);
  assert.equal(byId('wlan0').udpOpens, 0, 'the first link that can carry UDP wins');
  assert.equal(socket.address().address, '127.0.0.1', 'a real, bound socket');
  assert.equal(dialer.connectionsOn('eth0'), 1, 'the association is counted on its link');
  assert.equal(dialer.connectionsOn('relay'), 0);
  socket.close();
  await eventually(() => dialer.connectionsOn('eth0') === 0, 'eth0 released');
});

test("openUdp uses the policy's pick when it can carry UDP", async () => {
  const { dialer, byId } = setup(['eth0', 'wlan0'], { policy: fixed('wlan0') });
  const { socket, link } = await dialer.openUdp(4);
  assert.equal(link, 'wlan0');
  assert.equal(byId('eth0').udpOpens, 0);
  socket.close();
});

test('openUdp with only relays: LINKMUX_ERR_LINK_CAPABILITY naming them, no link asked', async () => {
  const { dialer, links } = setup(['node/eth0', 'node/wlan0'], { policy: fixed('node/eth0') });
  for (const l of links) tcpOnly(l);
  const err = await rejects(dialer.openUdp(4), 'LINKMUX_ERR_LINK_CAPABILITY');
  assert.match(err.message, /no link can carry UDP: node\/eth0, node\/wlan0 are relays/);
  assert.match(err.message, /add a local link for UDP/);
  assert.deepEqual(
    links.map((l) => l.udpOpens),
    [0, 0],
    'no link asked',
  );
  for (const l of links) assert.equal(dialer.connectionsOn(l.id), 0);
});

test('openUdp where the UDP links fail: LINKMUX_ERR_NO_LINKS with the last failure', async () => {
  const { dialer, byId } = setup(['node/eth0', 'eth1'], { policy: fixed('eth1') });
  tcpOnly(byId('node/eth0'));
  byId('eth1').udpMode = 'broken';
  const broken = await rejects(dialer.openUdp(4), 'LINKMUX_ERR_NO_LINKS');
  assert.match(broken.message, /no online link can carry UDP/);
  assert.match(broken.message, /EADDRNOTAVAIL/);
  assert.equal(byId('node/eth0').udpOpens, 0);
});

test('openUdp with no link online: LINKMUX_ERR_NO_LINKS without asking any link', async () => {
  const { dialer, links } = setup(['eth0', 'wlan0'], {
    policy: createPolicy('adaptive'),
    state: () => 'offline',
  });
  const err = await rejects(dialer.openUdp(4), 'LINKMUX_ERR_NO_LINKS');
  assert.match(err.message, /no link is online/);
  assert.deepEqual(
    links.map((l) => l.udpOpens),
    [0, 0],
  );
});
