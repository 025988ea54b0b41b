// The SOCKS5 front end on loopback, with a fake Dialer (net.connect and
// dgram on 127.0.0.1/::1) standing in for the link pool: real curl with and
// without credentials, raw malformed requests answered with the right bytes,
// IPv6 targets, UDP ASSOCIATE through a local echo server, half-close,
// shutdown, and 500 connections (half aborted mid-handshake) leaving no socket
// behind. Nothing leaves the machine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import type { Destination } from '../../src/links/link.js';
import type { DialContext, Dialed, Dialer } from '../../src/proxy/dialer.js';
import { createSocks5Server } from '../../src/proxy/socks5/socks5-server.js';
import type { Socks5ServerOptions } from '../../src/proxy/socks5/socks5-server.js';
import { LinkmuxError, systemCode } from '../../src/util/errors.js';
import { createLogger } from '../../src/util/logger.js';
import { RawClient } from '../helpers/proxy-clients.js';

const run = promisify(execFile);
const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const portHex = (port: number) => port.toString(16).padStart(4, '0');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- fixtures -------------------------------------------------------------------

/** A Dialer over plain sockets on loopback that counts what it has open. */
class FakeDialer implements Dialer {
  readonly tcp = new Set<net.Socket>();
  readonly udp = new Set<dgram.Socket>();
  readonly dials: Destination[] = [];
  aborts = 0;
  /** Delay before connecting, to test clients that leave while a dial is in flight. */
  delayMs = 0;
  /** Names it "resolves"; anything else that is not an IP literal is a DNS failure. */
  readonly names: Record<string, string> = { localhost: '127.0.0.1' };

  get open(): number {
    return this.tcp.size + this.udp.size;
  }

  async dial(dst: Destination, ctx: DialContext = {}): Promise<Dialed> {
    this.dials.push(dst);
    const ip = net.isIP(dst.host) ? dst.host : this.names[dst.host];
    if (ip === undefined) {
      throw new LinkmuxError('LINKMUX_ERR_DNS', `${dst.host} does not resolve`, {
        cause: Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }),
      });
    }
    if (this.delayMs > 0) await sleep(this.delayMs);
    if (ctx.signal?.aborted) {
      this.aborts++;
      throw new LinkmuxError('LINKMUX_ERR_ABORTED', 'aborted');
    }
    const socket = net.connect({ host: ip, port: dst.port });
    this.tcp.add(socket);
    socket.once('close', () => this.tcp.delete(socket));
    const onAbort = () => {
      this.aborts++;
      socket.destroy(new Error('aborted'));
    };
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await once(socket, 'connect');
      return { socket, link: 'fake0' };
    } catch (err) {
      socket.destroy();
      // As linkmux's links do: a refusal is the destination's answer, said by the code.
      const code = systemCode(err) === 'ECONNREFUSED' ? 'LINKMUX_ERR_REFUSED' : 'LINKMUX_ERR_CONNECT';
      throw new LinkmuxError(code, `cannot connect to ${dst.host}:${dst.port}`, { cause: err });
    } finally {
      ctx.signal?.removeEventListener('abort', onAbort);
    }
  }

  async openUdp(family: 4 | 6): Promise<{ socket: dgram.Socket; link: string }> {
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    this.udp.add(socket);
    socket.once('close', () => this.udp.delete(socket));
    socket.bind(0, family === 6 ? '::1' : '127.0.0.1');
    await once(socket, 'listening');
    return { socket, link: 'fake0' };
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function startSocks(opts: Partial<Socks5ServerOptions> = {}, host = '127.0.0.1') {
  const dialer = (opts.dialer as FakeDialer | undefined) ?? new FakeDialer();
  const server = createSocks5Server({ ...opts, dialer });
  const port = await listen(server, host);
  cleanups.push(() => {
    server.closeAllConnections();
    return closeServer(server);
  });
  return { server, port, dialer };
}

async function httpServer(host = '127.0.0.1') {
  const server = http.createServer((req, res) => res.end(`hello from ${host} ${req.url}`));
  const port = await listen(server, host);
  cleanups.push(() => {
    server.closeAllConnections();
    return closeServer(server);
  });
  return port;
}

const echoSockets = new Set<net.Socket>();
async function echoServer(host = '127.0.0.1') {
  const server = net.createServer((s) => {
    echoSockets.add(s);
    s.on('close', () => echoSockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  const port = await listen(server, host);
  cleanups.push(() => {
    for (const s of echoSockets) s.destroy();
    return closeServer(server);
  });
  return port;
}

async function canListenOnIPv6(): Promise<boolean> {
  const s = net.createServer();
  try {
    await listen(s, '::1');
    await closeServer(s);
    return true;
  } catch {
    return false;
  }
}

/** Connects through SOCKS with no auth to 127.0.0.1:port; returns the client after a success reply. */
async function socksConnect(socksPort: number, targetPort: number): Promise<RawClient> {
  const c = new RawClient(socksPort);
  c.write(h(`050100 05010001 7f000001 ${portHex(targetPort)}`));
  assert.equal((await c.read(2)).toString('hex'), '0500');
  const reply = await c.read(10);
  assert.equal(reply.subarray(0, 4).toString('hex'), '05000001', 'success reply with an IPv4 BND');
  return c;
}

/** Sends `hex` after a no-auth greeting and returns everything the server sends until it closes. */
async function requestAnswer(socksPort: number, requestHex: string): Promise<string> {
  const c = new RawClient(socksPort);
  c.write(h('050100' + requestHex));
  const answer = await c.read();
  await c.closed;
  return answer.toString('hex');
}

async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function connections(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
}

async function curl(args: string[]): Promise<string> {
  // A clean environment: no proxy variables from the machine may steer curl.
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  return stdout;
}

/** Proves the server still serves: one full CONNECT + echo. */
async function assertServing(socksPort: number): Promise<void> {
  const echo = await echoServer();
  const c = await socksConnect(socksPort, echo);
  c.write('still alive');
  assert.equal((await c.read(11)).toString(), 'still alive');
  c.destroy();
}

// --- curl -----------------------------------------------------------------------

test('curl --socks5-hostname: the name reaches the dialer unresolved', async () => {
  const web = await httpServer();
  const { port, dialer } = await startSocks();
  const body = await curl(['--socks5-hostname', `127.0.0.1:${port}`, `http://localhost:${web}/a`]);
  assert.equal(body, 'hello from 127.0.0.1 /a');
  assert.deepEqual(dialer.dials.at(-1), { host: 'localhost', port: web });
});

test('curl --socks5 (IPv4 address request)', async () => {
  const web = await httpServer();
  const { port, dialer } = await startSocks();
  assert.equal(
    await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${web}/b`]),
    'hello from 127.0.0.1 /b',
  );
  assert.deepEqual(dialer.dials.at(-1), { host: '127.0.0.1', port: web });
});

test('curl with --proxy-user: accepted with the right credentials, refused with wrong ones; no secret in logs', async () => {
  const web = await httpServer();
  const lines: string[] = [];
  const logger = createLogger('debug', (l) => lines.push(l));
  const { port, server } = await startSocks({ auth: { username: 'alice', password: 'Sesame-42' }, logger });
  const ok = await curl([
    '--socks5-hostname',
    `127.0.0.1:${port}`,
    '--proxy-user',
    'alice:Sesame-42',
    `http://localhost:${web}/c`,
  ]);
  assert.equal(ok, 'hello from 127.0.0.1 /c');

  for (const creds of ['alice:wrong-pass', 'mallory:Sesame-42']) {
    await assert.rejects(
      curl(['--socks5', `127.0.0.1:${port}`, '--proxy-user', creds, `http://127.0.0.1:${web}/`]),
      (err: { code?: number }) => typeof err.code === 'number' && err.code !== 0,
    );
  }
  // Without credentials, the server insists on username/password: curl gets 0xFF.
  await assert.rejects(curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${web}/`]));
  const c = new RawClient(port);
  c.write(h('050100'));
  assert.equal((await c.read()).toString('hex'), '05ff');
  await c.closed;

  assert.equal(
    await curl([
      '--socks5',
      `127.0.0.1:${port}`,
      '--proxy-user',
      'alice:Sesame-42',
      `http://127.0.0.1:${web}/d`,
    ]),
    'hello from 127.0.0.1 /d',
  );
  const log = lines.join('');
  assert.match(log, /wrong username or password/);
  for (const secret of ['Sesame-42', 'wrong-pass', 'alice', 'mallory'])
    assert.ok(!log.includes(secret), `log holds ${secret}`);
  await waitFor('all connections closed', async () => (await connections(server)) === 0);
});

test('no credentials configured: a client offering only username/password is let in', async () => {
  const echo = await echoServer();
  const { port } = await startSocks();
  const c = new RawClient(port);
  c.write(h(`050102 0101 75 0101 05010001 7f000001 ${portHex(echo)}`));
  assert.equal((await c.read(4)).toString('hex'), '05020100');
  assert.equal((await c.read(10)).subarray(0, 2).toString('hex'), '0500');
  c.write('x');
  assert.equal((await c.read(1)).toString(), 'x');
  c.destroy();
});

// --- malformed and refused requests, raw bytes ----------------------------------

test('malformed requests get the RFC answer, then the server still serves', async () => {
  const { port, server, dialer } = await startSocks();
  const refusedPort = await (async () => {
    const s = net.createServer();
    const p = await listen(s);
    await closeServer(s);
    return p;
  })();
  const FAIL = (rep: string) => `05${rep}0001000000000000`;
  const cases: Array<[string, string, string]> = [
    ['wrong VER in the greeting: closed, no answer', '', ''],
    ['NMETHODS 0', '', '05ff'],
    ['BIND', `05020001 7f000001 0050`, '0500' + FAIL('07')],
    ['unknown command', `05090001 7f000001 0050`, '0500' + FAIL('07')],
    ['unknown address type', `05010002 7f000001 0050`, '0500' + FAIL('08')],
    ['domain length 0', `05010003 00 0050`, '0500' + FAIL('01')],
    ['wrong VER in the request', `04010001 7f000001 0050`, '0500'],
    ['CONNECT to port 0', `05010001 7f000001 0000`, '0500' + FAIL('01')],
    ['connection refused', `05010001 7f000001 ${portHex(refusedPort)}`, '0500' + FAIL('05')],
    [
      'name that does not resolve',
      `05010003 0e ${Buffer.from('nosuch.invalid').toString('hex')} 0050`,
      '0500' + FAIL('04'),
    ],
  ];
  for (const [name, request, want] of cases) {
    let answer: string;
    if (name.startsWith('wrong VER in the greeting')) {
      const c = new RawClient(port);
      c.write(h('040100'));
      answer = (await c.read()).toString('hex');
      await c.closed;
    } else if (name === 'NMETHODS 0') {
      const c = new RawClient(port);
      c.write(h('0500'));
      answer = (await c.read()).toString('hex');
      await c.closed;
    } else {
      answer = await requestAnswer(port, request);
    }
    assert.equal(answer, want, name);
  }
  // Not SOCKS at all.
  const c = new RawClient(port);
  c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await c.read()).length, 0);
  await c.closed;

  assert.ok(!dialer.dials.some((d) => d.port === 0), 'port 0 never reaches the dialer');
  await assertServing(port);
  await waitFor('all connections closed', async () => (await connections(server)) === 0);
});

/** Refuses blocked.example as PoolDialer's rules do, before dialing anything. */
class RuleDialer extends FakeDialer {
  override async dial(dst: Destination, ctx: DialContext = {}): Promise<Dialed> {
    if (dst.host === 'blocked.example') {
      throw new LinkmuxError(
        'LINKMUX_ERR_DENIED',
        `${dst.host}:${dst.port} is refused by rule 1 of the config`,
      );
    }
    return super.dial(dst, ctx);
  }
}

test("the dialer's rule deny is answered 0x02 and nothing is dialed", async () => {
  const { port, dialer } = await startSocks({ dialer: new RuleDialer() });
  const answer = await requestAnswer(
    port,
    `05010003 0f ${Buffer.from('blocked.example').toString('hex')} 01bb`,
  );
  assert.equal(answer, '0500' + '05020001000000000000');
  assert.equal(dialer.dials.length, 0);
  await assertServing(port);
  assert.equal(dialer.dials.length, 1, 'only the allowed CONNECT was dialed');
});

test('handshake timeout closes a silent client and a stalled one', async () => {
  const { port, server } = await startSocks({ handshakeTimeoutMs: 200 });
  const silent = new RawClient(port);
  const stalled = new RawClient(port);
  stalled.write(h('050100 050100'));
  const started = Date.now();
  await Promise.all([silent.closed, stalled.closed]);
  assert.ok(Date.now() - started < 3000);
  assert.equal((await stalled.read(2)).toString('hex'), '0500');
  await waitFor('no connection', async () => (await connections(server)) === 0);
});

// --- CONNECT data path ------------------------------------------------------------

test('data sent with the request (before the reply) reaches the target first', async () => {
  const echo = await echoServer();
  const { port } = await startSocks();
  const c = new RawClient(port);
  c.write(Buffer.concat([h(`050100 05010001 7f000001 ${portHex(echo)}`), Buffer.from('early ')]));
  assert.equal((await c.read(12)).subarray(0, 4).toString('hex'), '05000500');
  c.write('late');
  assert.equal((await c.read(10)).toString(), 'early late');
  c.destroy();
});

test('the reply BND is the dialed socket local address', async () => {
  const echo = await echoServer();
  const { port, dialer } = await startSocks();
  const c = new RawClient(port);
  c.write(h(`050100 05010001 7f000001 ${portHex(echo)}`));
  const reply = (await c.read(12)).subarray(2);
  const [dialed] = dialer.tcp;
  assert.ok(dialed);
  assert.equal(reply.subarray(4, 8).toString('hex'), '7f000001');
  assert.equal(reply.readUInt16BE(8), dialed.localPort);
  c.destroy();
});

test("a client's half-close reaches the target, whose answer still comes back", async () => {
  const target = net.createServer({ allowHalfOpen: true }, (s) => {
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('end', () => s.end(`got ${got}`));
  });
  const targetPort = await listen(target);
  cleanups.push(() => closeServer(target));
  const { port } = await startSocks();
  const c = await socksConnect(port, targetPort);
  c.socket.end('question');
  assert.equal((await c.read()).toString(), 'got question');
  await c.closed;
});

test('IPv6: CONNECT to [::1] through a server listening on ::1 (BND is IPv6)', async (t) => {
  if (!(await canListenOnIPv6())) return t.skip('no IPv6 loopback here');
  const web = await httpServer('::1');
  const { port, dialer } = await startSocks({}, '::1');
  assert.equal(await curl(['--socks5', `[::1]:${port}`, `http://[::1]:${web}/v6`]), 'hello from ::1 /v6');
  assert.deepEqual(dialer.dials.at(-1), { host: '::1', port: web });
  const c = new RawClient(port, '::1');
  c.write(h(`050100 05010004 00000000000000000000000000000001 ${portHex(web)}`));
  const reply = await c.read(2 + 22);
  assert.equal(reply.subarray(2, 6).toString('hex'), '05000004');
  assert.equal(reply.subarray(6, 22).toString('hex'), '00000000000000000000000000000001');
  c.destroy();
});

test('a client leaving during a slow dial aborts it and leaks nothing', async () => {
  const echo = await echoServer();
  const dialer = new FakeDialer();
  dialer.delayMs = 300;
  const { port, server } = await startSocks({ dialer });
  const c = new RawClient(port);
  c.write(h(`050100 05010001 7f000001 ${portHex(echo)}`));
  await c.read(2);
  c.destroy();
  await waitFor('the dial to be aborted', () => dialer.aborts === 1);
  await waitFor('nothing open', async () => (await connections(server)) === 0 && dialer.open === 0);
});

// --- UDP ASSOCIATE ----------------------------------------------------------------

test('UDP ASSOCIATE: round trip through an echo server, client filter, fragments dropped, teardown', async () => {
  const echo = dgram.createSocket('udp4');
  echo.on('message', (msg, rinfo) => echo.send(msg, rinfo.port, rinfo.address));
  echo.bind(0, '127.0.0.1');
  await once(echo, 'listening');
  cleanups.push(() => new Promise<void>((r) => echo.close(() => r())));
  const echoPort = echo.address().port;

  const { port, dialer } = await startSocks();
  const control = new RawClient(port);
  control.write(h('050100 05030001 00000000 0000'));
  assert.equal((await control.read(2)).toString('hex'), '0500');
  const reply = await control.read(10);
  assert.equal(reply.subarray(0, 8).toString('hex'), '050000017f000001', 'relay on the listener address');
  const relayPort = reply.readUInt16BE(8);

  const client = dgram.createSocket('udp4');
  client.bind(0, '127.0.0.1');
  await once(client, 'listening');
  const received: Buffer[] = [];
  client.on('message', (m) => received.push(m));
  const header = (frag: string) => h(`0000 ${frag} 01 7f000001 ${portHex(echoPort)}`);
  client.send(Buffer.concat([header('00'), Buffer.from('ping')]), relayPort, '127.0.0.1');
  await waitFor('the echo', () => received.length === 1);
  assert.equal(
    received[0]?.toString('hex'),
    `00000001 7f000001 ${portHex(echoPort)}`.replace(/\s/g, '') + Buffer.from('ping').toString('hex'),
  );
  assert.equal(dialer.udp.size, 1, 'one link socket for the association');

  // A fragment, and a datagram from another port of the same host: both dropped.
  client.send(Buffer.concat([header('01'), Buffer.from('frag')]), relayPort, '127.0.0.1');
  const intruder = dgram.createSocket('udp4');
  intruder.bind(0, '127.0.0.1');
  await once(intruder, 'listening');
  const intruderGot: Buffer[] = [];
  intruder.on('message', (m) => intruderGot.push(m));
  intruder.send(Buffer.concat([header('00'), Buffer.from('evil')]), relayPort, '127.0.0.1');
  client.send(Buffer.concat([header('00'), Buffer.from('pong')]), relayPort, '127.0.0.1');
  await waitFor('the second echo', () => received.length === 2);
  await sleep(100);
  assert.deepEqual(
    received.map((m) => m.subarray(10).toString()),
    ['ping', 'pong'],
  );
  assert.equal(intruderGot.length, 0);
  intruder.close();

  // Closing the control connection ends the association: both UDP sockets go.
  control.destroy();
  await waitFor('the link UDP socket to close', () => dialer.udp.size === 0);
  await waitFor('the relay port to be free', async () => {
    const probe = dgram.createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.bind(relayPort, '127.0.0.1', () => resolve());
      });
      return true;
    } catch {
      return false;
    } finally {
      probe.close();
    }
  });
  client.close();
});

test('UDP ASSOCIATE with a declared client port only accepts that port', async () => {
  const echo = dgram.createSocket('udp4');
  echo.on('message', (msg, rinfo) => echo.send(msg, rinfo.port, rinfo.address));
  echo.bind(0, '127.0.0.1');
  await once(echo, 'listening');
  cleanups.push(() => new Promise<void>((r) => echo.close(() => r())));

  const declared = dgram.createSocket('udp4');
  declared.bind(0, '127.0.0.1');
  await once(declared, 'listening');
  const other = dgram.createSocket('udp4');
  other.bind(0, '127.0.0.1');
  await once(other, 'listening');
  const got: string[] = [];
  declared.on('message', (m) => got.push(`declared:${m.subarray(10)}`));
  other.on('message', (m) => got.push(`other:${m.subarray(10)}`));

  const { port, dialer } = await startSocks();
  const control = new RawClient(port);
  control.write(h(`050100 05030001 7f000001 ${portHex(declared.address().port)}`));
  const reply = (await control.read(12)).subarray(2);
  const relayPort = reply.readUInt16BE(8);
  const dgramTo = (data: string) =>
    Buffer.concat([h(`000000 01 7f000001 ${portHex(echo.address().port)}`), Buffer.from(data)]);
  other.send(dgramTo('first-from-other'), relayPort, '127.0.0.1');
  await sleep(100);
  declared.send(dgramTo('hi'), relayPort, '127.0.0.1');
  await waitFor('the echo', () => got.length === 1);
  assert.deepEqual(got, ['declared:hi']);
  control.destroy();
  await waitFor('teardown', () => dialer.open === 0);
  declared.close();
  other.close();
});

// --- shutdown and leaks -----------------------------------------------------------

test('close() drops handshaking clients and lets relays drain; closeAllConnections() ends them', async () => {
  const echo = await echoServer();
  const dialer = new FakeDialer();
  const server = createSocks5Server({ dialer });
  const port = await listen(server);
  const relaying = await socksConnect(port, echo);
  const handshaking = new RawClient(port);
  handshaking.write(h('05'));
  await waitFor('two connections', async () => (await connections(server)) === 2);
  let closed = false;
  server.close(() => (closed = true));
  await handshaking.closed;
  relaying.write('drain');
  assert.equal((await relaying.read(5)).toString(), 'drain');
  assert.equal(closed, false);
  server.closeAllConnections();
  await relaying.closed;
  await waitFor('the server to close', () => closed);
  // The target side closes a tick after the client side (pipeSockets destroys it on the client's close).
  await waitFor('the target socket to close', () => dialer.open === 0);
});

test('500 connections, half aborted mid-handshake: no socket left on any side', async () => {
  const echo = await echoServer();
  const { port, server, dialer } = await startSocks({ handshakeTimeoutMs: 5000 });
  const aborts = ['05', '0502', '050100', '05010005', '050100050100017f00', '050100050100017f0000'];
  const one = async (i: number) => {
    if (i % 2 === 1) {
      const c = new RawClient(port);
      c.write(h(aborts[i % aborts.length] ?? '05'));
      await sleep(i % 7);
      c.destroy();
      await c.closed;
      return;
    }
    const c = await socksConnect(port, echo);
    c.write(`n${i}`);
    assert.equal((await c.read(`n${i}`.length)).toString(), `n${i}`);
    if (i % 4 === 0) c.socket.end();
    else c.destroy();
    await c.closed;
  };
  const total = 500;
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < total) await one(next++);
    }),
  );
  await waitFor('server connections back to 0', async () => (await connections(server)) === 0);
  await waitFor('dialer sockets back to 0', () => dialer.open === 0);
  await waitFor('echo server sockets back to 0', () => echoSockets.size === 0);
  assert.equal(dialer.dials.length, total / 2);
});
