// Real probes through a LocalLink on loopback (source-address mode, no root
// needed): TCP to a listening port, TCP to a closed port, HTTP to a local
// server (any status is alive), HTTP to a server that never answers, and a
// HealthMonitor on real timers taking a link offline and back. Every target is
// on 127.0.0.1: nothing leaves the machine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { makeSelfSignedCert } from '../../src/testbed/self-signed-cert.js';
import { LocalLink } from '../../src/links/local-link.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import { createProber, probeHttp, probeRound, probeTcp } from '../../src/health/prober.js';
import type { ProbeTarget } from '../../src/health/config.js';
import { withHealthDefaults } from '../../src/health/config.js';
import { HealthMonitor } from '../../src/health/monitor.js';
import type { StateChangedEvent } from '../../src/health/state-machine.js';
import { systemTimers } from '../../src/health/timers.js';
import { systemClock } from '../../src/util/clock.js';

const lo: NetInterface = {
  name: 'lo',
  up: true,
  loopback: true,
  addresses: [{ address: '127.0.0.1', family: 4, prefixLength: 8 }],
};
const skip = process.platform === 'win32' ? 'loopback binding differs on Windows' : false;

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function newLink(): LocalLink {
  const link = new LocalLink(lo, { mode: 'address', platform: 'linux' });
  cleanups.push(() => link.destroy());
  return link;
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

/** A TCP server counting the connections it accepted and still holds. */
async function tcpServer() {
  const open = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    open.add(s);
    s.on('error', () => {});
    s.on('close', () => open.delete(s));
  });
  const port = await listen(server);
  return { port, open, accepted: () => accepted };
}

/** A port nothing listens on: the kernel answers RST at once. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** An HTTP server answering `status`, or never answering when status is 0. */
async function httpServer(status: number) {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    if (status === 0) return; // hold the request open: a path that eats packets
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end('x'.repeat(100_000)); // a body the probe must not wait for
  });
  const port = await listen(server);
  cleanups.push(() => server.closeAllConnections());
  return { port, requests };
}

const ctl = () => new AbortController().signal;

test('TCP probe through the link to a listening port succeeds and closes its socket', { skip }, async () => {
  const srv = await tcpServer();
  const link = newLink();
  const outcome = await probeTcp(
    link,
    { kind: 'tcp', host: '127.0.0.1', port: srv.port },
    { timeoutMs: 500, signal: ctl() },
  );
  assert.deepEqual(outcome, { ok: true });
  assert.equal(srv.accepted(), 1);
  for (let i = 0; i < 50 && srv.open.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(srv.open.size, 0, 'the probe socket was closed');
  assert.equal(link.stats().activeConnections, 0);
});

test('TCP probe to a closed port fails fast with "refused"', { skip }, async () => {
  const link = newLink();
  const port = await closedPort();
  const t0 = performance.now();
  const outcome = await probeTcp(
    link,
    { kind: 'tcp', host: '127.0.0.1', port },
    { timeoutMs: 2_000, signal: ctl() },
  );
  const took = performance.now() - t0;
  assert.deepEqual(outcome, { ok: false, reason: 'refused' });
  assert.ok(took < 500, `took ${took} ms`);
});

test('HTTP probe through the link: any status counts, the body is not read', { skip }, async () => {
  const srv = await httpServer(503);
  const link = newLink();
  const target: ProbeTarget = { kind: 'http', url: `http://127.0.0.1:${srv.port}/health` };
  const outcome = await probeHttp(link, target, { timeoutMs: 1_000, signal: ctl() });
  assert.deepEqual(outcome, { ok: true });
  assert.equal(srv.requests.length, 1);
  assert.equal(srv.requests[0]?.url, '/health');
  assert.match(srv.requests[0]?.headers['user-agent'] ?? '', /^linkmux\/.* \(health probe\)$/);
  assert.equal(srv.requests[0]?.socket.localAddress, '127.0.0.1');
  for (let i = 0; i < 50 && link.stats().activeConnections > 0; i++)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(link.stats().activeConnections, 0, 'the probe connection was closed');
});

test('HTTPS probe: TLS over the link, certificates checked', { skip }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'lmx-probe-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { key, cert } = await makeSelfSignedCert(dir);
  const server = https.createServer({ key, cert }, (_req, res) => {
    res.writeHead(204).end();
  });
  const port = await listen(server);
  cleanups.push(() => server.closeAllConnections());
  const link = newLink();
  const target: ProbeTarget = { kind: 'http', url: `https://127.0.0.1:${port}/` };
  const trusted = await createProber({ ca: cert })(link, target, { timeoutMs: 2_000, signal: ctl() });
  assert.deepEqual(trusted, { ok: true });
  const untrusted = await createProber()(link, target, { timeoutMs: 2_000, signal: ctl() });
  assert.equal(untrusted.ok, false);
  assert.match(untrusted.ok ? '' : untrusted.reason, /^tls: .*CERT/);
});

test('HTTP probe to a server that never answers times out', { skip }, async () => {
  const srv = await httpServer(0);
  const link = newLink();
  const t0 = performance.now();
  const result = await probeRound(link, [{ kind: 'http', url: `http://127.0.0.1:${srv.port}/` }], {
    prober: createProber(),
    clock: systemClock,
    timers: systemTimers,
    timeoutMs: 200,
  });
  const took = performance.now() - t0;
  assert.deepEqual(result, { ok: false, reason: 'timeout' });
  assert.ok(took >= 190 && took < 1_000, `took ${took} ms`);
  for (let i = 0; i < 50 && link.stats().activeConnections > 0; i++)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(link.stats().activeConnections, 0, 'the hung probe connection was torn down');
});

test('a round succeeds when one of several real targets answers', { skip }, async () => {
  const srv = await tcpServer();
  const link = newLink();
  const result = await probeRound(
    link,
    [
      { kind: 'tcp', host: '127.0.0.1', port: await closedPort() },
      { kind: 'tcp', host: '127.0.0.1', port: srv.port },
    ],
    { prober: createProber(), clock: systemClock, timers: systemTimers, timeoutMs: 500 },
  );
  assert.equal(result.ok, true);
  assert.ok(result.ok && result.target === `tcp://127.0.0.1:${srv.port}` && result.rttMs < 500);
});

test(
  'HealthMonitor on real timers: offline when the targets go, online when they come back',
  { skip },
  async () => {
    const link = newLink();
    const hang = await httpServer(0);
    const good = await tcpServer();
    const targets: ProbeTarget[] = [{ kind: 'http', url: `http://127.0.0.1:${hang.port}/` }];
    const config = withHealthDefaults({
      intervalMs: 100,
      timeoutMs: 50,
      failThreshold: 3,
      riseThreshold: 2,
      targets,
    });
    const events: StateChangedEvent[] = [];
    const monitor = new HealthMonitor({ links: [link], config, onEvent: (e) => events.push(e) });
    cleanups.push(() => monitor.stop());
    const t0 = performance.now();
    monitor.start();
    for (let i = 0; i < 100 && monitor.state('lo') !== 'offline'; i++)
      await new Promise((r) => setTimeout(r, 10));
    const took = performance.now() - t0;
    assert.equal(monitor.state('lo'), 'offline');
    // Three rounds timing out back to back: ~150 ms (bound 100 + 3 × 50); generous for a loaded CI machine.
    assert.ok(took < 600, `offline after ${took} ms`);
    assert.match(monitor.status('lo').lastFailure?.reason ?? '', /timeout/);

    // Swap the target for a live one: the monitor reads config.targets each round.
    targets.splice(0, 1, { kind: 'tcp', host: '127.0.0.1', port: good.port });
    for (let i = 0; i < 100 && monitor.state('lo') !== 'online'; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(monitor.state('lo'), 'online');
    assert.deepEqual(
      events.map((e) => e.to),
      ['degraded', 'offline', 'online'],
    );
    monitor.stop();
    for (let i = 0; i < 50 && link.stats().activeConnections > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(link.stats().activeConnections, 0);
  },
);
