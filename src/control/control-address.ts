/**
 * The address of the control API, as the user writes it: "HOST:PORT" (an IPv4
 * address, a bracketed IPv6 address or a host name) or a unix socket path (any
 * text starting with "/"). Parsed in this one place so the daemon and
 * `linkmux status` accept exactly the same syntax. Pure: no sockets, no DNS.
 */
import { formatHostPort, parseHostPort } from '../net/address.js';
import { LinkmuxError } from '../util/errors.js';

/** Where `linkmux up` serves its control API and `linkmux status` looks for it by default. */
export const DEFAULT_CONTROL_ADDRESS = '127.0.0.1:9190';

export type ControlAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/**
 * "127.0.0.1:9190", "[::1]:9190", "localhost:9190" or "/run/linkmux.sock".
 * Port 0 asks the OS for a free port (tests). Throws LINKMUX_ERR_USAGE naming `flag`.
 */
export function parseControlAddress(text: string, flag = '--control'): ControlAddress {
  const value = text.trim();
  if (value.startsWith('/')) return { kind: 'unix', path: value };
  const hp = parseHostPort(value);
  if (!hp) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `${flag} takes HOST:PORT (e.g. ${DEFAULT_CONTROL_ADDRESS} or [::1]:9190) or an absolute unix socket path, not "${text}"`,
    );
  }
  return { kind: 'tcp', host: hp.host, port: hp.port };
}

/** The inverse of parseControlAddress: brackets IPv6 hosts so the text parses back. */
export function formatControlAddress(addr: ControlAddress): string {
  if (addr.kind === 'unix') return addr.path;
  return formatHostPort(addr);
}
