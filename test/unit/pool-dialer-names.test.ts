/**
 * PoolDialer and where names are resolved (issue 10): a link that resolves
 * names on the far side (a node, a SOCKS5 upstream) receives the NAME; a local
 * link receives the address the dialer resolved; a lookup that fails locally
 * still lets the name go to such links unless an address rule must judge it;
 * a destination of a family no candidate link has is LINKMUX_ERR_NO_ROUTE
 * (SOCKS5 0x04), touches no link and is no health signal.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Destination, Link, LinkStats } from '../../src/links/link.js';
import { LinkPool } from '../../src/scheduler/link-pool.js';
import type { HealthInput } from '../../src/health/state-machine.js';
import { PoolDialer } from '../../src/proxy/pool-dialer.js';
import { RuleSet, type Rule } from '../../src/proxy/rules.js';
import { replyCodeForDialError, REP } from '../../src/socks5/socks5-replies.js';
import type { Policy } from '../../src/scheduler/snapshot.js';
import { LinkmuxError, isLinkmuxError } from '../../src/util/errors.js';

const server = net.createServer((s) => {
  s.on('error', () => {});
  s.end('hi');
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = (server.address() as AddressInfo).port;
after(() => server.close());

class NameLink implements Link {
  readonly description: string;
  readonly dialed: string[] = [];
  readonly capabilities: Link['capabilities'];
  constructor(
    readonly id: string,
    remote: boolean,
    families: Array<4 | 6> = [4],
  ) {
    this.description = `fake ${id}`;
    this.capabilities = { udp: !remote, remoteNames: remote, families: new Set(families) };
  }
  async connect(dst: Destination): Promise<Socket> {
    this.dialed.push(dst.host);
    const socket = net.connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    return socket;
  }
  openUdp(): never {
    throw new Error('not used');
  }
  stats(): LinkStats {
    return { bytesIn: 0, bytesOut: 0, activeConnections: 0, connectFailures: 0 };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): void {}
}

function prefer(...ids: string[]): Policy {
  return { name: 'prefer', pick: (links) => ids.find((id) => links.some((l) => l.id === id)) };
}

function setup(
  links: NameLink[],
  opts: { rules?: Rule[]; resolve?: (host: string) => string; policy?: Policy } = {},
) {
  const lookups: string[] = [];
  const reports: Array<[string, HealthInput]> = [];
  const dialer = new PoolDialer({
    pool: new LinkPool(links, { stateOf: () => 'online' }),
    policy: opts.policy ?? prefer(...links.map((l) => l.id)),
    rules: new RuleSet(opts.rules ?? [], false),
    report: (id, input) => reports.push([id, input]),
    staggerMs: 50,
    resolve: async (host) => {
      lookups.push(host);
      const address = opts.resolve ? opts.resolve(host) : '127.0.0.1';
      return { address, family: net.isIPv6(address) ? 6 : 4 };
    },
  });
  return { dialer, lookups, reports };
}

test('a node link alone receives the name, and nothing is looked up here', async () => {
  const node = new NameLink('pc/up1', true);
  const { dialer, lookups } = setup([node]);
  const { socket, link } = await dialer.dial({ host: 'files.test', port: 80 });
  socket.destroy();
  assert.equal(link, 'pc/up1');
  assert.deepEqual(node.dialed, ['files.test']);
  assert.deepEqual(lookups, []);
});

test('with local links too, the name is resolved here for them, and the node still gets the name', async () => {
  const local = new NameLink('eth0', false);
  const node = new NameLink('pc/up1', true);
  const { dialer, lookups } = setup([local, node], { policy: prefer('pc/up1') });
  const first = await dialer.dial({ host: 'files.test', port: 80 });
  first.socket.destroy();
  assert.deepEqual(node.dialed, ['files.test']);
  assert.deepEqual(lookups, ['files.test']);
  const { dialer: d2 } = setup([local, node], { policy: prefer('eth0') });
  const second = await d2.dial({ host: 'files.test', port: 80 });
  second.socket.destroy();
  assert.deepEqual(local.dialed, ['127.0.0.1'], 'the local link gets the address');
});

test('a failed local lookup lets the name go to the node; an address rule makes it fail instead', async () => {
  const local = new NameLink('eth0', false);
  const node = new NameLink('pc/up1', true);
  const failing = () => {
    throw new LinkmuxError('LINKMUX_ERR_DNS', 'cannot resolve lan.test: no such host');
  };
  const { dialer } = setup([local, node], { resolve: failing });
  const { socket, link } = await dialer.dial({ host: 'lan.test', port: 80 });
  socket.destroy();
  assert.equal(link, 'pc/up1');
  assert.deepEqual(node.dialed, ['lan.test']);
  assert.deepEqual(local.dialed, [], 'a local link cannot take a name that did not resolve');

  const ruled = setup([new NameLink('eth0', false), new NameLink('pc/up1', true)], {
    resolve: failing,
    rules: [{ match: { cidr: '192.0.2.0/24' }, action: 'deny' }],
  });
  await assert.rejects(ruled.dialer.dial({ host: 'lan.test', port: 80 }), (err) =>
    isLinkmuxError(err, 'LINKMUX_ERR_DNS'),
  );
});

test('an IPv6 destination over IPv4-only links: NO_ROUTE (SOCKS5 0x04), no link touched, no health signal', async () => {
  const a = new NameLink('eth0', false, [4]);
  const b = new NameLink('wlan0', false, [4]);
  const { dialer, reports } = setup([a, b]);
  for (const host of ['2001:db8::1', '[2001:db8::1]']) {
    const err = await dialer.dial({ host, port: 443 }).then(
      () => assert.fail('dialled'),
      (e: unknown) => e,
    );
    assert.ok(isLinkmuxError(err, 'LINKMUX_ERR_NO_ROUTE'), String(err));
    assert.match((err as Error).message, /an IPv6 destination and no link has an IPv6 address/);
    assert.equal(replyCodeForDialError(err), REP.HOST_UNREACHABLE);
  }
  const named = setup([a, b], { resolve: () => '2001:db8::7' });
  await assert.rejects(named.dialer.dial({ host: 'v6only.test', port: 443 }), (err) =>
    isLinkmuxError(err, 'LINKMUX_ERR_NO_ROUTE'),
  );
  assert.deepEqual([...a.dialed, ...b.dialed], []);
  assert.deepEqual([...reports, ...named.reports], []);
});

test('an IPv6 destination goes to the link that has IPv6; ctx.link on an IPv4-only link is NO_ROUTE', async () => {
  const v4 = new NameLink('eth0', false, [4]);
  const v6 = new NameLink('wlan0', false, [4, 6]);
  const { dialer } = setup([v4, v6]);
  const { socket, link } = await dialer.dial({ host: '2001:db8::1', port: 443 });
  socket.destroy();
  assert.equal(link, 'wlan0');
  await assert.rejects(dialer.dial({ host: '2001:db8::1', port: 443 }, { link: 'eth0' }), (err) =>
    isLinkmuxError(err, 'LINKMUX_ERR_NO_ROUTE'),
  );
  assert.deepEqual(v4.dialed, []);
});

test('udpDestination: a name resolves through the dialer; a deny rule and the own-host guard drop it', async () => {
  const local = new NameLink('eth0', false);
  const { dialer, lookups } = setup([local], {
    rules: [{ match: { domain: 'blocked.test' }, action: 'deny' }],
    resolve: (host) => (host === 'home.test' ? '127.0.0.1' : '198.18.7.7'),
  });
  assert.equal(await dialer.udpDestination({ host: 'files.test', port: 53 }), '198.18.7.7');
  assert.deepEqual(lookups, ['files.test']);
  assert.equal(await dialer.udpDestination({ host: 'blocked.test', port: 53 }), undefined);
  assert.equal(await dialer.udpDestination({ host: '[2001:db8::1]', port: 53 }), '2001:db8::1');

  const guarded = new PoolDialer({
    pool: new LinkPool([local], { stateOf: () => 'online' }),
    policy: prefer('eth0'),
    rules: new RuleSet([], false),
    resolve: async () => ({ address: '127.0.0.1', family: 4 }),
    clientGuard: (ip, ctx) =>
      ip === '127.0.0.1' && ctx.clientIp !== '127.0.0.1'
        ? { allowed: false, reason: 'loopback of this host' }
        : { allowed: true },
  });
  assert.equal(
    await guarded.udpDestination({ host: 'home.test', port: 53 }, { clientIp: '198.18.100.5' }),
    undefined,
  );
  assert.equal(
    await guarded.udpDestination({ host: 'home.test', port: 53 }, { clientIp: '127.0.0.1' }),
    '127.0.0.1',
  );
});
