// The SOCKS5 front end on loopback, with a fake Dialer (net.connect and
// dgram on 127.0.0.1/::1) standing in for the link pool: real curl with and
// without credentials, raw malformed requests answered with the right bytes,
// shutdown, and 500 connections (half aborted mid-handshake) leaving no socket
// behind. The relayed data (CONNECT, UDP ASSOCIATE): socks5-server-relay.test.ts.
// Nothing leaves the machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Destination } from '../../src/links/link.js';
import type { DialContext, Dialed } from '../../src/proxy/dialer.js';
import { createSocks5Server } from '../../src/proxy/socks5/socks5-server.js';
import { LinkmuxError } from '../../src/util/errors.js';
import { createLogger } from '../../src/util/logger.js';
import { RawClient } from '../helpers/proxy-clients.js';
import {
  h,
  portHex,
  sleep,
  FakeDialer,
  listen,
  closeServer,
  startSocks,
  httpServer,
  echoSockets,
  echoServer,
  socksConnect,
  requestAnswer,
  waitFor,
  connections,
  curl,
  assertServing,
} from '../helpers/socks5-server-fixtures.js';

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
