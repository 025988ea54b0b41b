/**
 * A UDP echo responder (RFC 862) for the testbed's server: every datagram is sent
 * back, unchanged, to the address and port it came from. Tests use it to check
 * that UDP through a link gets its answers (the server sees the uplink's ISP
 * address after NAT, so an echo returns through the same uplink).
 *
 * Guarantees: one socket, no state per peer; `close()` resolves once the socket is
 * closed and is safe to call twice.
 */
import dgram from 'node:dgram';
import net from 'node:net';

export interface UdpEcho {
  port: number;
  close(): Promise<void>;
}

export async function startUdpEcho(host: string, port: number): Promise<UdpEcho> {
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  // A failed send (the peer vanished) must not bring the server down.
  socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address, () => {}));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  return {
    port: socket.address().port,
    close: () => (closed ??= new Promise<void>((resolve) => socket.close(() => resolve()))),
  };
}
