// LinkSockets over real loopback sockets: bytes count only from opened() on
// (a handshake before it is not traffic), totals keep closed sockets and never
// go back, drain() waits for the last socket, destroyAll() destroys sockets and
// cancels dials in flight, and withDeadline's timeout, caller abort and
// failure bookkeeping (aborts are no failures).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { LinkSockets, abortable, bindUdp } from '../../src/links/link-sockets.js';
import type { LinkStats } from '../../src/links/link.js';
import { LinkmuxError, isLinkmuxError } from '../../src/util/errors.js';
import type { ErrorCode } from '../../src/util/errors.js';
import { within } from '../helpers/loopback.js';

/** The server side of every connection, in accept order. */
const accepted: Socket[] = [];
const server = net.createServer((s) => {
  accepted.push(s);
  s.on('error', () => {});
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = (server.address() as AddressInfo).port;
after(() => {
  for (const s of accepted) s.destroy();
  server.close();
});

/** A connected client socket, tracked, with its server side; the client collects what it reads. */
async function pair(sockets: LinkSockets): Promise<{ client: Socket; peer: Socket; received: () => number }> {
  const before = accepted.length;
  const client = sockets.track(net.connect({ host: '127.0.0.1', port }));
  client.on('error', () => {});
  let got = 0;
  client.on('data', (d: Buffer) => (got += d.length));
  await once(client, 'connect');
  await eventually(() => accepted.length > before, 'the server accepted');
  return { client, peer: accepted[accepted.length - 1]!, received: () => got };
}

/** Reads exactly n bytes on the server side. */
async function serverReads(peer: Socket, n: number): Promise<void> {
  let got = 0;
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= n) {
        peer.off('data', onData);
        resolve();
      }
    };
    peer.on('data', onData);
  });
  assert.equal(got, n);
}

/** Resolves on 'close' (events.once would reject on the 'error' a destroy(err) emits first). */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

async function eventually(check: () => boolean, what: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function rejects(p: Promise<unknown>, code: ErrorCode): Promise<LinkmuxError> {
  const err = await within(p, `waiting for ${code}`).then(
    () => assert.fail(`expected ${code}, it resolved`),
    (e: unknown) => e,
  );
  assert.ok(isLinkmuxError(err, code), `expected ${code}, got ${String(err)}`);
  return err;
}

const asConnectError = (err: unknown) =>
  err instanceof LinkmuxError ? err : new LinkmuxError('LINKMUX_ERR_CONNECT', `dial failed: ${String(err)}`);

const bytes = (s: LinkStats) => [s.bytesIn, s.bytesOut];

test('bytes before opened() (a handshake) are not counted; bytes after are, both ways', async () => {
  const sockets = new LinkSockets('t1');
  const { client, peer, received } = await pair(sockets);
  // The "handshake": 5 bytes out, 3 bytes in, all before opened().
  client.write('hello');
  await serverReads(peer, 5);
  peer.write('abc');
  await eventually(() => received() === 3, 'handshake answer read');
  assert.deepEqual(bytes(sockets.stats()), [0, 0]);
  assert.equal(sockets.stats().activeConnections, 0, 'connecting is not active');

  sockets.opened(client);
  assert.deepEqual(bytes(sockets.stats()), [0, 0], 'opening counts nothing by itself');
  assert.equal(sockets.stats().activeConnections, 1);
  client.write('1234567');
  await serverReads(peer, 7);
  peer.write('x'.repeat(11));
  await eventually(() => received() === 14, 'payload read');
  assert.deepEqual(bytes(sockets.stats()), [11, 7]);
  assert.equal(sockets.bytesIn(), 11, 'bytesIn() alone agrees with stats()');

  // Closed: the bytes stay in the totals, the connection leaves the count.
  client.destroy();
  await once(client, 'close');
  const s = sockets.stats();
  assert.deepEqual(bytes(s), [11, 7]);
  assert.equal(sockets.bytesIn(), 11, 'closed sockets count in bytesIn() too');
  assert.equal(s.activeConnections, 0);
  assert.equal(s.connectFailures, 0);
});

test('totals include closed sockets, add up over sockets and never go backwards', async () => {
  const sockets = new LinkSockets('t2');
  const a = await pair(sockets);
  const b = await pair(sockets);
  sockets.opened(a.client);
  sockets.opened(b.client);
  a.client.write('a'.repeat(100));
  b.client.write('b'.repeat(50));
  await serverReads(a.peer, 100);
  await serverReads(b.peer, 50);
  a.peer.write('A'.repeat(20));
  b.peer.write('B'.repeat(30));
  await eventually(() => a.received() === 20 && b.received() === 30, 'both read');
  assert.deepEqual(bytes(sockets.stats()), [50, 150]);

  // Sample the stats in every tick around the close, and right after the close handlers ran.
  const samples: LinkStats[] = [];
  const sampler = setInterval(() => samples.push(sockets.stats()), 0);
  a.client.once('close', () => samples.push(sockets.stats()));
  a.client.end();
  await once(a.client, 'close');
  samples.push(sockets.stats());
  b.peer.destroy(); // closed from the far end this time
  await once(b.client, 'close');
  samples.push(sockets.stats());
  clearInterval(sampler);

  for (let i = 1; i < samples.length; i++) {
    assert.ok(samples[i]!.bytesIn >= samples[i - 1]!.bytesIn, `bytesIn went back at sample ${i}`);
    assert.ok(samples[i]!.bytesOut >= samples[i - 1]!.bytesOut, `bytesOut went back at sample ${i}`);
  }
  const end = sockets.stats();
  assert.deepEqual(bytes(end), [50, 150]);
  assert.equal(end.activeConnections, 0);
  await within(sockets.drain(), 'drain');
});

test('a socket that never opened counts no bytes, even when it closes', async () => {
  const sockets = new LinkSockets('t3');
  const { client, peer, received } = await pair(sockets);
  client.write('greeting');
  await serverReads(peer, 8);
  peer.write('no');
  await eventually(() => received() === 2, 'answer read');
  client.destroy();
  await once(client, 'close');
  assert.deepEqual(sockets.stats(), { bytesIn: 0, bytesOut: 0, activeConnections: 0, connectFailures: 0 });
});

test('drain() resolves at once when empty, else when the last tracked socket closes', async () => {
  const sockets = new LinkSockets('t4');
  let resolved = false;
  await within(sockets.drain(), 'drain with nothing tracked');

  const a = await pair(sockets);
  const b = await pair(sockets);
  sockets.opened(a.client); // one open, one still "connecting": drain waits for both
  const drained = sockets.drain().then(() => (resolved = true));
  await sleep(20);
  assert.equal(resolved, false, 'two sockets still tracked');
  a.client.destroy();
  await once(a.client, 'close');
  await sleep(20);
  assert.equal(resolved, false, 'one socket still tracked');
  b.peer.end();
  await within(drained, 'drain after the last close');
  assert.equal(b.client.closed, true, 'drained means the last socket has closed');
});

test('destroyAll() destroys tracked sockets, open and connecting, and aborts dials in flight', async () => {
  const sockets = new LinkSockets('t5');
  const open = await pair(sockets);
  const connecting = await pair(sockets);
  sockets.opened(open.client);
  let dialSignal: AbortSignal | undefined;
  const dial = sockets.withDeadline(
    { timeoutMs: 5_000 },
    'example.org:443',
    'check the link',
    (signal) => {
      dialSignal = signal;
      return abortable(new Promise<never>(() => {}), signal);
    },
    asConnectError,
  );
  const drained = sockets.drain();
  sockets.destroyAll();

  const err = await rejects(dial, 'LINKMUX_ERR_ABORTED');
  assert.match(err.message, /t5/);
  assert.equal(dialSignal?.aborted, true);
  assert.equal(open.client.destroyed, true);
  assert.equal(connecting.client.destroyed, true);
  await within(drained, 'drain after destroyAll');
  const s = sockets.stats();
  assert.equal(s.connectFailures, 0, 'a shutdown is no failure of the link');
  assert.equal(s.activeConnections, 0);
  assert.equal(s.lastError, undefined);
});

test('withDeadline: the timeout aborts the dial with LINKMUX_ERR_TIMEOUT and counts a failure', async () => {
  const sockets = new LinkSockets('t6');
  let dialSignal: AbortSignal | undefined;
  const started = Date.now();
  const err = await rejects(
    sockets.withDeadline(
      { timeoutMs: 60 },
      '198.51.100.1:80',
      'is the link up?',
      (signal) => {
        dialSignal = signal;
        // A dial that reports its own error once aborted: the deadline's reason replaces it.
        return new Promise<never>((_, reject) =>
          signal.addEventListener('abort', () => reject(new Error('socket destroyed'))),
        );
      },
      asConnectError,
    ),
    'LINKMUX_ERR_TIMEOUT',
  );
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 50 && elapsed < 2_000, `timed out after ${elapsed} ms`);
  assert.equal(dialSignal?.aborted, true);
  assert.match(err.message, /198\.51\.100\.1:80/);
  assert.match(err.message, /t6/);
  assert.match(err.message, /60 ms/);
  assert.match(err.message, /is the link up\?/);
  const s = sockets.stats();
  assert.equal(s.connectFailures, 1);
  assert.equal(s.lastError, err.message);
});

test("withDeadline: the caller's abort (before or during the dial) is ABORTED and no failure", async () => {
  const sockets = new LinkSockets('t7');
  const ac = new AbortController();
  const during = sockets.withDeadline(
    { timeoutMs: 5_000, signal: ac.signal },
    'h:1',
    'hint',
    (signal) => abortable(new Promise<never>(() => {}), signal),
    asConnectError,
  );
  setTimeout(() => ac.abort(new Error('client left')), 10);
  const err = await rejects(during, 'LINKMUX_ERR_ABORTED');
  assert.equal((err.cause as Error).message, 'client left');

  let called = false;
  await rejects(
    sockets.withDeadline(
      { signal: AbortSignal.abort() },
      'h:1',
      'hint',
      (signal) => {
        called = true;
        assert.equal(signal.aborted, true, 'the dial sees the abort at once');
        return abortable(new Promise<never>(() => {}), signal);
      },
      asConnectError,
    ),
    'LINKMUX_ERR_ABORTED',
  );
  assert.equal(called, true);
  assert.equal(sockets.stats().connectFailures, 0);
});

test('withDeadline: a dial that fails on its own is converted, recorded, and the next one starts clean', async () => {
  const sockets = new LinkSockets('t8');
  const err = await rejects(
    sockets.withDeadline(
      { timeoutMs: 5_000 },
      'h:1',
      'hint',
      () => Promise.reject(new Error('EHOSTUNREACH')),
      asConnectError,
    ),
    'LINKMUX_ERR_CONNECT',
  );
  assert.match(err.message, /EHOSTUNREACH/);
  assert.equal(sockets.stats().connectFailures, 1);
  assert.equal(sockets.stats().lastError, err.message);

  // A dial that succeeds returns its value and counts nothing, then or when its timeout would have fired.
  const value = await sockets.withDeadline(
    { timeoutMs: 50 },
    'h:1',
    'hint',
    () => Promise.resolve(42),
    asConnectError,
  );
  assert.equal(value, 42);
  await sleep(80);
  assert.equal(sockets.stats().connectFailures, 1);

  // destroyAll() after the dial settled cancels nothing of it.
  sockets.destroyAll();
  assert.equal(sockets.stats().connectFailures, 1);
});

test('a socket error counts as lastError only once the socket is open', async () => {
  const sockets = new LinkSockets('t9');
  const before = await pair(sockets);
  before.client.destroy(new Error('handshake broke'));
  await closed(before.client);
  assert.equal(sockets.stats().lastError, undefined);

  const open = await pair(sockets);
  sockets.opened(open.client);
  open.client.destroy(new Error('reset by peer'));
  await closed(open.client);
  assert.match(sockets.stats().lastError ?? '', /link t9: .*reset by peer/);
  assert.equal(sockets.stats().connectFailures, 0, 'a broken open socket is not a connect failure');
});

test('destroyAll in the same tick as the owner closed a UDP socket does not throw', async () => {
  // `get` of a name that does not resolve: the job closes its links while a DNS query's socket closes.
  const sockets = new LinkSockets('up0');
  const udp = sockets.trackUdp(await bindUdp(4, '127.0.0.1'));
  udp.close();
  assert.doesNotThrow(() => sockets.destroyAll());
  await once(udp, 'close');
});
