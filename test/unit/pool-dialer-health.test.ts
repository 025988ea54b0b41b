/**
 * What PoolDialer tells the health monitor, for the passive rule: a successful
 * connect is reported with the address it reached (learned targets come from
 * there); a failure says whether it was a timeout or an unreachable network;
 * a race loser left unanswered for the stagger (at least 1 s) while another
 * link connected is reported as a timeout, since its own connect timeout
 * never fires. Fake links: "ok" opens a real loopback socket to a local server.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import type { ConnectOptions, Destination, Link, LinkStats } from '../../src/links/link.js';
import { LinkPool } from '../../src/scheduler/link-pool.js';
import { PoolDialer } from '../../src/proxy/pool-dialer.js';
import { RuleSet } from '../../src/proxy/rules.js';
import type { HealthInput } from '../../src/health/state-machine.js';
import type { Policy } from '../../src/scheduler/snapshot.js';
import { LinkmuxError } from '../../src/util/errors.js';

const server = net.createServer((s) => s.on('error', () => {}).end());
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const dst: Destination = { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
after(() => server.close());

class FakeLink implements Link {
  readonly description = 'fake';
  capabilities: Link['capabilities'] = { udp: false, remoteNames: false, families: new Set<4 | 6>([4]) };
  constructor(
    readonly id: string,
    readonly mode: 'ok' | 'unreachable' | 'hang',
  ) {}
  async connect(to: Destination, opts: ConnectOptions = {}): Promise<Socket> {
    if (this.mode === 'unreachable') {
      throw new LinkmuxError('LINKMUX_ERR_CONNECT', `${this.id}: no route`, {
        cause: Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' }),
      });
    }
    if (this.mode === 'hang') {
      return new Promise<Socket>((_, reject) =>
        opts.signal?.addEventListener('abort', () =>
          reject(new LinkmuxError('LINKMUX_ERR_ABORTED', 'aborted')),
        ),
      );
    }
    const socket = net.connect({ host: to.host, port: to.port });
    socket.on('error', () => {});
    await once(socket, 'connect');
    return socket;
  }
  openUdp(): Promise<UdpSocket> {
    return Promise.reject(new Error('no UDP'));
  }
  stats(): LinkStats {
    return { bytesIn: 0, bytesOut: 0, activeConnections: 0, connectFailures: 0 };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): void {}
}

const first = (id: string): Policy => ({ name: 'first', pick: () => id });

function setup(links: FakeLink[], staggerMs: number) {
  const reports: Array<[string, HealthInput]> = [];
  const dialer = new PoolDialer({
    pool: new LinkPool(links),
    policy: first(links[0]!.id),
    rules: new RuleSet([], false),
    report: (id, input) => reports.push([id, input]),
    staggerMs,
    connectTimeoutMs: 10_000,
  });
  return { dialer, reports };
}

test('a success reports connect-ok with the address reached; no route is reported as unreachable', async () => {
  const { dialer, reports } = setup([new FakeLink('a', 'unreachable'), new FakeLink('b', 'ok')], 5_000);
  const { socket, link } = await dialer.dial(dst);
  assert.equal(link, 'b');
  assert.deepEqual(reports, [
    ['a', { type: 'connect-failed', reason: 'a: no route (LINKMUX_ERR_CONNECT)', kind: 'unreachable' }],
    ['b', { type: 'connect-ok', dst }],
  ]);
  socket.destroy();
});

test('a race loser unanswered for the stagger (>= 1 s) while another link connected: a timeout', async () => {
  const { dialer, reports } = setup([new FakeLink('a', 'hang'), new FakeLink('b', 'ok')], 1_000);
  const { socket, link } = await dialer.dial(dst);
  assert.equal(link, 'b');
  for (let i = 0; i < 100 && reports.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(reports[0], ['b', { type: 'connect-ok', dst }]);
  const [id, input] = reports[1] ?? [];
  assert.equal(id, 'a');
  assert.equal(input?.type === 'connect-failed' && input.kind, 'timeout');
  assert.match(
    (input as { reason: string }).reason,
    /^no connection to 127\.0\.0\.1:\d+ in 1\d\d\d ms while another link connected$/,
  );
  socket.destroy();
});

test('a loser that had less than 1 s alone is not reported: losing a quick race is no failure', async () => {
  const { dialer, reports } = setup([new FakeLink('a', 'hang'), new FakeLink('b', 'ok')], 200);
  const { socket } = await dialer.dial(dst);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(reports, [['b', { type: 'connect-ok', dst }]]);
  socket.destroy();
});
