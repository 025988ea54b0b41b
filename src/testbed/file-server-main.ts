/**
 * Command-line entry of the test file server, so the netns testbed can run it
 * inside the server namespace:
 *
 *   node dist/src/testbed/file-server-main.js --root DIR [--host H] [--port P]
 *        [--tls-key F --tls-cert F] [--behaviour JSON] [--udp-echo PORT]
 *
 * With --udp-echo it also answers UDP datagrams on PORT of the same host (udp-echo.ts).
 * Prints `listening <url>` on stdout once it accepts connections, and exits 0 on
 * SIGTERM or SIGINT after closing every connection. Errors go to stderr, exit 1.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startFileServer, type Behaviour, type FileServerOptions } from './file-server.js';
import { startUdpEcho, type UdpEcho } from './udp-echo.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'tls-key': { type: 'string' },
      'tls-cert': { type: 'string' },
      behaviour: { type: 'string' },
      'udp-echo': { type: 'string' },
    },
    strict: true,
  });
  if (!values.root) throw new Error('--root DIR is required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: bad port ${values.port}`);
  if (Boolean(values['tls-key']) !== Boolean(values['tls-cert'])) {
    throw new Error('--tls-key and --tls-cert go together');
  }
  const opts: FileServerOptions = { root: values.root, host: values.host, port };
  if (values['tls-key'] && values['tls-cert']) {
    opts.tls = { key: readFileSync(values['tls-key']), cert: readFileSync(values['tls-cert']) };
  }
  if (values.behaviour) opts.behaviour = JSON.parse(values.behaviour) as Behaviour;

  const echoPort = values['udp-echo'] === undefined ? undefined : Number(values['udp-echo']);
  if (echoPort !== undefined && !(Number.isInteger(echoPort) && echoPort > 0 && echoPort <= 65535)) {
    throw new Error(`--udp-echo: bad port ${values['udp-echo']}`);
  }
  const server = await startFileServer(opts);
  const echo: UdpEcho | undefined =
    echoPort === undefined ? undefined : await startUdpEcho(values.host, echoPort);
  const stop = () => {
    Promise.all([server.close(), echo?.close()]).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`listening ${server.url}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`file-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
