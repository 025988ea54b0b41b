/**
 * LocalLink.openUdp: the UDP socket a SOCKS5 UDP association sends through
 * really works, in both bind modes, and is closed by destroy().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { LocalLink } from '../../src/links/local-link.js';
import { silentLogger } from '../../src/util/logger.js';

async function echoServer(): Promise<{ port: number; close: () => void }> {
  const server = dgram.createSocket('udp4');
  server.on('message', (msg, rinfo) =>
    server.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address),
  );
  server.bind(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: server.address().port, close: () => server.close() };
}

const lo = {
  name: 'lo',
  up: true,
  loopback: true,
  addresses: [{ address: '127.0.0.1', family: 4 as const, prefixLength: 8 }],
};

for (const mode of ['device', 'address'] as const) {
  test(`openUdp in ${mode} mode: a datagram goes out and its answer comes back; destroy() closes it`, async () => {
    const echo = await echoServer();
    const link = new LocalLink(lo, { mode, logger: silentLogger });
    try {
      const socket = await link.openUdp(4);
      // Bound to the link's source address, not 0.0.0.0: unconnected sends are routed
      // by the bound source, which is what `ip rule from ADDR` matches.
      assert.equal(socket.address().address, '127.0.0.1');
      const reply = once(socket, 'message');
      socket.send('ping', echo.port, '127.0.0.1');
      const timeout = setTimeout(() => socket.emit('error', new Error('no UDP reply within 5 s')), 5_000);
      const [msg] = (await reply) as [Buffer];
      clearTimeout(timeout);
      assert.equal(msg.toString(), 'echo:ping');
      const closed = once(socket, 'close');
      link.destroy();
      await closed;
    } finally {
      link.destroy();
      echo.close();
    }
  });
}

test('openUdp refuses a family the link has no address for', async () => {
  const link = new LocalLink(lo, { mode: 'address', logger: silentLogger });
  await assert.rejects(link.openUdp(6), /no IPv6 address/);
  link.destroy();
});
