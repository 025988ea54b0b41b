// A client of the control API and a server around a test (test/integration/control-*.test.ts).
import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { once } from 'node:events';
import { startControlServer } from '../../src/control/control-server.js';
import type { ControlServer } from '../../src/control/control-server.js';
import type { DaemonStatus } from '../../src/control/status-types.js';
import { silentLogger } from '../../src/util/logger.js';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection (no keep-alive), over TCP "host:port" or a socket path. */
export function get(
  address: string,
  path: string,
  opts: { method?: string; host?: string } = {},
): Promise<Reply> {
  const target = address.startsWith('/')
    ? { socketPath: address }
    : {
        host: address.slice(0, address.lastIndexOf(':')),
        port: Number(address.slice(address.lastIndexOf(':') + 1)),
      };
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        ...target,
        path,
        method: opts.method ?? 'GET',
        agent: false,
        headers: opts.host === undefined ? {} : { host: opts.host },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export async function withServer(
  listen: string,
  status: () => DaemonStatus,
  fn: (server: ControlServer) => Promise<void>,
): Promise<void> {
  const server = await startControlServer({ listen, status, logger: silentLogger });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on (taken and released). */
export async function deadPort(): Promise<number> {
  const s = createNetServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
