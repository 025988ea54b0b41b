/**
 * `linkmux get`: one file from one server over every link at once.
 *
 *   probe (link 0, follows redirects) ─► size, validators, Range support
 *   plan: one piece per connection slot (links × connections per link)
 *   slots fetch pieces in parallel; idle slots steal the tail of the piece
 *   that would finish last; data is written in place into <out>.part
 *   every second: fsync the data, then atomically rewrite <out>.linkmux
 *   done: fsync, verify the checksum, rename <out>.part → <out>
 *
 * Guarantees: the control file never claims bytes that are not on disk, so an
 * interruption at any point (Ctrl-C, kill -9, a full disk) can be resumed
 * with -c without refetching or corrupting a byte; the final name appears only
 * for a complete (and, when asked, verified) file.
 */
import { open, rename, type FileHandle } from 'node:fs/promises';
import type { Link } from '../links/link.js';
import { systemClock, type Clock } from '../util/clock.js';
import { LinkmuxError, describe, fileError, redactUrl } from '../util/errors.js';
import { verifyChecksum, type Checksum } from './checksum.js';
import { readControl, removeControl, writeControl, type ControlState } from './control-file.js';
import { sameVersion, urlFilename } from './http-headers.js';
import { discard, parseHttpUrl } from './http-request.js';
import type { TlsOptions } from '../links/link-agent.js';
import { LinkFetchers } from './link-fetch.js';
import { LinkHttpClient } from './node-http.js';
import { chooseOutput, pathsFor, prepareOutput, type OutputPaths } from './output-path.js';
import { PieceWorker, type Job, type Mirror } from './piece-worker.js';
import { probe, type ProbeResult } from './probe.js';
import { buildSummary, nullProgress, type DownloadSummary, type ProgressSink } from './progress.js';
import { RangePlan } from './range-plan.js';
import { DEFAULT_BACKOFF, isFatal, type Backoff } from './retry-policy.js';
import { singleStream } from './single-stream.js';

export interface DownloadOptions {
  /** The file's URL, then optional mirrors of the same file. */
  urls: string[];
  links: Link[];
  output?: string | undefined;
  dir?: string | undefined;
  continue?: boolean;
  overwrite?: boolean;
  connectionsPerLink?: number;
  checksum?: Checksum | undefined;
  /** Failures in a row before a connection slot gives up (default 5). */
  retries?: number;
  connectTimeoutMs?: number;
  stallTimeoutMs?: number;
  minPiece?: number;
  tls?: TlsOptions;
  backoff?: Backoff;
  progress?: ProgressSink;
  clock?: Clock;
  signal?: AbortSignal;
  /** How often the control file is rewritten (ms, default 1000). */
  saveIntervalMs?: number;
  /** How often progress is reported (ms, default 250). */
  progressIntervalMs?: number;
  /** Extra request headers (referer, user-agent, cookies…); never Range or If-Range. */
  headers?: Record<string, string>;
  /** Awaited after every chunk written (a shared rate limit); default none. */
  throttle?: (bytes: number) => Promise<void>;
}

export async function download(opts: DownloadOptions): Promise<DownloadSummary> {
  if (opts.urls.length === 0)
    throw new LinkmuxError('LINKMUX_ERR_USAGE', 'no URL given: linkmux get URL [MIRROR…]');
  if (opts.links.length === 0) throw new LinkmuxError('LINKMUX_ERR_NO_LINKS', 'no link to download over');
  const urls = opts.urls.map(parseHttpUrl);
  const progress = opts.progress ?? nullProgress;
  const clock = opts.clock ?? systemClock;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  const stallTimeoutMs = opts.stallTimeoutMs ?? 15_000;
  const shutdown = new AbortController();
  const fetchers = new LinkFetchers(opts.links, {
    connectTimeoutMs,
    tls: opts.tls ?? {},
    signal: shutdown.signal,
  });
  // One plain connection per link for the probes; the first slot of each link goes on with it.
  const plains = opts.links.map((l) => new LinkHttpClient(l));
  const probes: LinkProbe[] = [];
  try {
    const lf: LinkFetch = { links: opts.links, fetchers, plains };
    const mirrors = await probeAll(urls, lf, opts, stallTimeoutMs, probes, progress);
    const first = probes[0] as LinkProbe;
    const final = await chooseOutput({
      output: opts.output,
      dir: opts.dir,
      names: [first.file.dispositionName, urlFilename(first.file.url), urlFilename(urls[0] as URL)],
    });
    const paths = pathsFor(final);
    const mode = await prepareOutput(paths, { continue: !!opts.continue, overwrite: !!opts.overwrite });
    const size = first.file.size;
    if (!first.file.rangeSupported || size === undefined) {
      for (const p of probes.slice(1)) if (p.response) discard(p.response.body);
      if (mode === 'resume') {
        progress.notice(
          'the server does not support byte ranges: the partial download cannot be continued, starting over',
        );
      }
      progress.notice(
        `the server does not support byte ranges: downloading over one link (${opts.links[0]?.id}) only`,
      );
      return await singleStream({
        url: first.file.url,
        first: first.response,
        validators: first.file.validators,
        size,
        paths,
        link: opts.links[first.link] as Link,
        fetch: fetchers.fetch(first.link, plains[first.link] as LinkHttpClient),
        stallTimeoutMs,
        checksum: opts.checksum,
        progress,
        clock,
        signal: opts.signal,
        ...(opts.headers ? { headers: opts.headers } : {}),
      });
    }
    let resumed: ControlState | undefined;
    if (mode === 'resume') {
      resumed = await readControl(paths.control, urls[0]?.href ?? '');
      if (resumed && (resumed.size !== size || !sameVersion(resumed.validators, first.file.validators))) {
        throw new LinkmuxError(
          'LINKMUX_ERR_FILE_CHANGED',
          `the file at ${redactUrl(urls[0] as URL)} changed since the partial download was made ` +
            `(size or ETag/Last-Modified differ): rerun with --overwrite to fetch the new version`,
        );
      }
    }
    for (const p of probes.slice(1)) if (p.response) discard(p.response.body);
    const firstResponse =
      !resumed && first.response ? { response: first.response, last: first.responseLast } : undefined;
    if (resumed && first.response) discard(first.response.body);
    return await runRanged({
      opts,
      size,
      mirrors,
      paths,
      lf,
      probeLink: first.link,
      done: resumed?.done ?? [],
      controlUrl: urls[0]?.href ?? '',
      firstResponse,
      stallTimeoutMs,
      progress,
      clock,
      shutdown,
    });
  } catch (err) {
    for (const p of probes) if (p.response) discard(p.response.body);
    throw err;
  } finally {
    // A connect hanging on a dead link must not hold up the end of the job.
    shutdown.abort();
    for (const p of plains) p.close();
    await fetchers.destroy();
  }
}

/** The links and how requests go over them (link-fetch.ts). */
interface LinkFetch {
  links: readonly Link[];
  fetchers: LinkFetchers;
  /** Per link, the plain connection the first URL's probe uses. */
  plains: LinkHttpClient[];
}

/** A probe's result and the link that answered it. */
type LinkProbe = ProbeResult & { link: number };

/** Probes every URL, each on its own link; mirrors that disagree with the first URL are dropped. */
async function probeAll(
  urls: URL[],
  lf: LinkFetch,
  opts: DownloadOptions,
  stallTimeoutMs: number,
  out: LinkProbe[],
  progress: ProgressSink,
): Promise<Mirror[]> {
  const first = await probeWithRetry(urls[0] as URL, lf, 0, opts, stallTimeoutMs);
  out.push(first);
  const mirrors: Mirror[] = [{ url: first.file.url, validators: first.file.validators, alive: true }];
  const rest = await Promise.allSettled(
    urls.slice(1).map((u, i) => probeWithRetry(u, lf, i + 1, opts, stallTimeoutMs)),
  );
  rest.forEach((r, i) => {
    const u = redactUrl(urls[i + 1] as URL);
    if (r.status === 'rejected') {
      progress.notice(`mirror ${u} ignored: ${describe(r.reason)}`);
      return;
    }
    out.push(r.value);
    if (r.value.file.size !== first.file.size || !r.value.file.rangeSupported) {
      progress.notice(
        `mirror ${u} ignored: it serves ${r.value.file.size ?? 'an unknown number of'} bytes` +
          `${r.value.file.rangeSupported ? '' : ' without Range support'}, the first URL ${first.file.size}`,
      );
      return;
    }
    mirrors.push({ url: r.value.file.url, validators: r.value.file.validators, alive: true });
  });
  return mirrors;
}

/** The probe, retried on transient errors and moved to the next link each time. */
async function probeWithRetry(
  url: URL,
  lf: LinkFetch,
  startLink: number,
  opts: DownloadOptions,
  stallTimeoutMs: number,
): Promise<LinkProbe> {
  const n = lf.plains.length;
  const attempts = Math.max(1, Math.min(n * 2, (opts.retries ?? 5) + 1));
  let last: unknown;
  for (let a = 0; a < attempts; a++) {
    if (opts.signal?.aborted) throw aborted();
    const link = (startLink + a) % n;
    try {
      // The first URL's probe uses the link's shared connection (its first slot goes on with it);
      // mirrors, probed at the same time, each get a connection of their own.
      const plain =
        startLink === 0 ? (lf.plains[link] as LinkHttpClient) : new LinkHttpClient(lf.links[link] as Link);
      const result = await probe(lf.fetchers.fetch(link, plain), url, {
        stallTimeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.headers ? { headers: opts.headers } : {}),
      }).catch((err: unknown) => {
        if (plain !== lf.plains[link]) plain.close();
        throw err;
      });
      return { ...result, link };
    } catch (err) {
      if (opts.signal?.aborted) throw aborted();
      if (isFatal(err)) throw err;
      last = err;
    }
  }
  throw new LinkmuxError(
    'LINKMUX_ERR_ALL_LINKS_FAILED',
    `cannot reach ${redactUrl(url)} over any link: ${describe(last)}`,
    { cause: last },
  );
}

function aborted(): LinkmuxError {
  return new LinkmuxError('LINKMUX_ERR_ABORTED', 'interrupted: rerun the same command with -c to continue');
}

interface RangedJob {
  opts: DownloadOptions;
  size: number;
  mirrors: Mirror[];
  paths: OutputPaths;
  lf: LinkFetch;
  /** The link whose probe reply starts the first piece. */
  probeLink: number;
  done: { start: number; end: number }[];
  controlUrl: string;
  firstResponse: { response: NonNullable<ProbeResult['response']>; last: number } | undefined;
  stallTimeoutMs: number;
  progress: ProgressSink;
  clock: Clock;
  /** Aborts the links' pending connects. */
  shutdown: AbortController;
}

async function runRanged(r: RangedJob): Promise<DownloadSummary> {
  const { opts, size, paths, progress, clock } = r;
  const links = opts.links;
  const perLink = Math.max(1, opts.connectionsPerLink ?? 1);
  const plan = new RangePlan(
    size,
    r.done,
    links.length * perLink,
    opts.minPiece ? { minPiece: opts.minPiece } : {},
  );
  const resumedBytes = plan.writtenBytes();
  let file: FileHandle;
  try {
    file = await open(paths.part, resumedBytes > 0 ? 'r+' : 'w');
  } catch (err) {
    throw fileError(err, paths.part, resumedBytes > 0);
  }
  const stop = new AbortController();
  // undici does not give up a request whose connect is still pending on a dead
  // link; aborting the link's connect is what releases that slot at once.
  stop.signal.addEventListener('abort', () => r.shutdown.abort(), { once: true });
  const onOuterAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let failure: unknown;
  let wake: (() => void)[] = [];
  const workers: PieceWorker[] = [];
  const job: Job = {
    plan,
    file,
    partPath: paths.part,
    size,
    mirrors: r.mirrors,
    stallTimeoutMs: r.stallTimeoutMs,
    retries: opts.retries ?? 5,
    backoff: opts.backoff ?? DEFAULT_BACKOFF,
    clock,
    signal: stop.signal,
    rateOf: (w) => workers[w]?.meter.rate(),
    notify() {
      // Slots stuck in a stalled request must not hold up a finished job.
      if (plan.complete()) stop.abort();
      const w = wake;
      wake = [];
      for (const f of w) f();
    },
    waitChange(maxMs) {
      return new Promise((resolve) => {
        const t = setTimeout(resolve, maxMs);
        wake.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
    fail(err) {
      failure ??= err;
      stop.abort();
    },
    notice: (m) => progress.notice(m),
    ...(opts.headers ? { headers: opts.headers } : {}),
    ...(opts.throttle ? { throttle: opts.throttle } : {}),
  };
  const save = async () => {
    // Taken before the flush: a write that completes during fdatasync may not be covered by it.
    const done = plan.doneRanges();
    await file.datasync();
    await writeControl(paths.control, {
      url: r.controlUrl,
      size,
      validators: r.mirrors[0]?.validators ?? {},
      done,
    });
  };
  const startedAt = clock.now();
  progress.start({
    url: redactUrl(r.mirrors[0]?.url ?? ''),
    output: paths.final,
    size,
    resumedBytes,
    links: links.map((l) => l.id),
    ranges: true,
  });
  const snapshot = () => linkSnapshot(links, workers, perLink);
  const ticker = setInterval(() => {
    progress.update({
      elapsedMs: clock.now() - startedAt,
      done: plan.writtenBytes(),
      size,
      rate: sumRate(workers),
      links: snapshot(),
      ranges: plan.doneRanges(),
    });
  }, opts.progressIntervalMs ?? 250);
  // Every save goes through one chain: two saves at once would race on the same .tmp file.
  let saving = save();
  const saver = setInterval(() => {
    saving = saving.then(save).catch((err) => job.fail(fileError(err, paths.control, true)));
  }, opts.saveIntervalMs ?? 1_000);
  try {
    await saving;
    links.forEach((link, li) => {
      for (let c = 0; c < perLink; c++) {
        const id = workers.length;
        // The first slot of a link goes on over the connection its probe used.
        const plain = c === 0 ? (r.lf.plains[li] as LinkHttpClient) : new LinkHttpClient(link);
        const fetch = r.lf.fetchers.fetch(li, plain);
        workers.push(new PieceWorker(id, link, fetch, job, id % r.mirrors.length, plain));
      }
    });
    // The slot holding the probe's reply starts first, so it is the one that gets the piece at byte 0.
    const adopter = workers[r.probeLink * perLink] as PieceWorker;
    if (r.firstResponse) adopter.adoptFirstResponse(r.firstResponse.response, r.firstResponse.last);
    await Promise.all([adopter, ...workers.filter((w) => w !== adopter)].map((w) => w.run()));
    stop.abort();
    clearInterval(saver);
    await saving;
    if (!plan.complete()) {
      // Best effort: when the disk is full this fails too, and the last control file written stays valid.
      await save().catch(() => {});
      if (failure) throw failure;
      if (opts.signal?.aborted) throw aborted();
      throw new LinkmuxError(
        'LINKMUX_ERR_ALL_LINKS_FAILED',
        `every link failed; ${plan.writtenBytes()} of ${size} bytes are saved in ${paths.part}: ` +
          `check the links (linkmux links) and rerun the same command with -c to continue`,
      );
    }
    await file.sync();
    await file.close();
    const digest = opts.checksum ? await verifyChecksum(paths.part, opts.checksum) : undefined;
    await rename(paths.part, paths.final);
    await removeControl(paths.control);
    const summary = buildSummary({
      output: paths.final,
      size,
      resumedBytes,
      seconds: (clock.now() - startedAt) / 1000,
      links: snapshot().map((l) => ({ id: l.id, bytes: l.bytes, failed: l.state === 'failed' })),
      checksum: digest,
    });
    progress.finish(summary);
    return summary;
  } catch (err) {
    progress.abort();
    throw err;
  } finally {
    clearInterval(ticker);
    clearInterval(saver);
    stop.abort();
    opts.signal?.removeEventListener('abort', onOuterAbort);
    await file.close().catch(() => {});
  }
}

function sumRate(workers: PieceWorker[]): number {
  return workers.reduce((s, w) => s + (w.meter.rate() ?? 0), 0);
}

function linkSnapshot(links: Link[], workers: PieceWorker[], perLink: number) {
  return links.map((link, li) => {
    const mine = workers.slice(li * perLink, li * perLink + perLink);
    const active = mine.filter((w) => w.active).length;
    return {
      id: link.id,
      bytes: mine.reduce((s, w) => s + w.meter.total, 0),
      rate: mine.reduce((s, w) => s + (w.meter.rate() ?? 0), 0),
      active,
      state: (mine.length > 0 && mine.every((w) => w.dead) ? 'failed' : active > 0 ? 'active' : 'idle') as
        'active' | 'idle' | 'failed',
    };
  });
}
