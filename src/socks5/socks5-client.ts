/**
 * The client side of a SOCKS5 CONNECT (RFC 1928, RFC 1929 username/password)
 * over a stream that is already connected, usually the TLS socket to a relay
 * node:
 *
 *   linkmux ──greeting──► node        05 01 <00|02>            (one method only)
 *           ◄──method───              05 <method>
 *           ──auth──────►             01 ULEN UNAME PLEN PASSWD (only if 02 was chosen)
 *           ◄──status───              01 00
 *           ──CONNECT───►             05 01 00 ATYP DST.ADDR DST.PORT
 *           ◄──reply────              05 REP 00 ATYP BND.ADDR BND.PORT  [target's first bytes…]
 *
 * Each message is sent only once the previous answer asked for it. The answers
 * are parsed by Socks5ClientReader, a pure state machine fed chunks of any size.
 *
 * Guarantees: on success the socket is handed back with nothing lost (bytes
 * after the reply are unshift()ed) and without any listener of ours, in its
 * initial read state (a 'data' listener or pipe() starts the flow); on failure
 * our listeners are removed too but the socket is left for the caller to
 * destroy. Failures are LinkmuxErrors whose code says who is to blame: the
 * node refusing us is LINKMUX_ERR_NODE_AUTH; REP 0x05 (the destination
 * refused) is LINKMUX_ERR_REFUSED, which ends the dialer's race; REP 0x03/0x04
 * (the far side cannot reach the destination) LINKMUX_ERR_UNREACHABLE; REP
 * 0x02 LINKMUX_ERR_DENIED. No message holds the password.
 */
import type { Socket } from 'node:net';
import { LinkmuxError, describe } from '../util/errors.js';
import { ATYP_DOMAIN, ATYP_IPV4, ATYP_IPV6, encodeAddress, isDomainBytes } from './socks5-address.js';
import { formatHostPort, ipFamily, ipFromBytes, stripBrackets } from '../net/address.js';
import {
  METHOD_NONE_ACCEPTABLE,
  METHOD_NO_AUTH,
  METHOD_USERNAME_PASSWORD,
  REP,
  SOCKS_VERSION,
} from './socks5-replies.js';
import { takeBytes } from './byte-queue.js';

export const DEFAULT_SOCKS5_CONNECT_TIMEOUT_MS = 10_000;

export interface Socks5ConnectOptions {
  /** An IP literal (sent as ATYP 1/4) or a domain (ATYP 3, resolved by the server). */
  dst: { host: string; port: number };
  /** RFC 1929 credentials; each 1-255 bytes in UTF-8. Without them only "no authentication" is offered. */
  auth?: { username: string; password: string };
  signal?: AbortSignal;
  /** The whole handshake, greeting to reply, in milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** How errors name the server, e.g. "node office-pc (198.18.100.2:7300)". */
  server: string;
}

// ---------------------------------------------------------------------------
// What the client sends

/** VER NMETHODS METHODS: exactly one method, so the server cannot pick another. */
export function encodeGreeting(method: number): Buffer {
  return Buffer.from([SOCKS_VERSION, 1, method]);
}

/** RFC 1929 §2: VER(0x01) ULEN UNAME PLEN PASSWD. Throws a RangeError for an empty or >255-byte field. */
export function encodeAuthRequest(username: string, password: string): Buffer {
  const u = Buffer.from(username, 'utf8');
  const p = Buffer.from(password, 'utf8');
  for (const [what, b] of [
    ['username', u],
    ['password', p],
  ] as const) {
    if (b.length < 1 || b.length > 255) {
      throw new RangeError(`the SOCKS5 ${what} must be 1-255 bytes in UTF-8, got ${b.length}`);
    }
  }
  return Buffer.concat([Buffer.from([0x01, u.length]), u, Buffer.from([p.length]), p]);
}

/** VER CMD(0x01 CONNECT) RSV ATYP DST.ADDR DST.PORT. */
export function encodeConnectRequest(host: string, port: number): Buffer {
  return Buffer.concat([Buffer.from([SOCKS_VERSION, 0x01, 0x00]), encodeAddress(host, port)]);
}

// ---------------------------------------------------------------------------
// What the client reads

export type Socks5ClientEvent =
  /** The method the server chose; anything but the one offered stops the reader. */
  | { type: 'method'; method: number }
  /** RFC 1929 status; non-zero is a refusal and stops the reader. */
  | { type: 'auth'; status: number }
  /** The reply to CONNECT; afterwards the reader is done and holds what followed (takeTrailing). */
  | { type: 'reply'; rep: number; bnd: { host: string; port: number } }
  /** The bytes are not a SOCKS5 answer; the reader stops. */
  | { type: 'error'; reason: string };

const enum R {
  MethodVer,
  Method,
  AuthVer,
  AuthStatus,
  ReplyVer,
  ReplyRep,
  ReplyRsv,
  ReplyAtyp,
  ReplyDomainLen,
  ReplyAddr,
  ReplyPort,
  Done,
  Stopped,
}

/**
 * The server's answers during a CONNECT handshake, as a state machine fed
 * chunks of any size (one byte at a time, split anywhere, all answers plus the
 * target's first bytes at once) yielding the same events in every case. It
 * never throws on server input; malformed input yields one `error` event at the
 * first byte that proves it. Memory is bounded by the longest answer (262
 * bytes) until the reply, after which bytes are kept for takeTrailing().
 */
export class Socks5ClientReader {
  private state = R.MethodVer;
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private need = 1;
  private rep = 0;
  private atyp = 0;
  private host = '';

  /** `offered`: the one method the greeting offered (0x00 or 0x02). */
  constructor(private readonly offered: number) {}

  /** True once the reply is read: later input belongs to the target (see takeTrailing). */
  get done(): boolean {
    return this.state === R.Done;
  }

  /** True after an error, a refused method or a failed authentication. */
  get stopped(): boolean {
    return this.state === R.Stopped;
  }

  /** What the reader waits for, for messages. */
  get waitingFor(): string {
    if (this.state <= R.Method) return 'its method selection';
    if (this.state <= R.AuthStatus) return 'its authentication status';
    return 'its reply';
  }

  push(chunk: Uint8Array): Socks5ClientEvent[] {
    if (this.state === R.Stopped || chunk.length === 0) return [];
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.buffered += chunk.length;
    const events: Socks5ClientEvent[] = [];
    while (!this.done && !this.stopped && this.buffered >= this.need) {
      const ev = this.step(this.consume(this.need));
      if (ev) events.push(ev);
    }
    return events;
  }

  /** The bytes received after the reply, emptying the buffer. */
  takeTrailing(): Buffer {
    if (this.state !== R.Done) return Buffer.alloc(0);
    const out = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks.length = 0;
    this.buffered = 0;
    return out;
  }

  private step(b: Buffer): Socks5ClientEvent | undefined {
    const byte = b[0] ?? 0;
    switch (this.state) {
      case R.MethodVer:
        if (byte !== SOCKS_VERSION) return this.fail(`method selection VER is ${hex(byte)}, not 0x05`);
        return this.expect(R.Method, 1);
      case R.Method:
        if (byte !== this.offered) this.stop();
        else if (byte === METHOD_USERNAME_PASSWORD) this.expect(R.AuthVer, 1);
        else this.expect(R.ReplyVer, 1);
        return { type: 'method', method: byte };
      case R.AuthVer:
        if (byte !== 0x01) return this.fail(`authentication status VER is ${hex(byte)}, not 0x01`);
        return this.expect(R.AuthStatus, 1);
      case R.AuthStatus:
        if (byte !== 0) this.stop();
        else this.expect(R.ReplyVer, 1);
        return { type: 'auth', status: byte };
      case R.ReplyVer:
        if (byte !== SOCKS_VERSION) return this.fail(`reply VER is ${hex(byte)}, not 0x05`);
        return this.expect(R.ReplyRep, 1);
      case R.ReplyRep:
        this.rep = byte;
        return this.expect(R.ReplyRsv, 1);
      case R.ReplyRsv:
        if (byte !== 0) return this.fail(`reply RSV is ${hex(byte)}, not 0x00`);
        return this.expect(R.ReplyAtyp, 1);
      case R.ReplyAtyp:
        this.atyp = byte;
        if (byte === ATYP_IPV4) return this.expect(R.ReplyAddr, 4);
        if (byte === ATYP_IPV6) return this.expect(R.ReplyAddr, 16);
        if (byte === ATYP_DOMAIN) return this.expect(R.ReplyDomainLen, 1);
        return this.fail(`reply address type is ${hex(byte)}`);
      case R.ReplyDomainLen:
        if (byte === 0) return this.fail('reply holds an empty domain name');
        return this.expect(R.ReplyAddr, byte);
      case R.ReplyAddr:
        if (this.atyp === ATYP_IPV4) this.host = ipFromBytes(b, 0, 4);
        else if (this.atyp === ATYP_IPV6) this.host = ipFromBytes(b, 0, 16);
        else if (!isDomainBytes(b)) return this.fail('reply domain name holds a non-printable byte');
        else this.host = b.toString('latin1');
        return this.expect(R.ReplyPort, 2);
      case R.ReplyPort:
        this.state = R.Done;
        return { type: 'reply', rep: this.rep, bnd: { host: this.host, port: b.readUInt16BE(0) } };
      default:
        return undefined;
    }
  }

  private expect(state: R, need: number): undefined {
    this.state = state;
    this.need = need;
    return undefined;
  }

  private stop(): void {
    this.state = R.Stopped;
    this.chunks.length = 0;
    this.buffered = 0;
  }

  private fail(reason: string): Socks5ClientEvent {
    this.stop();
    return { type: 'error', reason };
  }

  /** Removes n buffered bytes (n <= buffered). */
  private consume(n: number): Buffer {
    this.buffered -= n;
    return takeBytes(this.chunks, n);
  }
}

// ---------------------------------------------------------------------------
// The handshake over a socket

/**
 * Runs the handshake on a connected socket that nothing else reads yet;
 * resolves with the reply's BND address once the server has connected to
 * `dst`. See the module comment for what happens to the socket either way.
 */
export async function socks5Connect(
  socket: Socket,
  opts: Socks5ConnectOptions,
): Promise<{ host: string; port: number }> {
  const { server, dst, auth, signal } = opts;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_SOCKS5_CONNECT_TIMEOUT_MS;
  const where = formatHostPort(dst);
  const request = encodeRequestOrThrow(opts, where);
  const authRequest = auth && encodeAuthOrThrow(auth, server);
  if (signal?.aborted) throw aborted(server, where, signal);
  if (socket.destroyed || socket.readableEnded) {
    throw new LinkmuxError('LINKMUX_ERR_CONNECT', `the connection to ${server} is already closed`);
  }

  const offered = authRequest ? METHOD_USERNAME_PASSWORD : METHOD_NO_AUTH;
  const reader = new Socks5ClientReader(offered);

  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: LinkmuxError | undefined, bnd?: { host: string; port: number }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
      if (err) return reject(err);
      const trailing = reader.takeTrailing();
      if (trailing.length > 0) socket.unshift(trailing);
      resolve(bnd as { host: string; port: number });
    };

    const onEvent = (ev: Socks5ClientEvent): void => {
      switch (ev.type) {
        case 'error':
          return finish(
            new LinkmuxError(
              'LINKMUX_ERR_BAD_RESPONSE',
              `${server} answered something that is not SOCKS5 (${ev.reason}): is that address a linkmux node?`,
            ),
          );
        case 'method':
          if (ev.method !== offered) return finish(methodRefused(ev.method, offered, server));
          if (authRequest) socket.write(authRequest);
          else socket.write(request);
          return;
        case 'auth':
          if (ev.status !== 0) {
            return finish(
              new LinkmuxError(
                'LINKMUX_ERR_NODE_AUTH',
                `${server} refused the credentials: the token is wrong or was rotated; ` +
                  'get a new one with `linkmux node --token` on that machine',
              ),
            );
          }
          socket.write(request);
          return;
        case 'reply':
          if (ev.rep !== REP.SUCCEEDED) return finish(replyError(ev.rep, server, where));
          return finish(undefined, ev.bnd);
      }
    };

    // Paused-mode reads: removing this listener leaves the socket as found, so
    // the caller's later 'data' listener or pipe() sees the unshift()ed bytes first.
    const onReadable = () => {
      let chunk: Buffer | null;
      while (!settled && (chunk = socket.read() as Buffer | null) !== null) {
        for (const ev of reader.push(chunk)) {
          onEvent(ev);
          if (settled) break;
        }
      }
    };
    const closedEarly = (detail: string, cause?: unknown) =>
      finish(
        new LinkmuxError(
          'LINKMUX_ERR_CONNECT',
          `the connection to ${server} ${detail} before it sent ${reader.waitingFor} (CONNECT ${where})`,
          cause === undefined ? undefined : { cause },
        ),
      );
    const onEnd = () => closedEarly('was closed');
    const onClose = () => closedEarly('was closed');
    const onError = (err: Error) => closedEarly(`failed (${describe(err)})`, err);
    const onAbort = () => finish(aborted(server, where, signal));
    const timer = setTimeout(() => {
      finish(
        new LinkmuxError(
          'LINKMUX_ERR_TIMEOUT',
          `${server} did not complete the SOCKS5 handshake for ${where} within ${timeoutMs} ms ` +
            `(it had not sent ${reader.waitingFor})`,
        ),
      );
    }, timeoutMs);

    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.write(encodeGreeting(offered));
  });
}

function encodeRequestOrThrow(opts: Socks5ConnectOptions, where: string): Buffer {
  const { host, port } = opts.dst;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONNECT',
      `cannot CONNECT ${where} through ${opts.server}: ${port} is not a port from 1 to 65535`,
    );
  }
  const bare = stripBrackets(host);
  const name = Buffer.from(host, 'utf8');
  if (ipFamily(bare) === 0 && (name.length < 1 || name.length > 255 || !isDomainBytes(name))) {
    throw new LinkmuxError(
      'LINKMUX_ERR_DNS',
      `cannot CONNECT ${where} through ${opts.server}: that is not a host name ` +
        '(1-255 printable ASCII bytes; give international names in punycode)',
    );
  }
  return encodeConnectRequest(host, port);
}

function encodeAuthOrThrow(auth: { username: string; password: string }, server: string): Buffer {
  try {
    return encodeAuthRequest(auth.username, auth.password);
  } catch (err) {
    // The RangeError names the field and its length, never its content.
    throw new LinkmuxError('LINKMUX_ERR_NODE_AUTH', `cannot log in to ${server}: ${(err as Error).message}`);
  }
}

function methodRefused(method: number, offered: number, server: string): LinkmuxError {
  const getToken = 'get a token with `linkmux node --token` on that machine';
  if (method === METHOD_NONE_ACCEPTABLE && offered === METHOD_USERNAME_PASSWORD) {
    return new LinkmuxError(
      'LINKMUX_ERR_NODE_AUTH',
      `${server} refuses username/password login (method 0xff): check that the address is a linkmux node, ` +
        'or that the server takes a password at all',
    );
  }
  if (offered === METHOD_NO_AUTH) {
    return new LinkmuxError(
      'LINKMUX_ERR_NODE_AUTH',
      `${server} requires a password (it chose method ${hex(method)}): ${getToken}`,
    );
  }
  return new LinkmuxError(
    'LINKMUX_ERR_NODE_AUTH',
    `${server} chose authentication method ${hex(method)}, which linkmux did not offer: ${getToken}`,
  );
}

/** The error a REP code stands for, its code naming who is to blame. */
function replyError(rep: number, server: string, where: string): LinkmuxError {
  const unreachable = (text: string) =>
    new LinkmuxError(
      'LINKMUX_ERR_UNREACHABLE',
      `${server} cannot reach ${where}: ${text} (reply ${hex(rep)})`,
    );
  switch (rep) {
    case REP.NOT_ALLOWED:
      return new LinkmuxError(
        'LINKMUX_ERR_DENIED',
        `${server} refuses to relay to ${where} (reply 0x02, not allowed by its policy); ` +
          'if it should be reachable, add it to node.allow on that machine',
      );
    case REP.NETWORK_UNREACHABLE:
      return unreachable('network unreachable');
    case REP.HOST_UNREACHABLE:
      return unreachable('host unreachable');
    case REP.CONNECTION_REFUSED:
      return new LinkmuxError(
        'LINKMUX_ERR_REFUSED',
        `${server} cannot reach ${where}: connection refused (reply ${hex(rep)}): nothing listens there`,
      );
    case REP.TTL_EXPIRED:
      return new LinkmuxError(
        'LINKMUX_ERR_TIMEOUT',
        `${server} cannot reach ${where}: the connection timed out (reply 0x06)`,
      );
    case REP.GENERAL_FAILURE:
      return new LinkmuxError(
        'LINKMUX_ERR_CONNECT',
        `${server} cannot reach ${where}: general failure (reply 0x01)`,
      );
    case REP.COMMAND_NOT_SUPPORTED:
    case REP.ADDRESS_TYPE_NOT_SUPPORTED:
      return new LinkmuxError(
        'LINKMUX_ERR_CONNECT',
        `${server} does not support this ${rep === REP.COMMAND_NOT_SUPPORTED ? 'command' : 'address type'} ` +
          `(reply ${hex(rep)}) for ${where}: is it a linkmux node?`,
      );
    default:
      return new LinkmuxError(
        'LINKMUX_ERR_CONNECT',
        `${server} cannot reach ${where}: it answered with the unknown reply code ${hex(rep)}`,
      );
  }
}

function aborted(server: string, where: string, signal: AbortSignal | undefined): LinkmuxError {
  return new LinkmuxError('LINKMUX_ERR_ABORTED', `CONNECT ${where} through ${server} was aborted`, {
    cause: signal?.reason,
  });
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}
