/**
 * A keep-alive http.Agent whose connections come from the Dialer, one agent per
 * client connection. Node's Agent does the pooling (free-socket list per
 * destination, stale-socket removal, Keep-Alive timeout hints); this class only
 * replaces net.connect with `dialer.dial`.
 *
 *   client conn ──► DialerAgent ──► dialer.dial(host:port) ──► link ──► origin
 *
 * Why per client connection: the proxy balances whole connections, so a client
 * connection's requests to one origin reuse that origin connection (as with a
 * CONNECT tunnel) while other clients' connections are placed afresh by the
 * scheduler; and no upstream socket can outlive the client it served, because
 * `destroy()` runs when the client connection closes.
 *
 * Guarantees: every socket it hands out came from the Dialer; after destroy()
 * in-flight dials are aborted and a dial that completes anyway is closed.
 */
import http from 'node:http';
import type { ClientRequestArgs } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../util/logger.js';
import type { Dialer } from '../dialer.js';
import { DialAbort } from '../../util/dial-abort.js';

/**
 * How long an idle upstream connection is kept for the next request: below the
 * 5 s keep-alive of common servers (Node's default), so we drop it before the
 * origin does and rarely send a request into a connection being closed.
 */
export const FREE_SOCKET_TIMEOUT_MS = 4_000;

type OnCreate = (err: Error | null, socket: Duplex) => void;

export class DialerAgent extends http.Agent {
  readonly #dialer: Dialer;
  readonly #client: string;
  readonly #logger: Logger;
  readonly #abort = new DialAbort();
  readonly #clientIp: string | undefined;

  constructor(dialer: Dialer, client: string, logger: Logger, clientIp?: string) {
    super({ keepAlive: true, timeout: FREE_SOCKET_TIMEOUT_MS, scheduling: 'lifo' });
    this.#dialer = dialer;
    this.#client = client;
    this.#logger = logger;
    this.#clientIp = clientIp;
  }

  override createConnection(options: ClientRequestArgs, callback?: OnCreate): Duplex | null | undefined {
    const done: OnCreate = callback ?? (() => {});
    const host = String(options.host ?? options.hostname ?? '');
    const port = Number(options.port);
    const signal = this.#abort.signal;
    this.#dialer.dial({ host, port }, { signal, client: this.#client, clientIp: this.#clientIp }).then(
      ({ socket, link }: { socket: Socket; link: string }) => {
        if (signal.aborted) {
          socket.destroy();
          done(new Error('client connection closed'), socket);
          return;
        }
        this.#logger.debug(`http: ${this.#client} forwarding connection to ${host}:${port} via ${link}`);
        done(null, socket);
      },
      // Node's Agent turns this into the request's 'error' event.
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err)), undefined as never),
    );
    // Returning nothing tells the Agent to wait for the callback.
    return undefined;
  }

  override destroy(): void {
    this.#abort.abort();
    super.destroy();
  }
}
