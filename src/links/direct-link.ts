/**
 * DirectLink: a Link whose connections are plain sockets, bound to no
 * interface or source address; the routing table decides, as for any other
 * program. For destinations no uplink can carry (loopback, this machine, its
 * LAN: net/direct-destination.ts): `linkmux get http://127.0.0.1:8080/f` uses
 * only this link.
 *
 * Guarantees: as every Link (link-sockets.ts): the timeout and AbortSignal
 * destroy a half-open socket and reject with a LinkmuxError naming the
 * destination; stats count every byte; close() drains, destroy() aborts.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import type { Socket } from 'node:net';
import { LinkmuxError, describe, systemCode } from '../util/errors.js';
import type { ConnectOptions, Destination, Link, LinkCapabilities, LinkStats } from './link.js';
import { LinkSockets, bindUdp } from './link-sockets.js';
import { formatHostPort, stripBrackets } from '../net/address.js';

export const DIRECT_LINK_ID = 'direct';

export class DirectLink implements Link {
  readonly capabilities: LinkCapabilities = { udp: true, remoteNames: false, families: new Set([4, 6]) };
  readonly description: string;
  private readonly sockets: LinkSockets;
  private state: 'open' | 'closing' | 'destroyed' = 'open';

  /**
   * `id` names it in status: 'direct' for the LAN route of `up` and `get`, or what
   * `linkmux server` relays through ('internet': the server's one fast line).
   */
  constructor(readonly id: string = DIRECT_LINK_ID) {
    this.sockets = new LinkSockets(id);
    this.description =
      id === DIRECT_LINK_ID
        ? 'direct (plain sockets, no uplink: this machine and its LAN)'
        : `${id} (plain sockets: this machine's routing table)`;
  }

  async connect(dst: Destination, opts: ConnectOptions = {}): Promise<Socket> {
    const where = formatHostPort(dst);
    if (this.state !== 'open') {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONNECT',
        `the direct link is shutting down; cannot connect to ${where}`,
      );
    }
    const host = stripBrackets(dst.host);
    return this.sockets.withDeadline(
      opts,
      where,
      'is the server running and listening on that address?',
      async (signal) => {
        const socket = this.sockets.track(net.connect({ host, port: dst.port }));
        try {
          await once(socket, 'connect', { signal });
          this.sockets.opened(socket);
          return socket;
        } catch (err) {
          socket.destroy();
          throw err;
        }
      },
      (err) => connectError(err, where),
    );
  }

  async openUdp(family: 4 | 6): Promise<dgram.Socket> {
    return this.sockets.trackUdp(await bindUdp(family));
  }

  stats(): LinkStats {
    return this.sockets.stats();
  }

  receivedBytes(): number {
    return this.sockets.bytesIn();
  }

  close(): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    return this.sockets.drain();
  }

  destroy(): void {
    this.state = 'destroyed';
    this.sockets.destroyAll();
  }
}

/** No uplink is involved, so only the destination can be to blame for a refusal or a missing route. */
function connectError(err: unknown, where: string): LinkmuxError {
  if (err instanceof LinkmuxError) return err;
  const code = systemCode(err);
  const prefix = `cannot connect directly to ${where}`;
  if (code === 'ECONNREFUSED') {
    return new LinkmuxError(
      'LINKMUX_ERR_REFUSED',
      `${prefix}: connection refused: is the server running, on that port?`,
      { cause: err },
    );
  }
  if (code === 'ENETUNREACH' || code === 'EHOSTUNREACH') {
    return new LinkmuxError(
      'LINKMUX_ERR_UNREACHABLE',
      `${prefix}: no route to it (${code}): check the address and this machine's routes`,
      { cause: err },
    );
  }
  return new LinkmuxError('LINKMUX_ERR_CONNECT', `${prefix}: ${describe(err)}`, { cause: err });
}
