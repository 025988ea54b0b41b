/**
 * `linkmux demo`: shows what linkmux does on this very machine, with no setup.
 * As root on Linux it builds a throw-away testbed of network namespaces (a
 * client with N shaped uplinks, ISPs with NAT, one server address), downloads
 * the same file over one link and then with `linkmux get` over all of them,
 * prints both rates (each download's own mean, demo-report.ts), each link's
 * share and the ratio, and removes the testbed. Nothing outside the
 * namespaces it made is touched.
 */
import { once } from 'node:events';
import type { Command } from 'commander';
import type { Testbed } from '../testbed/testbed.js';
import { LinkmuxError } from '../util/errors.js';
import type { DownloadSummary } from '../download/progress.js';
import { demoResultLines, doneSummary } from './demo-report.js';
import { intOption, numberOption } from './options.js';

interface DemoFlags {
  links: number;
  rate: number;
  size: number;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'build a throw-away testbed (root, Linux) and compare one link with linkmux over all of them',
    )
    .option('--links <n>', 'number of uplinks', intOption('--links', 2, 8), 3)
    .option('--rate <mbit>', 'rate of each uplink in Mbit/s', numberOption('--rate', 'Mbit/s', 0.5, 1000), 8)
    .option('--size <mib>', 'size of the test file in MiB', intOption('--size', 1, 1024), 16)
    .action(async (flags: DemoFlags) => {
      if (process.platform !== 'linux' || process.getuid?.() !== 0) {
        throw new LinkmuxError(
          'LINKMUX_ERR_NOT_ROOT',
          'the demo builds network namespaces, which needs Linux and root: run `sudo linkmux demo`',
        );
      }
      await runDemo(flags);
    });
}

async function runDemo(flags: DemoFlags): Promise<void> {
  const say = (s: string) => process.stdout.write(`${s}\n`);
  const { createTestbed, removeLeftovers } = await import('../testbed/testbed.js');
  await removeLeftovers();
  say(`building a testbed: ${flags.links} uplinks of ${flags.rate} Mbit/s each, one server address …`);
  const tb = await createTestbed({
    links: flags.links,
    rateMbit: flags.rate,
    files: [{ name: 'demo.bin', size: flags.size * 1024 * 1024 }],
  });
  const stop = () => void tb.destroy();
  process.once('SIGINT', stop);
  try {
    const url = tb.url('demo.bin');
    say(`server: ${url}`);
    say(`1/2 one link only (${tb.uplinks[0]?.dev}) …`);
    const one = await getSummary(tb, [
      '--link',
      tb.uplinks[0]?.dev ?? 'up0',
      '-o',
      `/tmp/${tb.prefix}one`,
      url,
    ]);
    say(`2/2 linkmux get over all ${flags.links} links …`);
    const all = await getSummary(tb, ['-o', `/tmp/${tb.prefix}all`, url]);
    for (const line of demoResultLines(one, all, flags.links)) say(line);
    await tb.exec(tb.clientNs, 'rm', ['-f', `/tmp/${tb.prefix}one`, `/tmp/${tb.prefix}all`]);
  } finally {
    process.off('SIGINT', stop);
    await tb.destroy();
    say('testbed removed');
  }
}

/** Runs this same CLI's `get --json` inside the client namespace; returns its own summary. */
async function getSummary(tb: Testbed, args: string[]): Promise<DownloadSummary> {
  const child = tb.spawn(
    tb.clientNs,
    process.execPath,
    [process.argv[1] ?? '', 'get', '--overwrite', '--json', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d));
  // 'close', not 'exit': the summary is the last thing on stdout, read only once the pipe is drained.
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0)
    throw new LinkmuxError('LINKMUX_ERR_COMMAND_FAILED', `the demo download failed (exit ${code})`);
  return doneSummary(out);
}
