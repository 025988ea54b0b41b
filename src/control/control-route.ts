/**
 * A route mounted on the control server beside its own /status, /metrics and
 * /healthz: the dashboard (src/dashboard) and, later, the aria2 JSON-RPC. The
 * server applies its guards first (loopback Host check, method allow-list), so
 * a route only answers requests a local client could have sent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export interface ControlRoute {
  /** True when this route serves `path` (the request target without its query). */
  matches(path: string): boolean;
  /** Methods it answers, e.g. ['GET', 'HEAD']; any other gets 405 with this Allow list. */
  readonly methods: readonly string[];
  /** Answers the request; a rejection becomes a 500 (or a destroyed socket once headers went out). */
  handle(req: IncomingMessage, res: ServerResponse, path: string): void | Promise<void>;
  /** Takes an HTTP upgrade (a WebSocket) for a path it matches, after the Host check. */
  upgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Stops timers and ends long-lived responses; called once by the server's close(). */
  close?(): void;
}
