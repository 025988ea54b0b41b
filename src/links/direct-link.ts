/**
 * DirectLink: connections by the machine's own routing table, bound to no
 * interface — what `linkmux server` relays through (a server has one fast line,
 * nothing to choose between). The same Link seam as every other kind, so the
 * server reuses the pool dialer (resolution, destination guard, timeouts) and
 * its counters feed status like any link's.
 *
 * Guarantees: connects only to an IP literal (the dialer resolves and checks the
 * address first, so a DNS answer cannot swap in one the guard refused); the
 * deadline, AbortSignal and close()/destroy() follow LinkSockets' contract.
 */
import net, { type Socket } from 'node:net';
import { once } from 'node:events';
import type { Socket as UdpSocket } from 'node:dgram';
import { LinkmuxError, describe } from '../util/errors.js';
import type { ConnectOptions, Destination, Link, LinkCapabilities, LinkStats } from './link.js';
import { LinkSockets } from './link-sockets.js';
import { formatDestination } from './local-link.js';

export class DirectLink implements Link {
  readonly description: string;
  readonly capabilities: LinkCapabilities = Object.freeze({
    udp: false,
    remoteNames: false,
    families: new Set<4 | 6>([4, 6]),
  });
  private readonly sockets: LinkSockets;
  private open = true;

  constructor(readonly id = 'direct') {
    this.sockets = new LinkSockets(id);
    this.description = `${id} (this machine's routing table)`;
  }

  async connect(dst: Destination, opts: ConnectOptions = {}): Promise<Socket> {
    const host = dst.host.replace(/^\[(.*)\]$/, '$1');
    const where = formatDestination(host, dst.port);
    if (!this.open) throw new LinkmuxError('LINKMUX_ERR_CONNECT', `link ${this.id} is shutting down`);
    if (net.isIP(host) === 0) {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONNECT',
        `link ${this.id} connects to IP addresses only, got "${host}" (this is a bug in the caller)`,
      );
    }
    return this.sockets.withDeadline(
      opts,
      where,
      'the destination may be down',
      async (signal) => {
        const socket = this.sockets.track(net.connect({ host, port: dst.port, autoSelectFamily: false }));
        try {
          await once(socket, 'connect', { signal });
        } catch (err) {
          socket.destroy();
          throw err;
        }
        this.sockets.opened(socket);
        return socket;
      },
      (err) =>
        err instanceof LinkmuxError
          ? err
          : new LinkmuxError('LINKMUX_ERR_CONNECT', `cannot connect to ${where}: ${describe(err)}`, {
              cause: err,
            }),
    );
  }

  openUdp(_family: 4 | 6): Promise<UdpSocket> {
    return Promise.reject(
      new LinkmuxError('LINKMUX_ERR_UNSUPPORTED_PLATFORM', `link ${this.id} relays TCP only`),
    );
  }

  stats(): LinkStats {
    return this.sockets.stats();
  }

  close(): Promise<void> {
    this.open = false;
    return this.sockets.drain();
  }

  destroy(): void {
    this.open = false;
    this.sockets.destroyAll();
  }
}
