/**
 * SOCKS5 UDP ASSOCIATE and the dialer's per-datagram check (issue 10 and 11):
 * a datagram addressed by NAME goes where `Dialer.udpDestination` resolved it
 * (through the links, not dgram's system lookup), and a datagram the dialer
 * refuses (a rule, or the own-host guard for a LAN client) is dropped, never
 * sent.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Destination } from '../../src/links/link.js';
import type { DialContext, Dialed, Dialer } from '../../src/proxy/dialer.js';
import { createSocks5Server } from '../../src/proxy/socks5/socks5-server.js';
import { RawClient, hex, portHex } from '../helpers/proxy-clients.js';

class UdpOnlyDialer implements Dialer {
  readonly asked: Array<{ host: string; clientIp: string | undefined }> = [];
  readonly sockets = new Set<dgram.Socket>();
  dial(): Promise<Dialed> {
    return Promise.reject(new Error('no TCP in this test'));
  }
  async openUdp(family: 4 | 6): Promise<{ socket: dgram.Socket; link: string }> {
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    return { socket, link: 'fake0' };
  }
  async udpDestination(dst: Destination, ctx: DialContext = {}): Promise<string | undefined> {
    this.asked.push({ host: dst.host, clientIp: ctx.clientIp });
    return dst.host === 'echo.test' ? '127.0.0.1' : undefined;
  }
}

const echo = dgram.createSocket('udp4');
const echoed: string[] = [];
echo.on('message', (msg, rinfo) => {
  echoed.push(msg.toString());
  echo.send(msg, rinfo.port, rinfo.address);
});
echo.bind(0, '127.0.0.1');
await once(echo, 'listening');
const echoPort = echo.address().port;
const dialer = new UdpOnlyDialer();
const server = createSocks5Server({ dialer });
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const socksPort = (server.address() as AddressInfo).port;
after(() => {
  echo.close();
  server.closeAllConnections();
  server.close();
  for (const s of dialer.sockets) s.close();
});

/** ATYP 3 header: RSV RSV FRAG ATYP LEN NAME PORT. */
function byName(name: string, port: number, payload: string): Buffer {
  const n = Buffer.from(name);
  return Buffer.concat([
    hex(`0000 00 03 ${n.length.toString(16).padStart(2, '0')}`),
    n,
    hex(portHex(port)),
    Buffer.from(payload),
  ]);
}

async function waitUntil(what: string, check: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a datagram by name goes where udpDestination resolved it; a refused one is dropped', async () => {
  const control = new RawClient(socksPort);
  control.write(hex('050100 05030001 00000000 0000'));
  assert.equal((await control.read(2)).toString('hex'), '0500');
  const reply = await control.read(10);
  const relayPort = reply.readUInt16BE(8);
  const client = dgram.createSocket('udp4');
  client.bind(0, '127.0.0.1');
  await once(client, 'listening');
  const back: Buffer[] = [];
  client.on('message', (m) => back.push(m));
  try {
    client.send(byName('refused.test', echoPort, 'nope'), relayPort, '127.0.0.1');
    client.send(byName('echo.test', echoPort, 'ping'), relayPort, '127.0.0.1');
    await waitUntil('the echo of ping', () => back.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(echoed, ['ping'], 'the refused datagram never reached the echo server');
    assert.deepEqual(
      dialer.asked.map((a) => a.host),
      ['refused.test', 'echo.test'],
    );
    assert.ok(
      dialer.asked.every((a) => a.clientIp === '127.0.0.1'),
      'the client address reaches the guard',
    );
    assert.equal(net.isIP(back[0]?.subarray(4, 8).join('.') ?? ''), 4);
  } finally {
    client.close();
    control.destroy();
  }
});
