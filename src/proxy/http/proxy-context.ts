/**
 * What the HTTP proxy's handlers share: the dialer they must open every
 * outbound connection through (which applies the rules), the credentials check, the logger and
 * the idle timeout. Built once per server from its options.
 */
import { formatHostPort } from '../../net/address.js';
import type { Logger } from '../../util/logger.js';
import type { Dialer } from '../dialer.js';

export interface HttpProxyContext {
  dialer: Dialer;
  logger: Logger;
  /**
   * True when the Proxy-Authorization value is acceptable (always true without
   * auth); a wrong value (not a missing one) is reported as a failed login of `clientIp`.
   */
  authorize: (proxyAuthorization: string | undefined, clientIp?: string) => boolean;
  /** Milliseconds without a byte either way before a tunnel or exchange is closed; 0 = never. */
  idleTimeoutMs: number;
}

/** "address:port" of a client socket, for logs and the dialer's sticky rules. */
export function clientLabel(socket: { remoteAddress?: string; remotePort?: number }): string {
  return formatHostPort({ host: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 });
}
