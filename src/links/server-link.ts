/**
 * The link to a `linkmux server`: a Socks5Link (TLS pinned + SOCKS5, as for a
 * node) whose connection to the server is a kernel MPTCP socket. The first
 * subflow starts from `source()` (the first uplink in service, which the path
 * manager's source rule sends out of that uplink); the kernel adds one subflow
 * per MPTCP endpoint, i.e. per other uplink in service.
 *
 *   connect(dst) ─► MPTCP socket ═(subflow per uplink)═► server ─TLS─► SOCKS5 CONNECT dst
 */
import net, { type Socket } from 'node:net';
import { once } from 'node:events';
import type { JoinToken } from '../links/join-token.js';
import { nodeUsername } from '../links/node-credentials.js';
import { connectMptcp } from '../net/mptcp-socket.js';
import type { Resolver } from '../net/resolve.js';
import type { Socks5LinkOptions } from './socks5-link.js';

export function serverLinkOptions(
  token: JoinToken,
  opts: { resolve: Resolver; source?: () => string | undefined },
): Socks5LinkOptions {
  return {
    id: token.name,
    server: { host: token.host, port: token.port },
    auth: { username: nodeUsername(), password: token.secret },
    pinnedFingerprint: token.fingerprint,
    kind: `server ${token.name} (MPTCP)`,
    transport: async (server, signal): Promise<Socket> => {
      const ip = net.isIP(server.host)
        ? server.host
        : (await opts.resolve(server.host, new Set<4 | 6>([4, 6]))).address;
      const socket = connectMptcp(ip, server.port, opts.source?.());
      try {
        await once(socket, 'connect', { signal });
      } catch (err) {
        socket.destroy();
        throw err;
      }
      return socket;
    },
  };
}
