/**
 * Links for resolver tests on loopback: plain sockets on 127.0.0.1 behind the
 * `Link` interface, counting what they opened. A dead link's datagrams vanish
 * (send calls back as if sent, nothing leaves), like an uplink that died
 * silently; a TCP-only link (udp: false) is a relay.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import type { ConnectOptions, Destination, Link, LinkCapabilities, LinkStats } from '../../src/links/link.js';

export interface FakeLinkOptions {
  /** Datagrams are swallowed (default false). */
  dead?: boolean;
  /** capabilities.udp (default true). */
  udp?: boolean;
  families?: Array<4 | 6>;
}

export class FakeLink implements Link {
  readonly capabilities: LinkCapabilities;
  readonly description: string;
  /** Sockets opened and not yet closed (close() not called). */
  readonly open = new Set<dgram.Socket>();
  udpOpened = 0;
  datagramsSent = 0;
  connects = 0;

  constructor(
    readonly id: string,
    private readonly opts: FakeLinkOptions = {},
  ) {
    this.capabilities = {
      udp: opts.udp ?? true,
      remoteNames: false,
      families: new Set(opts.families ?? [4]),
    };
    this.description = `${id} (fake${opts.dead ? ', dead' : ''})`;
  }

  async openUdp(family: 4 | 6): Promise<dgram.Socket> {
    if (!this.capabilities.udp) throw new Error(`${this.id} cannot carry UDP`);
    const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    socket.bind(0, family === 4 ? '127.0.0.1' : '::1');
    await once(socket, 'listening');
    this.udpOpened++;
    this.open.add(socket);
    const close = socket.close.bind(socket);
    socket.close = ((cb?: () => void) => {
      this.open.delete(socket);
      return close(cb);
    }) as typeof socket.close;
    if (this.opts.dead) {
      socket.send = ((...args: unknown[]) => {
        const cb = args.at(-1);
        if (typeof cb === 'function') process.nextTick(cb, null, 0);
      }) as typeof socket.send;
    } else {
      const send = socket.send.bind(socket) as (...args: unknown[]) => void;
      socket.send = ((...args: unknown[]) => {
        this.datagramsSent++;
        send(...args);
      }) as typeof socket.send;
    }
    return socket;
  }

  async connect(dst: Destination, opts: ConnectOptions = {}): Promise<net.Socket> {
    this.connects++;
    const socket = net.connect({ host: dst.host, port: dst.port });
    try {
      await once(socket, 'connect', opts.signal ? { signal: opts.signal } : {});
      return socket;
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  stats(): LinkStats {
    return { bytesIn: 0, bytesOut: 0, activeConnections: 0, connectFailures: 0 };
  }

  async close(): Promise<void> {
    this.destroy();
  }

  destroy(): void {
    for (const s of this.open) s.close();
  }
}
