// The SOCKS5 front end relaying data, with a fake Dialer on loopback: the CONNECT data path (early data, BND, half-close, IPv6, a client leaving mid-dial) and UDP ASSOCIATE through a local echo server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { RawClient } from '../helpers/proxy-clients.js';
import {
  h,
  portHex,
  sleep,
  FakeDialer,
  cleanups,
  listen,
  closeServer,
  startSocks,
  httpServer,
  echoServer,
  canListenOnIPv6,
  socksConnect,
  waitFor,
  connections,
  curl,
} from '../helpers/socks5-server-fixtures.js';

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
