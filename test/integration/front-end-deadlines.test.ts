/**
 * Deadlines and caps of the front ends on loopback (issue 11), with short
 * configured deadlines: an HTTP client trickling one header byte every 2 s,
 * and a silent one, are closed within headersTimeout + 1 s (Node's own
 * headersTimeout alone counts from the first byte, and is off when
 * requestTimeout is 0); the same for the SOCKS5 handshake; a connection over
 * the caps gets HTTP 503 / a SOCKS5 close; a wrong Proxy-Authorization is
 * reported as a failed login, a missing one is not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createHttpProxyServer } from '../../src/proxy/http/http-proxy-server.js';
import { createSocks5Server } from '../../src/proxy/socks5/socks5-server.js';
import { ConnectionGate } from '../../src/proxy/connection-gate.js';
import type { Dialer } from '../../src/proxy/dialer.js';
import { silentLogger } from '../../src/util/logger.js';
import { systemClock } from '../../src/util/clock.js';

const dialer: Dialer = {
  dial: () => Promise.reject(new Error('no dialing in this test')),
  openUdp: () => Promise.reject(new Error('no udp')),
};

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** Connects, sends `bytes` one every `everyMs` (none if empty); resolves with ms until the server closed it. */
function closedAfter(port: number, bytes: string, everyMs: number): Promise<{ ms: number; got: string }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const start = Date.now();
    let got = '';
    let i = 0;
    const timer = setInterval(() => {
      if (i < bytes.length && !s.destroyed) s.write(bytes[i++]!);
    }, everyMs);
    const giveUp = setTimeout(() => s.destroy(), 30_000);
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => {});
    s.once('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ ms: Date.now() - start, got });
    });
  });
}

test('HTTP proxy: trickling (1 byte / 2 s) and silent clients are closed within headersTimeout + 1 s', async () => {
  const server = createHttpProxyServer({ dialer, logger: silentLogger, headersTimeoutMs: 5_000 });
  const port = await listen(server);
  try {
    const request =
      'GET http://198.18.0.1/ HTTP/1.1\r\nHost: 198.18.0.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaa\r\n\r\n';
    const [trickle, silent] = await Promise.all([
      closedAfter(port, request, 2_000),
      closedAfter(port, '', 1_000),
    ]);
    for (const [what, r] of [
      ['trickling', trickle],
      ['silent', silent],
    ] as const) {
      assert.ok(r.ms >= 4_500 && r.ms <= 6_000, `${what} client closed after ${r.ms} ms`);
      assert.match(r.got, /^HTTP\/1\.1 408 /, `${what}: ${r.got}`);
    }
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('SOCKS5: trickling and silent clients are closed within handshakeTimeout + 1 s', async () => {
  const server = createSocks5Server({ dialer, handshakeTimeoutMs: 3_000 });
  const port = await listen(server);
  try {
    const greetingThenRequest = '\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50';
    const [trickle, silent] = await Promise.all([
      closedAfter(port, greetingThenRequest, 2_000),
      closedAfter(port, '', 1_000),
    ]);
    for (const r of [trickle, silent]) assert.ok(r.ms >= 2_500 && r.ms <= 4_000, `closed after ${r.ms} ms`);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('caps: over the per-client cap HTTP answers 503 and SOCKS5 closes; counters count', async () => {
  const gate = new ConnectionGate({ maxConnections: 10, maxPerClient: 2 });
  const shed: string[] = [];
  const g = {
    gate,
    clock: systemClock,
    onShed: (reason: string, fe: string) => shed.push(`${fe}:${reason}`),
  };
  const http = createHttpProxyServer({ dialer, logger: silentLogger, gate: g });
  const socks = createSocks5Server({ dialer, gate: g });
  const [hp, sp] = [await listen(http), await listen(socks)];
  const held: net.Socket[] = [];
  try {
    for (const port of [hp, sp]) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      held.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(gate.openFrom('127.0.0.1'), 2);
    const overHttp = await closedAfter(hp, 'GET http://198.18.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n', 10);
    assert.match(overHttp.got, /^HTTP\/1\.1 503 /);
    const overSocks = await closedAfter(sp, '\x05\x01\x00', 10);
    assert.equal(overSocks.got, '', 'SOCKS5 over the cap: closed without an answer');
    assert.deepEqual(shed, ['http:per-client', 'socks5:per-client']);
    assert.equal(gate.counters().shed['per-client'], 2);
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(gate.counters().open, 0, 'leases released when the clients left');
  } finally {
    for (const s of held) s.destroy();
    http.closeAllConnections();
    http.close();
    socks.close();
  }
});

test('HTTP: a wrong Proxy-Authorization is a failed login of the client address; a missing one is not', async () => {
  const failures: (string | undefined)[] = [];
  const server = createHttpProxyServer({
    dialer,
    logger: silentLogger,
    auth: { username: 'u', password: 'p' },
    onLoginFailure: (a) => failures.push(a),
  });
  const port = await listen(server);
  try {
    const none = await closedAfter(
      port,
      'GET http://198.18.0.1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      1,
    );
    assert.match(none.got, /^HTTP\/1\.1 407 /);
    const bad = Buffer.from('u:wrong').toString('base64');
    const wrong = await closedAfter(
      port,
      `GET http://198.18.0.1/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic ${bad}\r\nConnection: close\r\n\r\n`,
      1,
    );
    assert.match(wrong.got, /^HTTP\/1\.1 407 /);
    assert.deepEqual(failures, ['127.0.0.1']);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
