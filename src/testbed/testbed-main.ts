/**
 * Hands-on access to the netns testbed (root only):
 *
 *   node dist/src/testbed/testbed-main.js up [--links N] [--rate MBIT] [--https]
 *       [--machines 0,1,2] [--lan-hosts N]
 *       builds a testbed, prints its description as JSON, keeps it until SIGINT/SIGTERM;
 *       --machines gives each uplink's owner (0 = client, k = node k), --lan-hosts adds
 *       LAN-only hosts routed through the client
 *   node dist/src/testbed/testbed-main.js leftovers
 *       removes namespaces of dead runs and prints their names
 *
 * While `up` runs, try e.g. `ip netns exec <clientNs> curl --interface up1 <url>`.
 */
import { parseArgs } from 'node:util';
import { describe } from '../util/errors.js';
import { createTestbed, removeLeftovers } from './testbed.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      links: { type: 'string', default: '3' },
      rate: { type: 'string', default: '8' },
      https: { type: 'boolean', default: false },
      machines: { type: 'string' },
      'lan-hosts': { type: 'string', default: '0' },
      verbose: { type: 'boolean', short: 'v', default: false },
    },
  });
  const [command] = positionals;
  if (command === 'leftovers') {
    const removed = await removeLeftovers();
    process.stdout.write(removed.length ? `${removed.join('\n')}\n` : 'no leftovers\n');
    return;
  }
  if (command !== 'up') {
    throw new Error(
      'usage: testbed-main up [--links N] [--rate MBIT] [--https] [--machines 0,1,…] [--lan-hosts N] [-v] | leftovers',
    );
  }
  const machines = values.machines?.split(',').map(Number);
  const tb = await createTestbed({
    links: machines ? machines.length : Number(values.links),
    rateMbit: Number(values.rate),
    https: values.https,
    machines,
    lanHosts: Number(values['lan-hosts']),
    log: (s) => {
      if (values.verbose || !s.startsWith('$')) process.stderr.write(`testbed: ${s}\n`);
    },
  });
  const { prefix, clientNs, serverNs, serverAddress, uplinks, machines: hosts, lanHosts, lanNs } = tb;
  const { caFile, files } = tb;
  const urls = Object.fromEntries(Object.keys(files).map((n) => [n, tb.url(n)]));
  const description = {
    prefix,
    clientNs,
    serverNs,
    serverAddress,
    uplinks,
    machines: hosts,
    lanHosts,
    lanNs,
    caFile,
    files,
    urls,
  };
  process.stdout.write(`${JSON.stringify(description, null, 2)}\n`);
  process.stderr.write('testbed: up; Ctrl-C (SIGINT) or SIGTERM tears it down\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await tb.destroy();
}

main().catch((err: unknown) => {
  process.stderr.write(`testbed: ${describe(err)}\n`);
  process.exit(1);
});
