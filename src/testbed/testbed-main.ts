/**
 * Hands-on access to the netns testbed (root only):
 *
 *   node dist/src/testbed/testbed-main.js up [--links N] [--rate MBIT] [--https]
 *       builds a testbed, prints its description as JSON, keeps it until SIGINT/SIGTERM
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
    throw new Error('usage: testbed-main up [--links N] [--rate MBIT] [--https] [-v] | leftovers');
  }
  const tb = await createTestbed({
    links: Number(values.links),
    rateMbit: Number(values.rate),
    https: values.https,
    log: (s) => {
      if (values.verbose || !s.startsWith('$')) process.stderr.write(`testbed: ${s}\n`);
    },
  });
  const { prefix, clientNs, serverNs, serverAddress, uplinks, caFile, files } = tb;
  const urls = Object.fromEntries(Object.keys(files).map((n) => [n, tb.url(n)]));
  process.stdout.write(
    `${JSON.stringify({ prefix, clientNs, serverNs, serverAddress, uplinks, caFile, files, urls }, null, 2)}\n`,
  );
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
