/**
 * The SOCKS5 handshake parser (RFC 1928 greeting and request, RFC 1929
 * username/password), a pure incremental state machine in the style of the
 * `ws` receiver, plus the UDP request header (RFC 1928 §7).
 *
 *   greeting ──(method 0x02)──► auth ──► request ──► done (later bytes = payload)
 *       └────(method 0x00)──────────────┘
 *
 * Guarantees: `push` accepts chunks of any size (one byte at a time, a message
 * split anywhere, several messages in one chunk) and yields the same events in
 * every case; it never throws on client input: truncated input just waits, and
 * malformed input yields ONE `error` event saying what to answer (see
 * Socks5ErrorAnswer), after which the parser ignores everything. Errors are
 * raised at the first byte that proves them, so a bad VER is answered at once.
 * Memory is bounded: a handshake message is at most 513 bytes, and the bytes
 * that follow the request are capped by `maxTrailingBytes`.
 */
import {
  ATYP_DOMAIN,
  ATYP_IPV4,
  ATYP_IPV6,
  decodeAddress,
  encodeAddress,
  isDomainBytes,
} from './socks5-address.js';
import { ipFromBytes } from '../net/address.js';
import type { Socks5Address } from './socks5-address.js';
import { METHOD_NONE_ACCEPTABLE, METHOD_NO_AUTH, REP } from './socks5-replies.js';
import type { Socks5AuthMethod, Socks5ErrorAnswer } from './socks5-replies.js';
import { takeBytes } from './byte-queue.js';

export type Socks5Command = 'connect' | 'bind' | 'udp-associate';
export type Socks5Phase = 'greeting' | 'auth' | 'request' | 'data';

/** What the server sends before closing a connection whose input is malformed. */
export type { Socks5ErrorAnswer } from './socks5-replies.js';

export interface Socks5ProtocolError {
  type: 'error';
  phase: Socks5Phase;
  answer: Socks5ErrorAnswer;
  /** For logs; holds no client-supplied credential bytes. */
  reason: string;
}

export type Socks5Event =
  /** `method` is the one selectMethod chose; 0xFF means the parser stopped. */
  | { type: 'greeting'; methods: number[]; method: Socks5AuthMethod }
  /** RFC 1929 credentials as raw bytes (compare them, never log them). */
  | { type: 'auth'; username: Buffer; password: Buffer }
  | { type: 'request'; command: Socks5Command; address: Socks5Address }
  | Socks5ProtocolError;

export interface Socks5ParserOptions {
  /**
   * Picks the method from those the client offers; the parser expects the RFC
   * 1929 sub-negotiation after 0x02, the request after 0x00, and stops after 0xFF.
   * Default: no authentication if offered, else 0xFF.
   */
  selectMethod?: (offered: readonly number[]) => Socks5AuthMethod;
  /**
   * Most bytes kept after the request (data a client sends before it has the
   * reply) until `takeTrailing()`; more is an error answered with 0x01.
   * Default 262 144 (four socket reads). Bytes.
   */
  maxTrailingBytes?: number;
  /** Reject a request whose RSV byte is not 0 (0x01). Default false: RSV is ignored, as most servers do. */
  strictReserved?: boolean;
}

export const DEFAULT_MAX_TRAILING_BYTES = 256 * 1024;

const COMMANDS: Record<number, Socks5Command> = { 0x01: 'connect', 0x02: 'bind', 0x03: 'udp-associate' };

const enum S {
  GreetingVer,
  GreetingNMethods,
  GreetingMethods,
  AuthVer,
  AuthULen,
  AuthUName,
  AuthPLen,
  AuthPasswd,
  ReqVer,
  ReqCmd,
  ReqRsv,
  ReqAtyp,
  ReqDomainLen,
  ReqAddr,
  ReqPort,
  Done,
  Stopped,
}

export class Socks5Parser {
  private state = S.GreetingVer;
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private need = 1;
  // Fields of the message being assembled.
  private username: Buffer = Buffer.alloc(0);
  private command: Socks5Command = 'connect';
  private atyp = 0;
  private addrHost = '';
  private readonly selectMethod: (offered: readonly number[]) => Socks5AuthMethod;
  private readonly maxTrailing: number;
  private readonly strictReserved: boolean;

  constructor(opts: Socks5ParserOptions = {}) {
    this.selectMethod =
      opts.selectMethod ?? ((m) => (m.includes(METHOD_NO_AUTH) ? METHOD_NO_AUTH : METHOD_NONE_ACCEPTABLE));
    this.maxTrailing = opts.maxTrailingBytes ?? DEFAULT_MAX_TRAILING_BYTES;
    this.strictReserved = opts.strictReserved ?? false;
  }

  /** True once the request has been parsed: later input is payload (see takeTrailing). */
  get done(): boolean {
    return this.state === S.Done;
  }

  /** True after an error or a 0xFF method: the parser ignores all further input. */
  get stopped(): boolean {
    return this.state === S.Stopped;
  }

  /** Feeds a chunk; returns the events it completes, in order. */
  push(chunk: Uint8Array): Socks5Event[] {
    if (this.state === S.Stopped || chunk.length === 0) return [];
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.buffered += chunk.length;
    if (this.state === S.Done) return this.checkTrailing();
    const events: Socks5Event[] = [];
    // `step` moves the state on, which TypeScript's narrowing of this.state cannot see.
    while (!this.done && !this.stopped && this.buffered >= this.need) {
      const ev = this.step(this.consume(this.need));
      if (ev) events.push(ev);
    }
    if (this.done) events.push(...this.checkTrailing());
    return events;
  }

  /** The bytes received after the request (payload to pass on), emptying the buffer. */
  takeTrailing(): Buffer {
    if (this.state !== S.Done) return Buffer.alloc(0);
    const out = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks.length = 0;
    this.buffered = 0;
    return out;
  }

  private checkTrailing(): Socks5Event[] {
    if (this.buffered <= this.maxTrailing) return [];
    return [
      this.fail(
        'data',
        { kind: 'reply', rep: REP.GENERAL_FAILURE },
        `more than ${this.maxTrailing} bytes sent before the reply`,
      ),
    ];
  }

  /** Handles one field of `this.need` bytes. */
  private step(b: Buffer): Socks5Event | undefined {
    const byte = b[0] ?? 0;
    switch (this.state) {
      case S.GreetingVer:
        if (byte !== 0x05) return this.fail('greeting', { kind: 'close' }, `not SOCKS5 (VER ${hex(byte)})`);
        return this.expect(S.GreetingNMethods, 1);
      case S.GreetingNMethods:
        if (byte === 0)
          return this.fail(
            'greeting',
            { kind: 'no-acceptable-methods' },
            'greeting lists no methods (NMETHODS 0)',
          );
        return this.expect(S.GreetingMethods, byte);
      case S.GreetingMethods: {
        const methods = [...b];
        const method = this.selectMethod(methods);
        if (method === METHOD_NONE_ACCEPTABLE) this.stop();
        else if (method === METHOD_NO_AUTH) this.expect(S.ReqVer, 1);
        else this.expect(S.AuthVer, 1);
        return { type: 'greeting', methods, method };
      }
      case S.AuthVer:
        // RFC 1929 §2: the sub-negotiation has its own version, 0x01.
        if (byte !== 0x01)
          return this.fail('auth', { kind: 'close' }, `bad username/password version ${hex(byte)}`);
        return this.expect(S.AuthULen, 1);
      case S.AuthULen:
        // Empty names and passwords are taken as given: they simply fail to match.
        if (byte === 0) {
          this.username = Buffer.alloc(0);
          return this.expect(S.AuthPLen, 1);
        }
        return this.expect(S.AuthUName, byte);
      case S.AuthUName:
        this.username = b;
        return this.expect(S.AuthPLen, 1);
      case S.AuthPLen:
        if (byte === 0) return this.authDone(Buffer.alloc(0));
        return this.expect(S.AuthPasswd, byte);
      case S.AuthPasswd:
        return this.authDone(b);
      case S.ReqVer:
        if (byte !== 0x05) return this.fail('request', { kind: 'close' }, `not SOCKS5 (VER ${hex(byte)})`);
        return this.expect(S.ReqCmd, 1);
      case S.ReqCmd: {
        const command = COMMANDS[byte];
        if (!command) {
          return this.fail(
            'request',
            { kind: 'reply', rep: REP.COMMAND_NOT_SUPPORTED },
            `unknown command ${hex(byte)}`,
          );
        }
        this.command = command;
        return this.expect(S.ReqRsv, 1);
      }
      case S.ReqRsv:
        if (byte !== 0 && this.strictReserved) {
          return this.fail(
            'request',
            { kind: 'reply', rep: REP.GENERAL_FAILURE },
            `RSV is ${hex(byte)}, not 0x00`,
          );
        }
        return this.expect(S.ReqAtyp, 1);
      case S.ReqAtyp:
        this.atyp = byte;
        if (byte === ATYP_IPV4) return this.expect(S.ReqAddr, 4);
        if (byte === ATYP_IPV6) return this.expect(S.ReqAddr, 16);
        if (byte === ATYP_DOMAIN) return this.expect(S.ReqDomainLen, 1);
        return this.fail(
          'request',
          { kind: 'reply', rep: REP.ADDRESS_TYPE_NOT_SUPPORTED },
          `unknown address type ${hex(byte)}`,
        );
      case S.ReqDomainLen:
        if (byte === 0)
          return this.fail('request', { kind: 'reply', rep: REP.GENERAL_FAILURE }, 'empty domain name');
        return this.expect(S.ReqAddr, byte);
      case S.ReqAddr:
        if (this.atyp === ATYP_IPV4) this.addrHost = ipFromBytes(b, 0, 4);
        else if (this.atyp === ATYP_IPV6) this.addrHost = ipFromBytes(b, 0, 16);
        else if (!isDomainBytes(b)) {
          return this.fail(
            'request',
            { kind: 'reply', rep: REP.GENERAL_FAILURE },
            'domain name holds a non-printable or non-ASCII byte',
          );
        } else this.addrHost = b.toString('latin1');
        return this.expect(S.ReqPort, 2);
      case S.ReqPort: {
        this.state = S.Done;
        const type = this.atyp === ATYP_IPV4 ? 'ipv4' : this.atyp === ATYP_IPV6 ? 'ipv6' : 'domain';
        return {
          type: 'request',
          command: this.command,
          address: { type, host: this.addrHost, port: b.readUInt16BE(0) },
        };
      }
      default:
        return undefined;
    }
  }

  private authDone(password: Buffer): Socks5Event {
    const username = this.username;
    this.username = Buffer.alloc(0);
    this.expect(S.ReqVer, 1);
    return { type: 'auth', username, password };
  }

  private expect(state: S, need: number): undefined {
    this.state = state;
    this.need = need;
    return undefined;
  }

  private stop(): void {
    this.state = S.Stopped;
    this.chunks.length = 0;
    this.buffered = 0;
  }

  private fail(phase: Socks5Phase, answer: Socks5ErrorAnswer, reason: string): Socks5ProtocolError {
    this.stop();
    return { type: 'error', phase, answer, reason };
  }

  /** Removes n buffered bytes (n <= buffered). */
  private consume(n: number): Buffer {
    this.buffered -= n;
    return takeBytes(this.chunks, n);
  }
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

// ---------------------------------------------------------------------------
// UDP request header (RFC 1928 §7): RSV(2) FRAG(1) ATYP DST.ADDR DST.PORT DATA

export type UdpDropReason = 'short' | 'fragmented' | 'atyp' | 'domain-empty' | 'domain-bytes';

export type ParsedUdpDatagram =
  { ok: true; address: Socks5Address; data: Buffer } | { ok: false; reason: UdpDropReason };

/**
 * Splits one datagram from a client into its destination and payload. Nothing
 * here is answered (UDP has no error channel): a malformed or fragmented
 * datagram is dropped. Fragments (FRAG != 0) are dropped rather than
 * reassembled, which RFC 1928 allows and every common client accepts.
 * `data` shares memory with `datagram`.
 */
export function parseUdpDatagram(datagram: Buffer): ParsedUdpDatagram {
  if (datagram.length < 4) return { ok: false, reason: 'short' };
  if (datagram[2] !== 0) return { ok: false, reason: 'fragmented' };
  const decoded = decodeAddress(datagram, 3);
  if (decoded === undefined) return { ok: false, reason: 'short' };
  if (!decoded.ok) return { ok: false, reason: decoded.reason };
  return { ok: true, address: decoded.address, data: datagram.subarray(3 + decoded.length) };
}

/** RSV FRAG=0 ATYP DST.ADDR DST.PORT DATA for a datagram to the client, from `host:port`. */
export function encodeUdpDatagram(host: string, port: number, data: Uint8Array): Buffer {
  const address = encodeAddress(host, port);
  const out = Buffer.allocUnsafe(3 + address.length + data.length);
  out.fill(0, 0, 3);
  address.copy(out, 3);
  out.set(data, 3 + address.length);
  return out;
}
