/**
 * One SOCKS5 UDP association (RFC 1928 §7): a relay socket facing the client
 * and one outbound socket from the dialer (so ONE link carries the whole
 * association), alive exactly as long as the TCP control connection.
 *
 *   client ──UDP+header──► relay socket ──payload──► dialer.openUdp (one link) ──► target
 *   client ◄──UDP+header── relay socket ◄──payload── outbound socket ◄───────────── target
 *
 * Guarantees: only datagrams from the client are relayed (the IP of the control
 * connection, and the port it declared, or else the port of its first
 * datagram); fragmented, malformed and rule-denied datagrams are dropped, as
 * are datagrams the own-host guard refuses (a LAN client cannot reach this
 * host's loopback or own addresses over UDP either); names are looked up
 * through the links (Dialer.udpDestination),
 * never answered; the outbound socket is opened on the first datagram with the
 * family of its destination, and datagrams of the other family are dropped;
 * when the control connection closes or either UDP socket fails, both UDP
 * sockets are closed and the control connection is destroyed.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Socket } from 'node:net';
import { describe } from '../../util/errors.js';
import type { Logger } from '../../util/logger.js';
import type { Dialer } from '../dialer.js';
import type { Socks5Address } from '../../socks5/socks5-address.js';
import { unmapIPv4 } from '../../net/address.js';
import { encodeUdpDatagram, parseUdpDatagram } from '../../socks5/socks5-parser.js';

/** Datagrams held while the outbound socket is being opened; later ones are dropped. */
const MAX_PENDING_DATAGRAMS = 64;

export interface UdpAssociationOptions {
  /** The TCP connection that carried the UDP ASSOCIATE request. */
  control: Socket;
  /** DST.ADDR/DST.PORT of the request: where the client will send from (0 = unknown). */
  declared: Socks5Address;
  dialer: Dialer;
  logger: Logger;
  /** "ip:port" of the client, for logs. */
  peer: string;
}

/** Where the client must send its datagrams (the reply's BND). */
export interface UdpAssociation {
  host: string;
  port: number;
}

/**
 * Binds the relay socket on the address the client reached the TCP listener
 * on, and wires the teardown to the control connection. Rejects (with every
 * socket closed) when the relay socket cannot be bound.
 */
export async function openUdpAssociation(opts: UdpAssociationOptions): Promise<UdpAssociation> {
  const { control, dialer, logger, peer } = opts;
  const localHost = unmapIPv4(control.localAddress ?? '127.0.0.1');
  const clientIp = unmapIPv4(control.remoteAddress ?? '');
  let clientPort = opts.declared.port === 0 ? undefined : opts.declared.port;
  const relay = dgram.createSocket(net.isIPv6(localHost) ? 'udp6' : 'udp4');

  let outbound: dgram.Socket | undefined;
  let outFamily: 4 | 6 = 4;
  let opening = false;
  const pending: Array<{ data: Buffer; host: string; port: number }> = [];
  let closed = false;
  const abort = new AbortController();

  const teardown = () => {
    if (closed) return;
    closed = true;
    abort.abort();
    pending.length = 0;
    closeQuietly(relay);
    if (outbound) closeQuietly(outbound);
    control.destroy();
  };
  control.once('close', teardown);
  relay.on('error', (err) => {
    logger.debug(`socks5 ${peer}: UDP relay socket failed: ${describe(err)}`);
    teardown();
  });

  // Each datagram passes the dialer's checks (rules, the own-host guard) and its name is
  // looked up through the links; dgram's own lookup would use the system resolver.
  const where = (host: string, port: number): Promise<string | undefined> =>
    dialer.udpDestination
      ? dialer.udpDestination({ host, port }, { client: peer, clientIp })
      : Promise.resolve(host);
  const sendOut = (data: Buffer, host: string, port: number) => {
    if (!outbound) return;
    where(host, port).then(
      (ip) => {
        const out = outbound;
        if (ip === undefined || !out || closed) return;
        if (net.isIP(ip) !== outFamily) {
          logger.debug(
            `socks5 ${peer}: UDP datagram to ${host} dropped: the association's link socket is IPv${outFamily}`,
          );
          return;
        }
        out.send(data, port, ip, (err) => {
          if (err) logger.debug(`socks5 ${peer}: UDP send to ${host}:${port} failed: ${describe(err)}`);
        });
      },
      (err: unknown) => logger.debug(`socks5 ${peer}: UDP datagram to ${host} dropped: ${describe(err)}`),
    );
  };

  const openOutbound = async (family: 4 | 6) => {
    opening = true;
    try {
      const { socket, link } = await dialer.openUdp(family, { signal: abort.signal, client: peer });
      if (closed) {
        closeQuietly(socket);
        return;
      }
      outbound = socket;
      outFamily = family;
      logger.debug(`socks5 ${peer}: UDP association via ${link}`);
      socket.on('error', (err) => {
        logger.debug(`socks5 ${peer}: UDP link socket failed: ${describe(err)}`);
        teardown();
      });
      socket.on('message', (msg, rinfo) => {
        if (clientPort === undefined || closed) return;
        relay.send(encodeUdpDatagram(rinfo.address, rinfo.port, msg), clientPort, clientIp, (err) => {
          if (err) logger.debug(`socks5 ${peer}: UDP datagram to the client failed: ${describe(err)}`);
        });
      });
      for (const p of pending.splice(0)) sendOut(p.data, p.host, p.port);
    } catch (err) {
      if (!closed) logger.warn(`socks5 ${peer}: no link for a UDP association: ${describe(err)}`);
      teardown();
    }
  };

  relay.on('message', (msg, rinfo) => {
    if (closed || unmapIPv4(rinfo.address) !== clientIp) return;
    if (clientPort !== undefined && rinfo.port !== clientPort) return;
    clientPort = rinfo.port;
    const parsed = parseUdpDatagram(msg);
    if (!parsed.ok) {
      logger.debug(`socks5 ${peer}: UDP datagram dropped (${parsed.reason})`);
      return;
    }
    const { host, port } = parsed.address;
    if (port === 0) {
      logger.debug(`socks5 ${peer}: UDP datagram to ${host}:0 dropped`);
      return;
    }
    if (outbound) return sendOut(parsed.data, host, port);
    // Copy: the payload must outlive this callback while the link socket opens.
    if (pending.length < MAX_PENDING_DATAGRAMS) pending.push({ data: Buffer.from(parsed.data), host, port });
    if (!opening) void openOutbound(parsed.address.type === 'ipv6' ? 6 : 4);
  });

  try {
    await new Promise<void>((resolve, reject) => {
      relay.once('error', reject);
      relay.bind({ address: localHost, port: 0 }, () => {
        relay.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    teardown();
    throw err;
  }
  if (closed) throw new Error('the control connection closed while the UDP relay was opening');
  return { host: localHost, port: relay.address().port };
}

function closeQuietly(socket: dgram.Socket): void {
  try {
    socket.close();
  } catch {
    // Already closed (ERR_SOCKET_DGRAM_NOT_RUNNING): nothing left to release.
  }
}
