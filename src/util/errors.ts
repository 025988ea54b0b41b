/**
 * The one error type of linkmux. Every failure a user can meet carries a stable
 * code (match on `code`, never on the message), a message that names the problem
 * and says what to do, and optionally the underlying cause. Messages never hold
 * credentials: callers pass URLs through `redactUrl` before quoting them.
 * docs/errors.md lists every code; a unit test keeps the two in step.
 */

export const ERROR_CODES = {
  LINKMUX_ERR_USAGE: 'a flag or argument is malformed',
  LINKMUX_ERR_UNSUPPORTED_PLATFORM: 'the feature needs an OS capability this machine lacks',
  LINKMUX_ERR_NOT_ROOT: 'the command changes network settings and must run as root',
  LINKMUX_ERR_COMMAND_FAILED: 'an external command (ip, nft, tc) failed',
  LINKMUX_ERR_LINK_UNKNOWN: 'a --link names no interface or address on this machine',
  LINKMUX_ERR_LINK_NO_ADDRESS: 'the named interface has no usable IP address',
  LINKMUX_ERR_LINK_DOWN: 'the named interface is down',
  LINKMUX_ERR_NO_LINKS: 'no usable uplink was found',
  LINKMUX_ERR_BIND_FAILED: 'a socket could not be forced onto its link',
  LINKMUX_ERR_DNS: 'a host name did not resolve',
  LINKMUX_ERR_NO_ROUTE:
    "no link has an address of the destination's family (an IPv6 destination over IPv4-only links)",
  LINKMUX_ERR_CONNECT: 'a connection could not be opened: the link failed',
  LINKMUX_ERR_REFUSED: 'the destination refused the connection (no link is to blame)',
  LINKMUX_ERR_UNREACHABLE:
    'the destination is unreachable, as the far side of a relay (or the direct route) reports; not the link failing',
  LINKMUX_ERR_LINK_CAPABILITY: 'the link cannot carry this kind of traffic (UDP through a relay)',
  LINKMUX_ERR_ADDRESS_IN_USE: 'a listen address is already in use by another program',
  LINKMUX_ERR_TIMEOUT: 'a connection or transfer stalled past its timeout',
  LINKMUX_ERR_URL: 'the URL is malformed or not http(s)',
  LINKMUX_ERR_HTTP_STATUS: 'the server answered with an error status',
  LINKMUX_ERR_TOO_MANY_REDIRECTS: 'the redirect chain is too long or loops',
  LINKMUX_ERR_BAD_RESPONSE: 'the server reply is malformed or contradicts the request',
  LINKMUX_ERR_RANGE_IGNORED: 'the server stopped honouring Range requests',
  LINKMUX_ERR_FILE_CHANGED: 'the file on the server changed during or since the download',
  LINKMUX_ERR_OUTPUT_EXISTS: 'the output file already exists',
  LINKMUX_ERR_PARTIAL_EXISTS: 'a partial download of the output already exists',
  LINKMUX_ERR_CONTROL_FILE: 'the resume control file is corrupt or belongs to another download',
  LINKMUX_ERR_DISK_FULL: 'the disk is full',
  LINKMUX_ERR_IO: 'reading or writing a local file failed',
  LINKMUX_ERR_CHECKSUM: 'the downloaded file does not match the expected checksum',
  LINKMUX_ERR_ALL_LINKS_FAILED: 'every link failed; the download stopped and can be resumed',
  LINKMUX_ERR_ABORTED: 'the job was interrupted',
  LINKMUX_ERR_CONFIG: 'the config file or a config value is malformed, unknown or unsafe',
  LINKMUX_ERR_DENIED: 'a proxy rule or the relay policy refuses this destination',
  LINKMUX_ERR_TOKEN: 'a join token is malformed, damaged or incomplete',
  LINKMUX_ERR_NODE_AUTH:
    'a relay node refused the credentials, or presented a certificate other than the pinned one',
  LINKMUX_ERR_NO_DESCRIPTORS:
    'this process ran out of file descriptors (EMFILE/ENFILE); a process condition, never a link fault',
  LINKMUX_ERR_MPTCP: 'kernel MPTCP is unavailable here, or its endpoints and limits could not be set',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class LinkmuxError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LinkmuxError';
    this.code = code;
  }
}

export function isLinkmuxError(err: unknown, code?: ErrorCode): err is LinkmuxError {
  return err instanceof LinkmuxError && (code === undefined || err.code === code);
}

/** The errno-style code of a Node system error, if any (ECONNREFUSED, ENOSPC …). */
export function systemCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Maps a file-system error to a LinkmuxError that tells the user what to do. */
export function fileError(err: unknown, path: string, resumable: boolean): LinkmuxError {
  if (err instanceof LinkmuxError) return err;
  const code = systemCode(err);
  const resume = resumable ? ' Nothing downloaded is lost: rerun the same command with -c to continue.' : '';
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new LinkmuxError(
      'LINKMUX_ERR_DISK_FULL',
      `no space left writing ${path}: free some space.${resume}`,
      {
        cause: err,
      },
    );
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new LinkmuxError('LINKMUX_ERR_IO', `cannot write ${path}: ${detail}.${resume}`, { cause: err });
}

/** A URL safe to print: user info (credentials) is replaced by "***". */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(String(url));
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.toString();
  } catch {
    return '<malformed URL>';
  }
}

/** EMFILE (this process) or ENFILE (the whole system) out of file descriptors: never a link's fault. */
export function isDescriptorExhaustion(err: unknown): boolean {
  if (isLinkmuxError(err, 'LINKMUX_ERR_NO_DESCRIPTORS')) return true;
  const codes = [systemCode(err), err instanceof Error ? systemCode(err.cause) : undefined];
  return codes.includes('EMFILE') || codes.includes('ENFILE');
}

/** A short human description of any thrown value. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = systemCode(err);
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
