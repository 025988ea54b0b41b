// The daemon over three loopback links while its links and itself go away: a link destroyed under load, drain on stop, and 2,000 connections leaving neither file descriptors nor heap behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createLogger } from '../../src/util/logger.js';
import { eventually } from '../helpers/http-proxy-fixtures.js';
import { RawClient, hex, isListening, openFds, socksConnect } from '../helpers/proxy-clients.js';
import {
  MiB,
  LINK_ADDRESSES,
  peers,
  echoSockets,
  echoPort,
  startDaemon,
  status,
  tinyViaSocks,
} from '../helpers/daemon-loopback.js';

test('a link that disappears while the daemon runs: its tunnels end, new connections use the others', async () => {
  const d = await startDaemon({
    config: { policy: 'round-robin', failover: { attempts: 3, staggerMs: 200 } },
  });
  // One tunnel on each link (round-robin), told apart by the reply's BND address.
  const tunnels = [];
  for (let i = 0; i < 3; i++)
    tunnels.push(await socksConnect(d.socks, { host: '127.0.0.1', port: echoPort }));
  assert.deepEqual(tunnels.map((t) => t.bound).sort(), LINK_ADDRESSES);
  const gone = d.links[1]!;
  const goneAddress = '127.0.0.3';
  gone.destroy();

  const onGone = tunnels.find((t) => t.bound === goneAddress)!;
  await onGone.client.closed; // torn down with its link
  for (const t of tunnels.filter((x) => x !== onGone)) {
    t.client.write('still');
    assert.equal((await t.client.read(5)).toString(), 'still', `tunnel via ${t.bound} survives`);
    t.client.destroy();
  }

  peers.length = 0;
  const started = Date.now();
  for (let i = 0; i < 12; i++) await tinyViaSocks(d.socks);
  assert.ok(Date.now() - started < 10_000);
  assert.ok(!peers.includes(goneAddress), `a connection went out of the destroyed link: ${peers.join(', ')}`);
  assert.deepEqual([...new Set(peers)].sort(), ['127.0.0.2', '127.0.0.4']);

  await eventually(
    async () => (await status(d.control)).links[1]?.state === 'offline',
    5_000,
    'lo1 offline in /status',
  );
  const s = await status(d.control);
  assert.equal(s.connections.failed, 0, 'no client saw an error');
  assert.ok(s.links[1]?.lastFailure, 'the failure is shown');
});

test('stop(drainMs): stops accepting, lets tunnels run until the drain timeout, then closes everything', async () => {
  const d = await startDaemon();
  const socksTunnel = await socksConnect(d.socks, { host: '127.0.0.1', port: echoPort });
  const httpTunnel = new RawClient(d.http);
  httpTunnel.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`);
  assert.match((await httpTunnel.read(39)).toString(), /^HTTP\/1\.1 200 /);
  await eventually(() => echoSockets.size >= 2, 2_000, 'both tunnels at the echo server');

  const drainMs = 600;
  const started = Date.now();
  let stopped = 0;
  const stopping = d.stop(drainMs).then(() => (stopped = Date.now() - started));
  await sleep(100);
  // Draining: no new clients, but the tunnels still carry data.
  assert.equal(await isListening(d.socks), false, 'SOCKS5 still accepting while draining');
  assert.equal(await isListening(d.http), false, 'HTTP proxy still accepting while draining');
  for (const t of [socksTunnel.client, httpTunnel]) {
    t.write('drain');
    assert.equal((await t.read(5)).toString(), 'drain');
  }
  assert.equal(stopped, 0, 'stop resolved before the drain timeout although tunnels are open');

  await Promise.all([socksTunnel.client.closed, httpTunnel.closed]);
  const closedAfter = Date.now() - started;
  assert.ok(closedAfter >= drainMs - 50, `tunnels closed after ${closedAfter} ms, before the drain timeout`);
  await stopping;
  assert.ok(stopped < drainMs + 2_000, `stop took ${stopped} ms`);
  for (const port of [d.socks, d.http, d.control]) assert.equal(await isListening(port), false);
  await eventually(() => echoSockets.size === 0, 2_000, 'the target sides closed');

  // With nothing open, stop does not wait for the drain timeout.
  const idle = await startDaemon();
  const t0 = Date.now();
  await idle.stop(5_000);
  assert.ok(Date.now() - t0 < 1_000, `an idle daemon took ${Date.now() - t0} ms to stop`);
});

// --- leaks ------------------------------------------------------------------------

/** global.gc when node runs with --expose-gc, else one obtained through V8's flags, else undefined. */
function findGc(): (() => void) | undefined {
  const global = globalThis as { gc?: () => void };
  if (typeof global.gc === 'function') return global.gc;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

test('2,000 SOCKS5 connections opened and closed: open fds and heap back to their starting level', async (t) => {
  const d = await startDaemon({ logger: createLogger('silent') });
  const gc = findGc();
  if (!gc) t.diagnostic('HEAP CHECK SKIPPED: no gc() (run node with --expose-gc); the fd check still runs');

  const ABORTS = ['05', '0501', '050100', '050100 05', '050100 050100', `050100 05010001 7f00`];
  let completed = 0;
  let aborted = 0;
  const one = async (i: number) => {
    if (i % 5 === 4) {
      // Aborted mid-handshake, at a different byte each time.
      const c = new RawClient(d.socks);
      c.write(hex(ABORTS[i % ABORTS.length]!));
      if (i % 2 === 0) await sleep(1);
      c.destroy();
      await c.closed;
      aborted++;
      return;
    }
    const { client } = await socksConnect(d.socks, { host: '127.0.0.1', port: echoPort });
    client.write(`r${i}`);
    assert.equal((await client.read(`r${i}`.length)).toString(), `r${i}`);
    if (i % 3 === 0) client.socket.end();
    else client.destroy();
    await client.closed;
    completed++;
  };
  const batch = async (from: number, count: number, parallel: number) => {
    let next = from;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < from + count) await one(next++);
      }),
    );
  };
  const settle = async () => {
    await eventually(() => d.daemon.dialer.stats().active === 0, 10_000, 'no relayed connection left');
    await eventually(() => echoSockets.size === 0, 10_000, 'no socket at the target');
    await sleep(300);
    gc?.();
    await sleep(50);
    gc?.();
  };

  await batch(0, 100, 20); // warm-up: lazily created things (parsers, pools) exist before the baseline
  await settle();
  const fds0 = openFds();
  const heap0 = process.memoryUsage().heapUsed;

  const TOTAL = 2_000;
  const started = Date.now();
  for (let from = 0; from < TOTAL; from += 250) {
    await batch(100 + from, 250, 50);
    assert.ok(Date.now() - started < 60_000, 'the 2,000 connections took over a minute');
  }
  assert.equal(completed + aborted, TOTAL + 100);
  await settle();
  await eventually(() => openFds() <= fds0 + 10, 5_000, `open fds back near ${fds0} (now ${openFds()})`);
  const fds1 = openFds();
  const heap1 = process.memoryUsage().heapUsed;
  t.diagnostic(`fds ${fds0} -> ${fds1}; heap ${(heap0 / MiB).toFixed(1)} -> ${(heap1 / MiB).toFixed(1)} MiB`);
  assert.ok(Math.abs(fds1 - fds0) <= 10, `open fds: ${fds0} before, ${fds1} after`);
  if (gc) assert.ok(heap1 - heap0 < 16 * MiB, `heap grew by ${((heap1 - heap0) / MiB).toFixed(1)} MiB`);

  const s = await status(d.control);
  assert.equal(s.connections.active, 0);
  assert.equal(s.connections.failed, 0);
  for (const l of s.links) assert.equal(l.activeConnections, 0, `${l.id} still counts connections`);
});
