/**
 * An undici Agent whose every connection is opened through one Link, so HTTP
 * requests leave by that uplink. TLS runs over the link's socket with undici's
 * own connector (certificate checks, SNI and session reuse as usual).
 */
import { stripBrackets } from '../net/address.js';
import { Agent, buildConnector } from './undici-core.js';
import type { Link } from './link.js';

export interface TlsOptions {
  /** Extra trusted CA certificates (PEM). */
  ca?: string;
  /** Accept any certificate (for testing only; the CLI prints a warning). */
  insecure?: boolean;
}

export interface LinkAgentOptions {
  connectTimeoutMs: number;
  tls: TlsOptions;
  /** Aborts connects still in progress (undici's destroy() waits for them otherwise). */
  signal?: AbortSignal;
}

export function createLinkAgent(link: Link, opts: LinkAgentOptions): Agent {
  const tlsConnect = buildConnector({
    timeout: opts.connectTimeoutMs,
    rejectUnauthorized: !opts.tls.insecure,
    ...(opts.tls.ca ? { ca: opts.tls.ca } : {}),
  });
  return new Agent({
    keepAliveTimeout: 30_000,
    connect(options, callback) {
      const defaultPort = options.protocol === 'https:' ? 443 : 80;
      const port = options.port ? Number(options.port) : defaultPort;
      // undici passes IPv6 literals in brackets, as in URLs.
      const host = stripBrackets(options.hostname);
      link
        .connect(
          { host, port },
          { timeoutMs: opts.connectTimeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) },
        )
        .then(
          (socket) => {
            if (options.protocol === 'https:') tlsConnect({ ...options, httpSocket: socket }, callback);
            else callback(null, socket);
          },
          (err: Error) => callback(err, null),
        );
    },
  });
}
