/**
 * PoolDialer over FAKE links: each fake's connect() opens a real socket to a
 * local TCP server, or fails, is refused, hangs (until aborted or its timeout)
 * or connects late ignoring the abort, as a test sets it. A LinkPool sits over
 * the fakes as in the daemon. What is checked: the policy's pick is used;
 * failover is immediate on failure and staggered on a hang; the race's loser
 * is aborted and a late connection destroyed; a refusal ends the race; every
 * failure that blames a link is reported; deny and direct rules; busy counting
 * spreads a burst; counts go back to 0; the caller's AbortSignal ends it all.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectOptions, Destination, Link, LinkStats } from '../../src/links/link.js';
import { LinkPool } from '../../src/scheduler/link-pool.js';
import type { HealthInput, LinkState } from '../../src/health/state-machine.js';
import { PoolDialer } from '../../src/proxy/pool-dialer.js';
import type { PoolDialerOptions } from '../../src/proxy/pool-dialer.js';
import { RuleSet } from '../../src/proxy/rules.js';
import type { Rule } from '../../src/proxy/rules.js';
import { createPolicy } from '../../src/scheduler/policies.js';
import type { Policy } from '../../src/scheduler/snapshot.js';
import { FakeClock } from '../../src/util/clock.js';
import { LinkmuxError, isLinkmuxError, systemCode } from '../../src/util/errors.js';
import type { ErrorCode } from '../../src/util/errors.js';

// --- fixtures -------------------------------------------------------------------

/** What a fake link's next connects do. */
type Mode =
  | 'ok' // a real connection to the destination
  | 'fail' // rejects at once, like a link without a route
  | 'refused' // rejects like a destination that refused (LINKMUX_ERR_REFUSED)
  | 'hang' // never connects; rejects when aborted or after timeoutMs
  | 'late'; // connects after lateMs whatever the signal says (a link that ignores aborts)

class FakeLink implements Link {
  readonly description: string;
  capabilities: Link['capabilities'] = { udp: true, remoteNames: false, families: new Set<4 | 6>([4, 6]) };
  mode: Mode = 'ok';
  lateMs = 300;
  connects = 0;
  readonly signals: AbortSignal[] = [];
  readonly sockets = new Set<Socket>();

  constructor(readonly id: string) {
    this.description = `fake link ${id}`;
  }

  async connect(dst: Destination, opts: ConnectOptions = {}): Promise<Socket> {
    this.connects++;
    const signal = opts.signal ?? new AbortController().signal;
    this.signals.push(signal);
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
      case 'refused':
        throw new LinkmuxError('LINKMUX_ERR_REFUSED', `link ${this.id}: ${where}: connection refused`);
      case 'hang':
        return new Promise<Socket>((_, reject) => {
          const timer = setTimeout(
            () => reject(new LinkmuxError('LINKMUX_ERR_TIMEOUT', `link ${this.id}: ${where} timed out`)),
            opts.timeoutMs ?? 10_000,
          );
          const onAbort = () => {
            clearTimeout(timer);
            reject(new LinkmuxError('LINKMUX_ERR_ABORTED', `link ${this.id}: aborted`));
          };
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        });
      case 'late':
        await sleep(this.lateMs);
        return this.open(dst);
      case 'ok':
        return this.open(dst);
    }
  }

  private async open(dst: Destination): Promise<Socket> {
    const socket = net.connect({ host: dst.host, port: dst.port });
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    try {
      await once(socket, 'connect');
      return socket;
    } catch (err) {
      socket.destroy();
      // As LocalLink does: the link that heard the refusal says so in the code.
      const refused = systemCode(err) === 'ECONNREFUSED';
      throw new LinkmuxError(
        refused ? 'LINKMUX_ERR_REFUSED' : 'LINKMUX_ERR_CONNECT',
        `link ${this.id}: ${String(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  openUdp(): Promise<UdpSocket> {
    return Promise.reject(new Error('not used'));
  }

  stats(): LinkStats {
    return { bytesIn: 0, bytesOut: 0, activeConnections: this.sockets.size, connectFailures: 0 };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  destroy(): void {
    for (const s of this.sockets) s.destroy();
  }
}

/** Always picks `id` first (the failover order after it is the dialer's business). */
function fixed(id: string): Policy {
  return { name: `fixed:${id}`, pick: (links) => (links.some((l) => l.id === id) ? id : undefined) };
}

/** The local destination: accepts, answers "hi", counts what is open. */
const sockets = new Set<Socket>();
const server = net.createServer((s) => {
  sockets.add(s);
  s.once('close', () => sockets.delete(s));
  s.on('error', () => {});
  s.write('hi');
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = (server.address() as AddressInfo).port;
const dst: Destination = { host: '127.0.0.1', port };
after(() => {
  for (const s of sockets) s.destroy();
  server.close();
});

interface Setup {
  links: FakeLink[];
  dialer: PoolDialer;
  reports: Array<[string, HealthInput]>;
  byId: (id: string) => FakeLink;
}

function setup(
  ids: string[],
  opts: {
    policy?: Policy;
    rules?: Rule[];
    privateDirect?: boolean;
    state?: (id: string) => LinkState;
  } & Partial<
    Pick<PoolDialerOptions, 'attempts' | 'staggerMs' | 'connectTimeoutMs' | 'clock' | 'policies'>
  > = {},
): Setup {
  const links = ids.map((id) => new FakeLink(id));
  const { policy, rules, privateDirect, state, ...rest } = opts;
  const pool = new LinkPool(links, {
    ...(state ? { stateOf: state } : {}),
    ...(rest.clock ? { clock: rest.clock } : {}),
  });
  const reports: Array<[string, HealthInput]> = [];
  const oks: Array<[string, HealthInput]> = [];
  const dialer = new PoolDialer({
    pool,
    policy: policy ?? createPolicy('adaptive'),
    rules: new RuleSet(rules ?? [], privateDirect ?? false),
    // Successes go apart, so the failure reports below are checked exactly.
    report: (id, input) => (input.type === 'connect-ok' ? oks : reports).push([id, input]),
    staggerMs: 1_000,
    connectTimeoutMs: 2_000,
    ...rest,
  });
  const byId = (id: string) => links.find((l) => l.id === id) as FakeLink;
  void oks; // connect-ok reports are checked in pool-dialer-health.test.ts
  return { links, dialer, reports, byId };
}

async function rejects(p: Promise<unknown>, code: ErrorCode): Promise<LinkmuxError> {
  const err = await p.then(
    () => assert.fail(`expected ${code}, the dial succeeded`),
    (e: unknown) => e,
  );
  assert.ok(isLinkmuxError(err, code), `expected ${code}, got ${String(err)}`);
  return err;
}

/** Polls until `check` holds (bounded). */
async function eventually(check: () => boolean, what: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Reads the server's greeting: proves the socket really reaches the destination. */
async function greeting(socket: Socket): Promise<string> {
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  return chunk.toString();
}

// --- tests ------------------------------------------------------------------------

test("the policy's first pick carries the connection; no other link is touched", async () => {
  const { dialer, byId, reports } = setup(['a', 'b', 'c'], { policy: fixed('b') });
  const { socket, link } = await dialer.dial(dst);
  assert.equal(link, 'b');
  assert.equal(await greeting(socket), 'hi');
  assert.deepEqual(
    ['a', 'b', 'c'].map((id) => byId(id).connects),
    [0, 1, 0],
  );
  assert.equal(dialer.connectionsOn('b'), 1);
  assert.deepEqual(reports, []);
  socket.destroy();
  await eventually(() => dialer.connectionsOn('b') === 0, 'b released');
});

test('a failing link fails over to the next at once and is reported', async () => {
  const { dialer, byId, reports } = setup(['a', 'b', 'c'], { policy: fixed('a'), staggerMs: 5_000 });
  byId('a').mode = 'fail';
  const started = Date.now();
  const { socket, link } = await dialer.dial(dst);
  const elapsed = Date.now() - started;
  assert.equal(link, 'b', 'the next in failover order (ties: snapshot order)');
  assert.ok(elapsed < 1_000, `failover waited ${elapsed} ms instead of going on at once`);
  assert.equal(byId('c').connects, 0);
  assert.equal(reports.length, 1);
  const [id, input] = reports[0]!;
  assert.equal(id, 'a');
  assert.equal(input.type, 'connect-failed');
  assert.match((input as { reason: string }).reason, /no route/);
  assert.equal(dialer.connectionsOn('a'), 0, 'the failed attempt holds nothing');
  socket.destroy();
});

test('a hanging link is raced after staggerMs; the first success wins and the loser is aborted', async () => {
  const { dialer, byId, reports } = setup(['a', 'b', 'c'], { policy: fixed('a'), staggerMs: 100 });
  byId('a').mode = 'hang';
  const started = Date.now();
  const { socket, link } = await dialer.dial(dst);
  const elapsed = Date.now() - started;
  assert.equal(link, 'b');
  assert.ok(elapsed >= 90, `b started after ${elapsed} ms, before the stagger`);
  assert.ok(elapsed < 1_000, `took ${elapsed} ms`);
  assert.equal(byId('a').signals[0]?.aborted, true, "the loser's signal fired");
  assert.equal(byId('b').signals[0]?.aborted, false, "the winner's signal stays quiet");
  assert.equal(await greeting(socket), 'hi', "the winner's socket is alive and carries data");
  assert.equal(byId('c').connects, 0, 'c never joined: b won before its turn');
  assert.deepEqual(reports, [], 'losing a race is not a failure of the link');
  await eventually(() => dialer.connectionsOn('a') === 0, 'the aborted attempt released');
  socket.destroy();
});

test('a link that connects after losing the race has that socket destroyed', async () => {
  await eventually(() => sockets.size === 0, 'earlier tests closed');
  const { dialer, byId } = setup(['a', 'b'], { policy: fixed('a'), staggerMs: 50 });
  byId('a').mode = 'late';
  byId('a').lateMs = 250;
  byId('b').mode = 'late';
  byId('b').lateMs = 20;
  const { socket, link } = await dialer.dial(dst);
  assert.equal(link, 'b');
  assert.equal(byId('a').signals[0]?.aborted, true);
  // a's socket arrives ~250 ms in, after the race was settled: it must not survive.
  await eventually(
    () => byId('a').connects === 1 && byId('a').sockets.size === 0 && sockets.size === 1,
    'late socket gone',
  );
  await sleep(300);
  assert.equal(byId('a').sockets.size, 0);
  assert.equal(dialer.connectionsOn('a'), 0);
  assert.equal(dialer.connectionsOn('b'), 1);
  socket.destroy();
  await eventually(() => sockets.size === 0, 'server side closed');
});

test('LINKMUX_ERR_REFUSED ends the race: no failover, no health report (a fake refusal and a real one)', async () => {
  const fake = setup(['a', 'b', 'c'], { policy: fixed('a') });
  fake.byId('a').mode = 'refused';
  const err = await rejects(fake.dialer.dial(dst), 'LINKMUX_ERR_REFUSED');
  assert.match(err.message, /refused/);
  assert.deepEqual(
    fake.links.map((l) => l.connects),
    [1, 0, 0],
  );
  assert.deepEqual(fake.reports, []);

  // A real refusal from a port where nothing listens, through an 'ok' link.
  const dead = net.createServer().listen(0, '127.0.0.1');
  await once(dead, 'listening');
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise((r) => dead.close(r));
  const real = setup(['a', 'b'], { policy: fixed('a') });
  await rejects(real.dialer.dial({ host: '127.0.0.1', port: deadPort }), 'LINKMUX_ERR_REFUSED');
  assert.deepEqual(
    real.links.map((l) => l.connects),
    [1, 0],
  );
  assert.deepEqual(real.reports, []);
  assert.equal(real.dialer.stats().failed, 1);
});

test('every link failing: one error naming the links; each failure reported once', async () => {
  const { dialer, links, reports } = setup(['a', 'b', 'c'], { policy: fixed('b') });
  for (const l of links) l.mode = 'fail';
  const err = await rejects(dialer.dial(dst), 'LINKMUX_ERR_CONNECT');
  assert.match(err.message, /127\.0\.0\.1:\d+ through b, a, c/);
  assert.deepEqual(
    reports.map(([id, input]) => [id, input.type]),
    [
      ['b', 'connect-failed'],
      ['a', 'connect-failed'],
      ['c', 'connect-failed'],
    ],
  );
  assert.deepEqual(dialer.stats(), { active: 0, total: 1, failed: 1 });
  for (const l of links) assert.equal(dialer.connectionsOn(l.id), 0);
});

test('every link timing out: LINKMUX_ERR_TIMEOUT; the number of links tried is bounded by attempts', async () => {
  const { dialer, links, reports } = setup(['a', 'b', 'c', 'd'], {
    policy: fixed('a'),
    attempts: 2,
    staggerMs: 20,
    connectTimeoutMs: 150,
  });
  for (const l of links) l.mode = 'hang';
  const err = await rejects(dialer.dial(dst), 'LINKMUX_ERR_TIMEOUT');
  assert.match(err.message, /through a, b:/);
  assert.deepEqual(
    links.map((l) => l.connects),
    [1, 1, 0, 0],
  );
  assert.deepEqual(reports.map(([id]) => id).sort(), ['a', 'b']);
});

test('a rule naming one link uses only that link; its own error comes back; an unknown link is named', async () => {
  const { dialer, byId, reports } = setup(['a', 'b'], {
    policy: fixed('a'),
    rules: [
      { match: { port }, action: 'link:b' },
      { match: { port: 1 }, action: 'link:nope' },
    ],
  });
  const ok = await dialer.dial(dst);
  assert.equal(ok.link, 'b');
  ok.socket.destroy();
  byId('b').mode = 'fail';
  const err = await rejects(dialer.dial(dst), 'LINKMUX_ERR_CONNECT');
  assert.match(err.message, /^link b: /, "the link's own message, not a summary");
  assert.equal(byId('a').connects, 0, 'no failover away from a rule-named link');
  assert.deepEqual(
    reports.map(([id]) => id),
    ['b'],
  );
  const unknown = await rejects(dialer.dial({ host: '127.0.0.1', port: 1 }), 'LINKMUX_ERR_LINK_UNKNOWN');
  assert.match(unknown.message, /nope/);
});

test('a deny rule refuses with LINKMUX_ERR_DENIED without touching any link', async () => {
  const { dialer, links, reports } = setup(['a', 'b'], {
    rules: [{ match: { cidr: '127.0.0.0/8', port }, action: 'deny' }],
  });
  const err = await rejects(dialer.dial(dst), 'LINKMUX_ERR_DENIED');
  assert.match(err.message, /rule 1/);
  assert.deepEqual(
    links.map((l) => l.connects),
    [0, 0],
  );
  assert.deepEqual(reports, []);
  assert.equal(dialer.stats().failed, 1);
});

test('direct (by rule or by privateDirect) connects without any link', async () => {
  for (const opts of [{ rules: [{ match: { port }, action: 'direct' as const }] }, { privateDirect: true }]) {
    const { dialer, links } = setup(['a', 'b'], opts);
    const { socket, link } = await dialer.dial(dst);
    assert.equal(link, 'direct');
    assert.equal(await greeting(socket), 'hi');
    assert.deepEqual(
      links.map((l) => l.connects),
      [0, 0],
    );
    assert.equal(dialer.stats().active, 1);
    socket.destroy();
    await eventually(() => dialer.stats().active === 0, 'direct socket closed');
  }
});

test('no link online: LINKMUX_ERR_NO_LINKS; a named policy from the rules is used', async () => {
  const offline = setup(['a', 'b'], { state: () => 'offline' });
  await rejects(offline.dialer.dial(dst), 'LINKMUX_ERR_NO_LINKS');
  assert.deepEqual(
    offline.links.map((l) => l.connects),
    [0, 0],
  );

  const named = setup(['a', 'b', 'c'], {
    policy: fixed('a'),
    policies: { pinned: fixed('c') },
    rules: [{ match: { port }, action: 'policy:pinned' }],
  });
  const { socket, link } = await named.dialer.dial(dst);
  assert.equal(link, 'c');
  socket.destroy();
});

test('a burst of 6 dials over 3 equal links puts 2 on each; idle ones stop counting as busy', async () => {
  const clock = new FakeClock(1_000_000);
  const { dialer, links } = setup(['a', 'b', 'c'], { clock });
  const dialed = await Promise.all(Array.from({ length: 6 }, () => dialer.dial(dst)));
  const per = (id: string) => dialed.filter((d) => d.link === id).length;
  assert.deepEqual(
    links.map((l) => per(l.id)),
    [2, 2, 2],
  );
  assert.deepEqual(
    links.map((l) => dialer.connectionsOn(l.id)),
    [2, 2, 2],
  );
  assert.deepEqual(
    links.map((l) => dialer.busyOn(l.id)),
    [2, 2, 2],
    'fresh connections are busy',
  );
  // Three seconds later, nothing moved: idle keep-alives do not repel new connections.
  clock.advance(3_000);
  assert.deepEqual(
    links.map((l) => dialer.busyOn(l.id)),
    [0, 0, 0],
  );
  assert.deepEqual(
    links.map((l) => dialer.connectionsOn(l.id)),
    [2, 2, 2],
    'still open',
  );
  assert.equal(dialer.stats().active, 6);

  for (const d of dialed) d.socket.destroy();
  await eventually(() => links.every((l) => dialer.connectionsOn(l.id) === 0), 'connectionsOn back to 0');
  await eventually(() => dialer.stats().active === 0, 'active back to 0');
  assert.deepEqual(dialer.stats(), { active: 0, total: 6, failed: 0 });
});

test('a connection closed by the far end is released too', async () => {
  await eventually(() => sockets.size === 0, 'earlier tests closed');
  const { dialer } = setup(['a'], { policy: fixed('a') });
  const { socket } = await dialer.dial(dst);
  socket.on('error', () => {});
  socket.resume();
  await eventually(() => sockets.size >= 1, 'server saw it');
  for (const s of sockets) s.destroy();
  await eventually(() => dialer.connectionsOn('a') === 0 && dialer.stats().active === 0, 'released');
});

test("the caller's AbortSignal ends the race: every attempt aborted, nothing held", async () => {
  const { dialer, links, reports } = setup(['a', 'b', 'c'], { policy: fixed('a'), staggerMs: 30 });
  for (const l of links) l.mode = 'hang';
  const ac = new AbortController();
  const pending = dialer.dial(dst, { signal: ac.signal });
  await eventually(() => links.every((l) => l.connects === 1), 'all three racing');
  ac.abort();
  await rejects(pending, 'LINKMUX_ERR_ABORTED');
  for (const l of links) assert.equal(l.signals[0]?.aborted, true, `${l.id} aborted`);
  for (const l of links) assert.equal(dialer.connectionsOn(l.id), 0);
  assert.deepEqual(reports, [], 'a client leaving is no failure of a link');
});

test('a signal already aborted when the dial starts: ABORTED, no link touched', async () => {
  await eventually(() => sockets.size === 0, 'earlier tests closed');
  const { dialer, links } = setup(['a', 'b'], { policy: fixed('a') });
  const err = await rejects(dialer.dial(dst, { signal: AbortSignal.abort() }), 'LINKMUX_ERR_ABORTED');
  assert.ok(err);
  // Let any stray connect finish so that a leak would show.
  await sleep(50);
  assert.deepEqual(
    links.map((l) => l.connects),
    [0, 0],
  );
  assert.equal(sockets.size, 0, 'no connection reached the destination');
});
