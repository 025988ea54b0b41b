/** `linkmux get URL [MIRROR…]`: the one-shot multi-link download. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseChecksum } from '../download/checksum.js';
import type { ProgressSink } from '../download/progress.js';
import { parseHttpUrl } from '../download/http-request.js';
import { LinkmuxError, isLinkmuxError } from '../util/errors.js';
import { createLogger } from '../util/logger.js';
import { parseSize } from '../util/format.js';
import type { Link } from '../links/link.js';
import type { NetInterface } from '../net/interfaces-types.js';
import { choiceOption, collect, intOption, numberOption } from './options.js';

interface GetFlags {
  output?: string;
  dir?: string;
  continue?: boolean;
  overwrite?: boolean;
  link?: string[];
  join?: string[];
  connectionsPerLink: number;
  checksum?: string;
  quiet?: boolean;
  json?: boolean;
  retries: number;
  connectTimeout: number;
  stallTimeout: number;
  minPiece?: string;
  ca?: string;
  insecure?: boolean;
  bind: 'auto' | 'device' | 'address';
  server?: string;
}

export function registerGet(program: Command): void {
  program
    .command('get')
    .description('download one file over every uplink at once (byte ranges, work stealing, resumable)')
    .argument('<url>', 'http:// or https:// URL of the file')
    .argument('[mirrors...]', 'more URLs of the same file (other servers); ranges are spread over them too')
    .option('-o, --output <file>', 'output file (default: name from the server or the URL)')
    .option('-d, --dir <dir>', 'directory to save into (default: the current one)')
    .option('-c, --continue', 'continue a partial download from its control file (<output>.linkmux)')
    .option('--overwrite', 'replace an existing output file or discard a partial download')
    .option(
      '-l, --link <name|address|socks5://…>',
      'use this uplink or SOCKS5 upstream (repeatable; default: every usable uplink)',
      collect,
    )
    .option('--join <token>', "use a linkmux node's uplinks too (its join token; repeatable)", collect)
    .option(
      '--server <token>',
      'download through this linkmux server: each connection is ONE MPTCP connection over every uplink (root)',
    )
    .option(
      '-x, --connections-per-link <n>',
      'parallel connections on each link',
      intOption('--connections-per-link', 1, 16),
      1,
    )
    .option('--checksum <algo=hex>', 'verify the finished file, e.g. sha-256=9f86d0…')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print progress and the summary as JSON lines on stdout')
    .option(
      '--retries <n>',
      'failures in a row before a connection gives up',
      intOption('--retries', 0, 100),
      5,
    )
    .option(
      '--connect-timeout <s>',
      'connect timeout in seconds',
      numberOption('--connect-timeout', 'seconds', 0.1, 600),
      10,
    )
    .option(
      '--stall-timeout <s>',
      'abort a request that receives nothing for this long (seconds)',
      numberOption('--stall-timeout', 'seconds', 0.5, 3600),
      15,
    )
    .option('--min-piece <size>', 'smallest range worth a new request, e.g. 256k (default 128k)')
    .option('--ca <file>', 'trust the CA certificates in this PEM file (in addition to the system ones)')
    .option('-k, --insecure', 'do not verify TLS certificates (testing only)')
    .option(
      '--bind <mode>',
      'how sockets are forced onto links: auto, device (SO_BINDTODEVICE) or address',
      choiceOption('--bind', ['auto', 'device', 'address'] as const),
      'auto',
    )
    .addHelpText(
      'after',
      `
A URL on this machine or its LAN (127.0.0.1, localhost, an on-link address) is fetched
directly, not over the uplinks, unless --link or --join names the links to use.

Examples:
  linkmux get https://example.org/big.iso
  linkmux get -l eth0 -l wlan0 -x 2 https://example.org/big.iso
  linkmux get -c -o big.iso https://example.org/big.iso          # continue after an interruption
  linkmux get --checksum sha-256=<hex> https://a.example/f.tar https://b.example/f.tar`,
    )
    .action(async (url: string, mirrors: string[], flags: GetFlags) => {
      const urls = [url, ...mirrors].map(urlArgument);
      const logger = createLogger(flags.quiet ? 'error' : 'info');
      const checksum = flags.checksum ? parseChecksum(flags.checksum) : undefined;
      const minPiece = flags.minPiece !== undefined ? parsePiece(flags.minPiece) : undefined;
      const ca = flags.ca ? await readCa(flags.ca) : undefined;
      if (flags.insecure) logger.warn('--insecure: TLS certificates are not verified');
      // Every way of opening links lists the interfaces: started first, the `ip` commands run
      // while the modules below compile. Those load here, not at the top, so that `--help`
      // and usage errors do without them.
      const interfaces = listInterfaces();
      interfaces.catch(() => {}); // a failure surfaces where the links open, as before
      const [{ openLinks, parseLinkFlags }, { openGetLinks }] = await Promise.all([
        import('./open-links.js'),
        import('./get-links.js'),
      ]);
      const requests = parseLinkFlags(flags.link ?? [], flags.join ?? []);
      // Loaded while the links open (~35 ms of every download).
      const downloader = import('../download/downloader.js');
      downloader.catch(() => {}); // a failure surfaces at the await below
      let links: Link[];
      // The local links opened for the server's subflows are not in `links`, and are closed too.
      let subflowLinks: Link[] = [];
      let server: Awaited<ReturnType<typeof import('./server-client.js').openGetServer>>;
      if (flags.server !== undefined) {
        // Through a linkmux server: its MPTCP link carries everything (the local links are its subflows).
        const opened = await openLinks(requests, flags.bind, logger, {}, await interfaces);
        const { openGetServer } = await import('./server-client.js');
        server = await openGetServer(flags.server, opened, logger);
        links = server ? [server.link] : opened.links;
        subflowLinks = opened.links;
      } else {
        links = await openGetLinks(urls, requests, flags.bind, logger, await interfaces);
      }
      const { download } = await downloader;
      const progress = await chooseProgress(flags);
      const ctl = new AbortController();
      const onSignal = () => ctl.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await download({
          urls: [url, ...mirrors],
          links,
          output: flags.output,
          dir: flags.dir,
          continue: !!flags.continue,
          overwrite: !!flags.overwrite,
          connectionsPerLink: flags.connectionsPerLink,
          checksum,
          retries: flags.retries,
          connectTimeoutMs: flags.connectTimeout * 1000,
          stallTimeoutMs: flags.stallTimeout * 1000,
          ...(minPiece ? { minPiece } : {}),
          tls: { ...(ca ? { ca } : {}), insecure: !!flags.insecure },
          progress,
          signal: ctl.signal,
        });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        for (const l of new Set([...subflowLinks, ...links])) l.destroy();
        await server?.paths.stop();
      }
    });
}

/** This machine's interfaces (net/interfaces.ts), loaded on first use. */
async function listInterfaces(): Promise<NetInterface[]> {
  const [{ discoverInterfaces }, { ExecRunner }] = await Promise.all([
    import('../net/interfaces.js'),
    import('../util/runner.js'),
  ]);
  return discoverInterfaces(new ExecRunner());
}

async function chooseProgress(flags: GetFlags): Promise<ProgressSink> {
  if (flags.quiet && !flags.json) return (await import('../download/progress.js')).nullProgress;
  const { jsonProgress, plainProgress } = await import('./progress/plain-progress.js');
  if (flags.json) return jsonProgress();
  if (!process.stderr.isTTY) return plainProgress();
  const { ttyProgress } = await import('./progress/tty-progress.js');
  return ttyProgress();
}

/** A URL on the command line is an argument: a malformed one is a usage error (exit 2), like a bad flag. */
function urlArgument(text: string): URL {
  try {
    return parseHttpUrl(text);
  } catch (err) {
    if (!isLinkmuxError(err, 'LINKMUX_ERR_URL')) throw err;
    throw new LinkmuxError('LINKMUX_ERR_USAGE', err.message, { cause: err });
  }
}

function parsePiece(text: string): number {
  const n = parseSize(text);
  if (n === undefined || n < 4096) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `--min-piece takes a size of at least 4k, like 256k or 1m, not "${text}"`,
    );
  }
  return n;
}

async function readCa(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `--ca ${path}: cannot read the file (${String(err)})`, {
      cause: err,
    });
  }
}
