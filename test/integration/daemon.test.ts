/**
 * The `linkmux up` daemon in-process over three loopback links (LocalLinks
 * bound to 127.0.0.2, .3, .4), front ends and control API on 127.0.0.1 port 0,
 * health probes to a local TCP listener, privateDirect off (else every
 * loopback destination would go direct and no link would carry anything).
 * Real clients (curl through SOCKS5 and HTTP, Node's http) against a local
 * origin; authentication; malformed input; listen failures; a link destroyed
 * under load; drain on stop; and 2,000 connections leaving neither file
 * descriptors nor heap behind. Nothing leaves the machine.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Daemon } from '../../src/daemon/daemon.js';
import type { DaemonOptions } from '../../src/daemon/daemon.js';
import { runtimeDefaults, type RuntimeConfig } from '../../src/config/runtime.js';
import { loopbackListen, tcpAt } from '../helpers/runtime-config.js';
import type { DaemonStatus } from '../../src/control/status-types.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { createLogger } from '../../src/util/logger.js';
import type { LocalLink } from '../../src/links/local-link.js';
import { loopbackLinks, sha256 } from '../helpers/loopback.js';
import { eventually } from '../helpers/http-proxy-fixtures.js';
import {
  RawClient,
  authRequest,
  connectRequest,
  curlBytes,
  hex,
  httpGetViaProxy,
  isListening,
  openFds,
  portHex,
  socksAnswer,
  socksConnect,
} from '../helpers/proxy-clients.js';

const MiB = 1024 * 1024;
const LINK_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// --- local servers ----------------------------------------------------------------

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function tracked(server: net.Server): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return sockets;
}

/** The origin: /big is 2 MiB of random bytes, /tiny a few; remembers who connected. */
const BIG = randomBytes(2 * MiB);
const BIG_SHA = sha256(BIG);
const peers: string[] = [];
const origin = http.createServer((req, res) => {
  if (req.url === '/big') {
    res.writeHead(200, { 'Content-Length': BIG.length });
    res.end(BIG);
  } else if (req.url === '/tiny') {
    res.end('tiny');
  } else {
    res.statusCode = 404;
    res.end('no such route');
  }
});
origin.on('connection', (s: net.Socket) => peers.push(s.remoteAddress ?? '?'));
tracked(origin);
const originPort = await listen(origin);

/** An echo server: what a tunnel sends comes back; the tunnel stays open until a side closes it. */
const echo = net.createServer((s) => {
  s.on('error', () => {});
  s.pipe(s);
});
const echoSockets = tracked(echo);
const echoPort = await listen(echo);

/** Health probe target: accepts and closes. */
const probe = net.createServer((s) => s.destroy());
tracked(probe);
const probePort = await listen(probe);

// --- the daemon -------------------------------------------------------------------

interface Running {
  daemon: Daemon;
  links: LocalLink[];
  socks: number;
  http: number;
  control: number;
  log: string[];
  stop: (drainMs?: number) => Promise<void>;
}

/** The daemon's options: `over.config` is laid over this file's runtime config, the rest over the options. */
interface Over extends Partial<Omit<DaemonOptions, 'config'>> {
  config?: Partial<RuntimeConfig>;
}

function options(links: LocalLink[], log: string[], over: Over = {}): DaemonOptions {
  const { config, ...rest } = over;
  return {
    links,
    config: runtimeDefaults({
      listen: loopbackListen(),
      connectTimeoutMs: 2_000,
      failover: { attempts: 3, staggerMs: 300 },
      health: {
        intervalMs: 200,
        timeoutMs: 300,
        failThreshold: 2,
        riseThreshold: 2,
        slowRttMs: 300,
        targets: [{ kind: 'tcp', host: '127.0.0.1', port: probePort }],
      },
      privateDirect: false,
      ...config,
    }),
    logger: createLogger('debug', (line) => void log.push(line)),
    ...rest,
  };
}

const portOf = (addr: string | undefined) => Number(/:(\d+)$/.exec(addr ?? '')?.[1]);

async function startDaemon(over: Over = {}): Promise<Running> {
  const links = loopbackLinks(3);
  const log: string[] = [];
  const daemon = new Daemon(options(links, log, over));
  await daemon.start();
  let stopped: Promise<void> | undefined;
  const stop = (drainMs = 0) => (stopped ??= daemon.stop(drainMs));
  cleanups.push(() => stop());
  const a = daemon.addresses;
  return {
    daemon,
    links,
    socks: portOf(a.socks),
    http: portOf(a.http),
    control: portOf(a.control),
    log,
    stop,
  };
}

async function status(controlPort: number): Promise<DaemonStatus> {
  const res = await fetch(`http://127.0.0.1:${controlPort}/status`);
  assert.equal(res.status, 200);
  return (await res.json()) as DaemonStatus;
}

/** One tiny request through SOCKS5 (curl, name resolved by the daemon). */
async function tinyViaSocks(socks: number): Promise<void> {
  const r = await curlBytes([
    '--socks5-hostname',
    `127.0.0.1:${socks}`,
    `http://localhost:${originPort}/tiny`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.body.toString(), 'tiny');
}

const FAIL = (rep: string) => `05${rep}0001000000000000`;

// --- tests ------------------------------------------------------------------------

test('real clients through SOCKS5 and HTTP get 2 MiB bodies intact, carried by the links', async () => {
  const d = await startDaemon();
  peers.length = 0;
  const url = `http://localhost:${originPort}/big`;
  const viaSocks = await curlBytes(['--socks5-hostname', `127.0.0.1:${d.socks}`, url]);
  assert.equal(viaSocks.code, 0, viaSocks.stderr);
  assert.equal(sha256(viaSocks.body), BIG_SHA, 'curl --socks5-hostname');

  const viaHttp = await curlBytes(['-x', `http://127.0.0.1:${d.http}`, url]);
  assert.equal(viaHttp.code, 0, viaHttp.stderr);
  assert.equal(sha256(viaHttp.body), BIG_SHA, 'curl -x (absolute-URI forwarding)');

  const viaTunnel = await curlBytes(['-p', '-x', `http://127.0.0.1:${d.http}`, url]);
  assert.equal(viaTunnel.code, 0, viaTunnel.stderr);
  assert.equal(sha256(viaTunnel.body), BIG_SHA, 'curl -p -x (CONNECT tunnel)');

  const viaNode = await httpGetViaProxy(d.http, url);
  assert.equal(viaNode.status, 200);
  assert.equal(sha256(viaNode.body), BIG_SHA, "Node's http through the HTTP proxy");

  assert.ok(peers.length >= 4, `origin saw ${peers.length} connections`);
  for (const p of peers)
    assert.ok(LINK_ADDRESSES.includes(p), `origin reached from ${p}, not through a link`);

  // GET /status: the three links, the bytes they carried, the connections counted.
  const s = await status(d.control);
  assert.deepEqual(
    s.links.map((l) => l.id),
    ['lo0', 'lo1', 'lo2'],
  );
  for (const l of s.links) assert.equal(l.state, 'online', `${l.id}: ${JSON.stringify(l)}`);
  const bytesIn = s.links.reduce((sum, l) => sum + l.bytesIn, 0);
  assert.ok(bytesIn >= 4 * BIG.length, `links received ${bytesIn} B, expected ≥ 4 × 2 MiB`);
  assert.ok(s.connections.total >= 4);
  assert.equal(s.connections.failed, 0);
  assert.equal(s.listen.socks, `127.0.0.1:${d.socks}`);
});

test('with auth: right credentials accepted, wrong refused (SOCKS 0x01, HTTP 407), still serving', async () => {
  const auth = { username: 'alice', password: 'Sesame-42' };
  const d = await startDaemon({ config: { auth } });
  const url = `http://localhost:${originPort}/tiny`;
  const right = `${auth.username}:${auth.password}`;

  // SOCKS5, curl.
  const ok = await curlBytes(['--socks5-hostname', `127.0.0.1:${d.socks}`, '--proxy-user', right, url]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.body.toString(), 'tiny');
  const bad = await curlBytes([
    '--socks5-hostname',
    `127.0.0.1:${d.socks}`,
    '--proxy-user',
    'alice:nope',
    url,
  ]);
  assert.notEqual(bad.code, 0, 'curl with a wrong password must fail');
  // SOCKS5, raw: the RFC 1929 failure status, then the connection is closed.
  assert.equal(
    await socksAnswer(d.socks, `050102 ${authRequest('alice', 'nope').toString('hex')}`),
    '0502' + '0101',
  );
  assert.equal(
    await socksAnswer(d.socks, `050102 ${authRequest('mallory', auth.password).toString('hex')}`),
    '05020101',
  );
  // A client offering no-auth only is refused with 0xFF.
  assert.equal(await socksAnswer(d.socks, '050100'), '05ff');
  const { client } = await socksConnect(d.socks, { host: '127.0.0.1', port: echoPort }, auth);
  client.write('ping');
  assert.equal((await client.read(4)).toString(), 'ping');
  client.destroy();

  // HTTP proxy.
  const okHttp = await curlBytes(['-x', `http://127.0.0.1:${d.http}`, '--proxy-user', right, url]);
  assert.equal(okHttp.code, 0, okHttp.stderr);
  assert.equal(okHttp.body.toString(), 'tiny');
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  const none = await httpGetViaProxy(d.http, url);
  assert.equal(none.status, 407);
  assert.match(String(none.headers['proxy-authenticate']), /^Basic/);
  assert.equal(
    (await httpGetViaProxy(d.http, url, { 'Proxy-Authorization': basic('alice', 'nope') })).status,
    407,
  );
  const good = await httpGetViaProxy(d.http, url, {
    'Proxy-Authorization': basic(auth.username, auth.password),
  });
  assert.equal(good.status, 200);
  assert.equal(good.body.toString(), 'tiny');
  const tunnel = await curlBytes(['-p', '-x', `http://127.0.0.1:${d.http}`, '-w', '%{http_connect}', url]);
  assert.notEqual(tunnel.code, 0, 'CONNECT without credentials must fail');
  assert.match(tunnel.body.toString(), /407/);

  // Still serving after all the refusals; the password never reached the log.
  const again = await curlBytes(['--socks5-hostname', `127.0.0.1:${d.socks}`, '--proxy-user', right, url]);
  assert.equal(again.body.toString(), 'tiny');
  const log = d.log.join('');
  assert.match(log, /failed login from 127\.0\.0\.1 \(socks5\)/);
  for (const secret of [auth.password, 'nope']) assert.ok(!log.includes(secret), `the log holds ${secret}`);
});

test('malformed SOCKS5 and HTTP requests get the proper reply; the daemon keeps serving', async () => {
  const d = await startDaemon();
  const dead = net.createServer();
  const deadPort = await listen(dead);
  await new Promise((r) => dead.close(r));
  const cases: Array<[string, string, string]> = [
    ['wrong VER in the greeting: closed without an answer', '040100', ''],
    ['NMETHODS 0', '0500', '05ff'],
    ['BIND', `050100 05020001 7f000001 ${portHex(echoPort)}`, '0500' + FAIL('07')],
    ['unknown command', `050100 05090001 7f000001 ${portHex(echoPort)}`, '0500' + FAIL('07')],
    ['unknown address type', `050100 05010005 7f000001 ${portHex(echoPort)}`, '0500' + FAIL('08')],
    ['domain of length 0', `050100 05010003 00 ${portHex(echoPort)}`, '0500' + FAIL('01')],
    ['wrong VER in the request', `050100 04010001 7f000001 ${portHex(echoPort)}`, '0500'],
    ['CONNECT to port 0', '050100 05010001 7f000001 0000', '0500' + FAIL('01')],
    [
      'connection refused, through a link',
      `050100 ${connectRequest({ host: '127.0.0.1', port: deadPort })}`,
      '0500' + FAIL('05'),
    ],
    ['not SOCKS at all', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n').toString('hex'), ''],
  ];
  for (const [name, bytes, want] of cases) {
    assert.equal(await socksAnswer(d.socks, bytes), want, name);
  }
  // Split across writes, byte by byte: still a valid request.
  const c = new RawClient(d.socks);
  for (const b of hex(`050100 ${connectRequest({ host: '127.0.0.1', port: echoPort })}`)) {
    c.write(Buffer.from([b]));
    await sleep(2);
  }
  assert.equal((await c.read(12)).subarray(0, 6).toString('hex'), '0500' + '05000001', 'byte by byte');
  c.write('split');
  assert.equal((await c.read(5)).toString(), 'split');
  c.destroy();

  // HTTP: garbage is 400, a CONNECT without a port 400; the connection is closed either way.
  const raw = async (text: string) => {
    const r = new RawClient(d.http);
    r.write(text);
    const answer = (await r.read()).toString('latin1');
    await r.closed;
    return answer;
  };
  assert.match(await raw('\x16\x03\x01 not http\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await raw('CONNECT nohostport HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await raw(`CONNECT 127.0.0.1:${deadPort} HTTP/1.1\r\nHost: x\r\n\r\n`), /^HTTP\/1\.1 502 /);

  await tinyViaSocks(d.socks);
  const s = await status(d.control);
  for (const l of s.links) assert.equal(l.state, 'online', 'a refusal by the destination blames no link');
});

test('a port already in use: start() rejects naming the address, and nothing is left listening', async () => {
  const busy = net.createServer();
  const busyPort = await listen(busy);
  cleanups.push(() => new Promise<void>((r) => busy.close(() => r())));
  for (const which of ['http', 'control'] as const) {
    const links = loopbackLinks(3);
    const log: string[] = [];
    const listenOn = { ...loopbackListen(), [which]: tcpAt(`127.0.0.1:${busyPort}`) };
    const daemon = new Daemon(options(links, log, { config: { listen: listenOn } }));
    const err = await daemon.start().then(
      () => assert.fail(`start() succeeded with ${which} on a busy port`),
      (e: unknown) => e,
    );
    assert.ok(isLinkmuxError(err, 'LINKMUX_ERR_ADDRESS_IN_USE'), String(err));
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${busyPort}`), err.message);
    assert.match(err.message, /in use/);
    // What start() had opened before the failure is closed again.
    const opened = daemon.addresses;
    assert.ok(opened.socks, 'socks was listening before the failure');
    for (const addr of [opened.socks, which === 'control' ? opened.http : undefined]) {
      if (addr)
        assert.equal(await isListening(portOf(addr)), false, `${addr} still listening after the failure`);
    }
    assert.equal(await isListening(busyPort), true, 'the other owner keeps its port');
  }
});

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
