/**
 * The SOCKS5 front end of `linkmux up` (RFC 1928 + RFC 1929 username/password).
 *
 *   client -> socks5 (CONNECT)       -> dialer.dial (rules, a link) -> target     [pipeSockets]
 *   client -> socks5 (UDP ASSOCIATE) -> relay socket <-> dialer.openUdp (one link) <-> targets
 *   client -> socks5 (BIND)          -> 0x07 command not supported
 *
 * It only parses, authenticates and relays (the dialer applies the rules): every outbound
 * socket comes from the Dialer. Domain names go to the dialer unresolved (the
 * link resolves them), and the reply's BND is the dialed socket's local address.
 *
 * Guarantees: a connection over the caps (`gate`) is closed before a byte is
 * read; the handshake (greeting to complete request) must finish within
 * `handshakeTimeoutMs`; a relay idle (no byte either way) for `idleTimeoutMs`
 * is closed; malformed input gets the RFC's answer and a close,
 * never a crash; a client socket is destroyed on error, on timeout, after a
 * refusal, and when the relay ends (pipeSockets tears both sides down); a
 * dial in flight is aborted when its client goes away; credentials are
 * compared in constant time and never logged.
 *
 * Shutdown mirrors http.Server: `close()` stops accepting and destroys the
 * connections still in the handshake or dialing (nothing was promised to
 * them yet), letting established relays and UDP associations drain;
 * `closeAllConnections()` destroys everything at once.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import type { Socket } from 'node:net';
import type { Destination } from '../../links/link.js';
import { describe } from '../../util/errors.js';
import type { Logger } from '../../util/logger.js';
import { silentLogger } from '../../util/logger.js';
import type { Dialer } from '../dialer.js';
import { pipeSockets } from '../pipe-sockets.js';
import type { Socks5Address } from '../../socks5/socks5-address.js';
import { formatHostPort } from '../../net/address.js';
import { Socks5Parser } from '../../socks5/socks5-parser.js';
import type { Socks5Event } from '../../socks5/socks5-parser.js';
import {
  METHOD_NONE_ACCEPTABLE,
  METHOD_NO_AUTH,
  METHOD_USERNAME_PASSWORD,
  REP,
  encodeAuthStatus,
  encodeErrorAnswer,
  encodeMethodSelection,
  encodeReply,
  replyCodeForDialError,
} from '../../socks5/socks5-replies.js';
import type { Socks5AuthMethod, Socks5ReplyCode } from '../../socks5/socks5-replies.js';
import { openUdpAssociation } from './socks5-udp-relay.js';
import { admitSocket } from '../shed.js';
import type { FrontEndGate } from '../shed.js';
import { DialAbort } from '../../util/dial-abort.js';

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long a refused client may take to read the answer and close before it is destroyed. */
const LINGER_MS = 1_000;

export interface Socks5ServerOptions {
  /** Opens every outbound TCP connection and UDP socket. */
  dialer: Dialer;
  /** When set, clients must authenticate with RFC 1929 username/password; else no authentication. */
  auth?: { username: string; password: string } | undefined;
  /** Default: silent. Gets one debug line per connection; refusals at info/warn. */
  logger?: Logger;
  /** Time from accept to a complete request, in milliseconds. Default 10 000. */
  handshakeTimeoutMs?: number;
  /**
   * Replaces `auth` with a check of its own (a linkmux node): undefined refuses
   * the client, a grant lets it in and may name the link its connections use.
   */
  authenticate?: ((username: Buffer, password: Buffer) => Socks5Grant | undefined) | undefined;
  /** Answer UDP ASSOCIATE (default true); false replies "command not supported". */
  udp?: boolean;
  /** Connection caps: a refused client is closed before any byte is read (see shed.ts). */
  gate?: FrontEndGate | undefined;
  /** Called with the client's address on each failed login (aggregated and counted by the caller). */
  onLoginFailure?: ((address: string | undefined) => void) | undefined;
  /** Milliseconds without a byte either way after which a relay is closed; 0 = never. Default 0. */
  idleTimeoutMs?: number | undefined;
}

/** What an authenticated client may do: `link` pins its connections to one link. */
export interface Socks5Grant {
  link?: string | undefined;
}

type Phase = 'handshake' | 'dialing' | 'relay' | 'udp' | 'closing';
interface Session {
  phase: Phase;
  grant: Socks5Grant;
}

export class Socks5Server extends net.Server {
  private readonly sessions = new Map<Socket, Session>();
  private readonly dialer: Dialer;
  private readonly logger: Logger;
  private readonly handshakeTimeoutMs: number;
  private readonly credentials: { username: Buffer; password: Buffer } | undefined;
  private readonly authenticate: Socks5ServerOptions['authenticate'];
  private readonly udp: boolean;
  private readonly gate: FrontEndGate | undefined;
  private readonly onLoginFailure: ((address: string | undefined) => void) | undefined;
  private readonly idleTimeoutMs: number;

  constructor(opts: Socks5ServerOptions) {
    // allowHalfOpen: a client's FIN is passed on to the target by pipeSockets
    // instead of closing our side before the target has answered.
    super({ allowHalfOpen: true });
    this.dialer = opts.dialer;
    this.logger = opts.logger ?? silentLogger;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    // Only digests are kept: fixed-length, constant-time comparable, and useless in a heap dump.
    this.credentials = opts.auth && {
      username: sha256(Buffer.from(opts.auth.username, 'utf8')),
      password: sha256(Buffer.from(opts.auth.password, 'utf8')),
    };
    this.authenticate = opts.authenticate;
    this.udp = opts.udp ?? true;
    this.gate = opts.gate;
    this.onLoginFailure = opts.onLoginFailure;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 0;
    this.on('connection', (socket: Socket) => this.handle(socket));
  }

  /** Stops accepting; destroys connections not yet relaying. 'close' fires once relays have ended. */
  override close(callback?: (err?: Error) => void): this {
    super.close(callback);
    for (const [socket, s] of this.sessions) {
      if (s.phase === 'handshake' || s.phase === 'dialing' || s.phase === 'closing') socket.destroy();
    }
    return this;
  }

  /** Destroys every client connection, with its target socket or UDP association. */
  closeAllConnections(): void {
    for (const socket of [...this.sessions.keys()]) socket.destroy();
  }

  private selectMethod(offered: readonly number[]): Socks5AuthMethod {
    if (this.credentials || this.authenticate)
      return offered.includes(METHOD_USERNAME_PASSWORD) ? METHOD_USERNAME_PASSWORD : METHOD_NONE_ACCEPTABLE;
    if (offered.includes(METHOD_NO_AUTH)) return METHOD_NO_AUTH;
    // A client that only offers username/password is let in with any credentials:
    // nothing is configured to check, and refusing would only break it.
    return offered.includes(METHOD_USERNAME_PASSWORD) ? METHOD_USERNAME_PASSWORD : METHOD_NONE_ACCEPTABLE;
  }

  private handle(socket: Socket): void {
    if (!admitSocket(this.gate, socket, 'socks5')) return;
    const session: Session = { phase: 'handshake', grant: {} };
    this.sessions.set(socket, session);
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    // Made for the dial and aborted only while one is in flight: an abort builds an error (with
    // Node's controller a DOMException, a few % of the daemon's CPU per connect on every close).
    let abort: DialAbort | undefined;
    const parser = new Socks5Parser({ selectMethod: (m) => this.selectMethod(m) });
    let linger: NodeJS.Timeout | undefined;
    const handshakeTimer = setTimeout(() => {
      this.logger.debug(`socks5 ${peer}: handshake not completed within ${this.handshakeTimeoutMs} ms`);
      socket.destroy();
    }, this.handshakeTimeoutMs);

    socket.setNoDelay(true);
    socket.on('error', (err) => {
      this.logger.debug(`socks5 ${peer}: ${describe(err)}`);
      socket.destroy();
    });
    socket.once('close', () => {
      clearTimeout(handshakeTimer);
      clearTimeout(linger);
      if (session.phase === 'dialing') abort?.abort();
      this.sessions.delete(socket);
    });
    // Half-close before the relay started: the client will not send a request any more.
    socket.on('end', () => {
      if (session.phase !== 'relay') socket.destroy();
    });

    /** Sends a refusal and closes; the client gets a moment to read it before the socket is destroyed. */
    const refuse = (answer: Buffer | undefined) => {
      session.phase = 'closing';
      clearTimeout(handshakeTimer);
      if (answer === undefined || socket.destroyed) {
        socket.destroy();
        return;
      }
      socket.off('data', onData);
      socket.on('data', discard);
      socket.end(answer);
      linger = setTimeout(() => socket.destroy(), LINGER_MS);
    };

    const onEvent = (ev: Socks5Event) => {
      switch (ev.type) {
        case 'greeting':
          if (ev.method === METHOD_NONE_ACCEPTABLE) {
            this.logger.info(`socks5 ${peer}: refused: no acceptable authentication method offered`);
            return refuse(encodeMethodSelection(METHOD_NONE_ACCEPTABLE));
          }
          socket.write(encodeMethodSelection(ev.method));
          return;
        case 'auth': {
          const grant = this.checkCredentials(ev.username, ev.password);
          if (!grant) {
            // Aggregated per address by the caller (no log flood); without one, debug only.
            if (this.onLoginFailure) this.onLoginFailure(socket.remoteAddress);
            else this.logger.debug(`socks5 ${peer}: refused: wrong username or password`);
            return refuse(encodeAuthStatus(false));
          }
          session.grant = grant;
          socket.write(encodeAuthStatus(true));
          return;
        }
        case 'error':
          this.logger.debug(`socks5 ${peer}: malformed ${ev.phase}: ${ev.reason}`);
          return refuse(encodeErrorAnswer(ev.answer));
        case 'request': {
          clearTimeout(handshakeTimer);
          session.phase = 'dialing';
          // Later bytes are payload: leave them in the socket until the relay starts.
          socket.off('data', onData);
          socket.pause();
          const trailing = parser.takeTrailing();
          const fail = (rep: Socks5ReplyCode) => refuse(encodeReply(rep));
          if (ev.command === 'bind' || (ev.command === 'udp-associate' && !this.udp)) {
            this.logger.debug(
              `socks5 ${peer}: ${ev.command === 'bind' ? 'BIND' : 'UDP ASSOCIATE'} is not supported`,
            );
            return fail(REP.COMMAND_NOT_SUPPORTED);
          }
          const run =
            ev.command === 'connect'
              ? this.connect(
                  socket,
                  session,
                  ev.address,
                  trailing,
                  (abort = new DialAbort()).signal,
                  peer,
                  fail,
                )
              : this.associate(socket, session, ev.address, peer, fail);
          run.catch((err: unknown) => {
            // Only a bug gets here; the client must not be left hanging.
            this.logger.error(`socks5 ${peer}: ${describe(err)}`);
            socket.destroy();
          });
          return;
        }
      }
    };

    const onData = (chunk: Buffer) => {
      for (const ev of parser.push(chunk)) {
        if (session.phase !== 'handshake') break;
        onEvent(ev);
      }
    };
    socket.on('data', onData);
  }

  private async connect(
    socket: Socket,
    session: Session,
    address: Socks5Address,
    trailing: Buffer,
    signal: AbortSignal,
    peer: string,
    fail: (rep: Socks5ReplyCode) => void,
  ): Promise<void> {
    const dst: Destination = { host: address.host, port: address.port };
    const where = formatHostPort(dst);
    if (dst.port === 0) {
      this.logger.debug(`socks5 ${peer}: CONNECT to port 0 refused`);
      return fail(REP.GENERAL_FAILURE);
    }
    let dialed;
    try {
      dialed = await this.dialer.dial(dst, {
        signal,
        client: peer,
        clientIp: socket.remoteAddress,
        ...(session.grant.link ? { link: session.grant.link } : {}),
      });
    } catch (err) {
      if (socket.destroyed) return;
      const rep = replyCodeForDialError(err);
      this.logger.info(`socks5 ${peer}: CONNECT ${where} failed (reply 0x0${rep}): ${describe(err)}`);
      return fail(rep);
    }
    const target = dialed.socket;
    if (socket.destroyed || session.phase !== 'dialing') {
      target.destroy();
      return;
    }
    session.phase = 'relay';
    this.logger.debug(`socks5 ${peer} -> ${where} via ${dialed.link}`);
    socket.write(
      encodeReply(REP.SUCCEEDED, { host: target.localAddress ?? '0.0.0.0', port: target.localPort ?? 0 }),
    );
    if (trailing.length > 0) target.write(trailing);
    // Reads and writes both reset a socket's timer, so the client side alone sees idleness both ways.
    if (this.idleTimeoutMs > 0) {
      socket.setTimeout(this.idleTimeoutMs, () => {
        this.logger.debug(`socks5 ${peer} -> ${where}: idle for ${this.idleTimeoutMs} ms, closed`);
        socket.destroy();
      });
    }
    const result = await pipeSockets(socket, target);
    this.logger.debug(
      `socks5 ${peer} -> ${where} closed: ${result.aToB} B up, ${result.bToA} B down` +
        (result.error ? ` (${describe(result.error)})` : ''),
    );
  }

  private async associate(
    socket: Socket,
    session: Session,
    declared: Socks5Address,
    peer: string,
    fail: (rep: Socks5ReplyCode) => void,
  ): Promise<void> {
    let bnd;
    try {
      bnd = await openUdpAssociation({
        control: socket,
        declared,
        dialer: this.dialer,
        logger: this.logger,
        peer,
      });
    } catch (err) {
      if (socket.destroyed) return;
      this.logger.warn(`socks5 ${peer}: cannot open a UDP relay socket: ${describe(err)}`);
      return fail(REP.GENERAL_FAILURE);
    }
    if (socket.destroyed) return;
    session.phase = 'udp';
    socket.setKeepAlive(true);
    socket.write(encodeReply(REP.SUCCEEDED, bnd));
    // The control connection carries nothing more; reading it is how its close is seen.
    socket.on('data', discard);
    this.logger.debug(`socks5 ${peer}: UDP association on ${formatHostPort(bnd)}`);
  }

  private checkCredentials(username: Buffer, password: Buffer): Socks5Grant | undefined {
    if (this.authenticate) return this.authenticate(username, password);
    if (!this.credentials) return {};
    // Both compared, always: the time taken says nothing about which one was wrong.
    const userOk = timingSafeEqual(sha256(username), this.credentials.username);
    const passOk = timingSafeEqual(sha256(password), this.credentials.password);
    return userOk && passOk ? {} : undefined;
  }
}

/** A SOCKS5 server; call `listen()` on it. See Socks5Server for the shutdown contract. */
export function createSocks5Server(opts: Socks5ServerOptions): Socks5Server {
  return new Socks5Server(opts);
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

function discard(): void {}
