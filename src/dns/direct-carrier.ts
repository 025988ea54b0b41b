/**
 * The carrier for loopback nameservers (a dnsmasq or unbound on this machine):
 * plain sockets, no link. Such a server is a local service that does its own
 * forwarding; forcing its queries onto an uplink would only break them.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import type { Socket } from 'node:net';
import type { Carrier } from './link-query.js';
import type { ConnectOptions, Destination } from '../links/link.js';

export const directCarrier: Carrier = {
  id: 'direct',
  async openUdp(family: 4 | 6): Promise<dgram.Socket> {
    const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    socket.bind(0, family === 4 ? '127.0.0.1' : '::1');
    await once(socket, 'listening');
    return socket;
  },
  async connect(dst: Destination, opts: ConnectOptions = {}): Promise<Socket> {
    const socket = net.connect({ host: dst.host, port: dst.port, autoSelectFamily: false });
    try {
      await once(socket, 'connect', opts.signal ? { signal: opts.signal } : {});
      return socket;
    } catch (err) {
      socket.destroy();
      throw err;
    }
  },
};
