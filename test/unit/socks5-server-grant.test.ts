// The SOCKS5 server's node options on loopback, with a recording Dialer:
// `authenticate` replaces `auth` (a refusal is auth status 0x01 and no dial; a
// grant naming a link reaches the Dialer as ctx.link), and `udp: false`
// answers UDP ASSOCIATE with REP 0x07 while the default associates.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';
import type { Destination } from '../../src/links/link.js';
import type { DialContext, Dialed, Dialer } from '../../src/proxy/dialer.js';
import { createSocks5Server } from '../../src/proxy/socks5/socks5-server.js';
import type { Socks5Grant, Socks5ServerOptions } from '../../src/proxy/socks5/socks5-server.js';
import { RawClient, authRequest, connectRequest, hex, portHex } from '../helpers/proxy-clients.js';

/** Dials straight to dst on loopback and records what it was asked. */
class RecordingDialer implements Dialer {
  readonly dials: Array<{ dst: Destination; ctx: DialContext }> = [];
  udpOpens = 0;
  readonly open = new Set<Socket>();

  async dial(dst: Destination, ctx: DialContext = {}): Promise<Dialed> {
    this.dials.push({ dst, ctx });
    const socket = net.connect({ host: dst.host, port: dst.port });
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    await once(socket, 'connect');
    return { socket, link: ctx.link ?? 'picked' };
  }

  openUdp(): Promise<{ socket: UdpSocket; link: string }> {
    this.udpOpens++;
    return Promise.reject(new Error('no UDP in this test'));
  }
}

/** The target: sends "hi", then echoes. */
const target = net.createServer((s) => {
  s.on('error', () => {});
  s.write('hi');
  s.pipe(s);
});
target.listen(0, '127.0.0.1');
await once(target, 'listening');
const targetPort = (target.address() as AddressInfo).port;
const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
  target.close();
});

type Check = { username: string; password: string };

async function startSocks(opts: Partial<Socks5ServerOptions>) {
  const dialer = new RecordingDialer();
  const server = createSocks5Server({ dialer, ...opts });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
    for (const s of dialer.open) s.destroy();
  });
  return { port: (server.address() as AddressInfo).port, dialer };
}

/** An authenticate that records what it was given and answers with `grant`. */
function authenticator(grant: (c: Check) => Socks5Grant | undefined) {
  const seen: Check[] = [];
  const authenticate = (username: Buffer, password: Buffer) => {
    const c = { username: username.toString('utf8'), password: password.toString('utf8') };
    seen.push(c);
    return grant(c);
  };
  return { authenticate, seen };
}

const CONNECT = connectRequest({ host: '127.0.0.1', port: targetPort });

test('authenticate refusing: auth status 0x01, the connection closes, nothing is dialed', async () => {
  const { authenticate, seen } = authenticator(() => undefined);
  const { port, dialer } = await startSocks({ authenticate });
  const c = new RawClient(port);
  c.write(Buffer.concat([hex('050102'), authRequest('linkmux/eth0', 'wrong')]));
  assert.equal((await c.read(2)).toString('hex'), '0502', 'username/password selected');
  assert.equal((await c.read(2)).toString('hex'), '0101', 'refused');
  c.write(hex(CONNECT)); // ignored: the server is closing
  assert.equal((await c.read()).length, 0, 'nothing more is answered');
  await c.closed;
  assert.deepEqual(seen, [{ username: 'linkmux/eth0', password: 'wrong' }]);
  assert.equal(dialer.dials.length, 0);
});

test("authenticate granting { link: 'x' }: the Dialer's dial gets ctx.link === 'x' and the relay works", async () => {
  const { authenticate, seen } = authenticator((c) =>
    c.username === 'linkmux/x' && c.password === 's3cret' ? { link: 'x' } : undefined,
  );
  const { port, dialer } = await startSocks({ authenticate });
  const c = new RawClient(port);
  c.write(Buffer.concat([hex('050102'), authRequest('linkmux/x', 's3cret')]));
  assert.equal((await c.read(2)).toString('hex'), '0502');
  assert.equal((await c.read(2)).toString('hex'), '0100', 'accepted');
  c.write(hex(CONNECT));
  const reply = await c.read(10);
  assert.equal(reply.subarray(0, 4).toString('hex'), '05000001', `success, got ${reply.toString('hex')}`);
  assert.equal((await c.read(2)).toString(), 'hi');
  c.write('ping');
  assert.equal((await c.read(4)).toString(), 'ping');

  assert.equal(seen.length, 1);
  assert.equal(dialer.dials.length, 1);
  const [{ dst, ctx }] = dialer.dials as [{ dst: Destination; ctx: DialContext }];
  assert.deepEqual(dst, { host: '127.0.0.1', port: targetPort });
  assert.equal(ctx.link, 'x');
  // The dial's signal (a DialAbort's: util/dial-abort.ts), not yet aborted.
  assert.equal(ctx.signal?.aborted, false);
  assert.equal(typeof ctx.signal?.addEventListener, 'function');
  c.destroy();
});

test('a grant without a link leaves ctx.link unset (the dialer picks)', async () => {
  const { authenticate } = authenticator(() => ({}));
  const { port, dialer } = await startSocks({ authenticate });
  const c = new RawClient(port);
  c.write(Buffer.concat([hex('050102'), authRequest('linkmux', 'pw'), hex(CONNECT)]));
  assert.equal((await c.read(4)).toString('hex'), '05020100');
  assert.equal((await c.read(10)).subarray(0, 2).toString('hex'), '0500');
  assert.equal(dialer.dials.length, 1);
  assert.equal('link' in dialer.dials[0]!.ctx, false);
  c.destroy();
});

test('authenticate replaces auth: only what it grants gets in, and no-auth clients are refused', async () => {
  const { authenticate, seen } = authenticator((c) => (c.username === 'node' ? {} : undefined));
  const { port, dialer } = await startSocks({ auth: { username: 'alice', password: 'pw' }, authenticate });

  const alice = new RawClient(port);
  alice.write(Buffer.concat([hex('050102'), authRequest('alice', 'pw')]));
  assert.equal(
    (await alice.read(4)).toString('hex'),
    '05020101',
    "auth's credentials are not checked any more",
  );
  await alice.closed;

  const noAuth = new RawClient(port);
  noAuth.write(hex('050100'));
  assert.equal((await noAuth.read()).toString('hex'), '05ff', 'no acceptable method');
  await noAuth.closed;

  const node = new RawClient(port);
  node.write(Buffer.concat([hex('05020002'), authRequest('node', 'anything')]));
  assert.equal((await node.read(4)).toString('hex'), '05020100');
  node.destroy();

  assert.deepEqual(
    seen.map((c) => c.username),
    ['alice', 'node'],
  );
  assert.equal(dialer.dials.length, 0);
});

const UDP_ASSOCIATE = `050300 01 00000000 ${portHex(0)}`;

test('udp: false answers UDP ASSOCIATE with REP 0x07 and closes; CONNECT still works', async () => {
  const { authenticate } = authenticator(() => ({}));
  const { port, dialer } = await startSocks({ authenticate, udp: false });
  const c = new RawClient(port);
  c.write(Buffer.concat([hex('050102'), authRequest('linkmux', 'pw'), hex(UDP_ASSOCIATE)]));
  assert.equal((await c.read(4)).toString('hex'), '05020100');
  assert.equal((await c.read()).toString('hex'), '05070001000000000000', 'command not supported');
  await c.closed;
  assert.equal(dialer.udpOpens, 0);
  assert.equal(dialer.dials.length, 0);

  const tcp = new RawClient(port);
  tcp.write(Buffer.concat([hex('050102'), authRequest('linkmux', 'pw'), hex(CONNECT)]));
  assert.equal((await tcp.read(4)).toString('hex'), '05020100');
  assert.equal((await tcp.read(10)).subarray(0, 2).toString('hex'), '0500');
  tcp.destroy();
});

test('by default UDP ASSOCIATE is answered with success (the contrast to udp: false)', async () => {
  const { port } = await startSocks({});
  const c = new RawClient(port);
  c.write(hex(`050100 ${UDP_ASSOCIATE}`));
  assert.equal((await c.read(2)).toString('hex'), '0500');
  const reply = await c.read(10);
  assert.equal(reply.subarray(0, 4).toString('hex'), '05000001', `success, got ${reply.toString('hex')}`);
  assert.notEqual(reply.readUInt16BE(8), 0, 'a relay port');
  c.destroy();
});
