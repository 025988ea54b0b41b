/**
 * Command-line entry of the testbed DNS server, so the testbed can run it inside
 * the server namespace:
 *
 *   node dist/src/testbed/dns-server-main.js --zone JSON [--host H] [--port P]
 *
 * `--zone` is a DnsZone (dns-server.ts) as JSON. Prints `listening H:P` on stdout
 * once both UDP and TCP accept, then one line `query {json}` (a DnsQueryRecord) per
 * query answered. Exits 0 on SIGTERM or SIGINT; errors go to stderr, exit 1.
 */
import { parseArgs } from 'node:util';
import { startDnsServer, type DnsZone } from './dns-server.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      zone: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
    },
    strict: true,
  });
  if (!values.zone) throw new Error('--zone JSON is required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: bad port ${values.port}`);
  const zone = JSON.parse(values.zone) as DnsZone;
  const server = await startDnsServer({
    zone,
    host: values.host,
    port,
    onQuery: (r) => process.stdout.write(`query ${JSON.stringify(r)}\n`),
  });
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`listening ${server.host}:${server.port}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`dns-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
