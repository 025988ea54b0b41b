/**
 * The fallback for servers without Range support: one GET over one link,
 * written from byte 0. A broken transfer is retried from the start (there is
 * no way to ask for the rest), and the final name appears only when the body
 * is complete (and verified, when a checksum was given).
 */
import { open, rename, rm } from 'node:fs/promises';
import type { Link } from '../links/link.js';
import type { Clock } from '../util/clock.js';
import { LinkmuxError, describe, fileError } from '../util/errors.js';
import { verifyChecksum, type Checksum } from './checksum.js';
import { header, parseContentLength, sameVersion, validatorsOf, type Validators } from './http-headers.js';
import { discard, statusError, type RangeResponse } from './http-request.js';
import type { Fetch } from './link-fetch.js';
import type { OutputPaths } from './output-path.js';
import { buildSummary, type DownloadSummary, type ProgressSink } from './progress.js';
import { RateMeter } from './rate-meter.js';
import { backoffDelay, DEFAULT_BACKOFF } from './retry-policy.js';

export interface SingleStreamJob {
  url: URL;
  first: RangeResponse | undefined;
  validators: Validators;
  size: number | undefined;
  paths: OutputPaths;
  link: Link;
  /** GETs over `link`. */
  fetch: Fetch;
  stallTimeoutMs: number;
  checksum: Checksum | undefined;
  progress: ProgressSink;
  clock: Clock;
  signal: AbortSignal | undefined;
  retries?: number;
  headers?: Record<string, string>;
}

export async function singleStream(job: SingleStreamJob): Promise<DownloadSummary> {
  const { paths, progress, clock } = job;
  const startedAt = clock.now();
  const meter = new RateMeter(clock);
  let written = 0;
  let size = job.size;
  progress.start({
    url: job.url.href,
    output: paths.final,
    size,
    resumedBytes: 0,
    links: [job.link.id],
    ranges: false,
  });
  const ticker = setInterval(() => {
    const rate = meter.rate() ?? 0;
    progress.update({
      elapsedMs: clock.now() - startedAt,
      done: written,
      size,
      rate,
      links: [{ id: job.link.id, bytes: meter.total, rate, active: 1, state: 'active' }],
    });
  }, 250);
  await rm(paths.control, { force: true });
  let res = job.first;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        if (!res) res = await refetch(job);
        if (!sameVersion(job.validators, validatorsOf(res.headers))) {
          discard(res.body);
          throw new LinkmuxError(
            'LINKMUX_ERR_FILE_CHANGED',
            'the file changed on the server between two attempts: rerun the command',
          );
        }
        size = parseContentLength(header(res.headers, 'content-length')) ?? size;
        written = await writeBody(res, paths.part, meter);
        if (size !== undefined && written !== size) {
          throw new LinkmuxError(
            'LINKMUX_ERR_CONNECT',
            `the transfer ended after ${written} of ${size} bytes`,
          );
        }
        break;
      } catch (err) {
        res = undefined;
        if (job.signal?.aborted) {
          throw new LinkmuxError(
            'LINKMUX_ERR_ABORTED',
            'interrupted: this server does not support ranges, so the next run starts over',
          );
        }
        if (
          err instanceof LinkmuxError &&
          err.code !== 'LINKMUX_ERR_CONNECT' &&
          err.code !== 'LINKMUX_ERR_REFUSED' &&
          err.code !== 'LINKMUX_ERR_UNREACHABLE' &&
          err.code !== 'LINKMUX_ERR_TIMEOUT'
        )
          throw err;
        if (attempt >= (job.retries ?? 5)) {
          throw new LinkmuxError(
            'LINKMUX_ERR_ALL_LINKS_FAILED',
            `the download failed ${attempt + 1} times: ${describe(err)}`,
            {
              cause: err,
            },
          );
        }
        progress.notice(
          `transfer broke (${describe(err)}); this server does not support ranges, so it starts over`,
        );
        await new Promise((r) => setTimeout(r, backoffDelay(attempt + 1, DEFAULT_BACKOFF)));
      }
    }
    const digest = job.checksum ? await verifyChecksum(paths.part, job.checksum) : undefined;
    await rename(paths.part, paths.final);
    const summary = buildSummary({
      output: paths.final,
      size: written,
      resumedBytes: 0,
      seconds: (clock.now() - startedAt) / 1000,
      links: [{ id: job.link.id, bytes: written, failed: false }],
      checksum: digest,
    });
    progress.finish(summary);
    return summary;
  } catch (err) {
    progress.abort();
    throw err;
  } finally {
    clearInterval(ticker);
    if (res) discard(res.body);
  }
}

async function refetch(job: SingleStreamJob): Promise<RangeResponse> {
  const res = await job.fetch(job.url, {
    ...(job.headers ? { headers: job.headers } : {}),
    stallTimeoutMs: job.stallTimeoutMs,
    ...(job.signal ? { signal: job.signal } : {}),
  });
  if (res.status !== 200) throw statusError(res, job.url);
  return res;
}

async function writeBody(res: RangeResponse, path: string, meter: RateMeter): Promise<number> {
  let fh;
  try {
    fh = await open(path, 'w');
  } catch (err) {
    discard(res.body);
    throw fileError(err, path, false);
  }
  let at = 0;
  try {
    try {
      for await (const chunk of res.body) {
        try {
          await fh.write(chunk, 0, chunk.length, at);
        } catch (err) {
          throw fileError(err, path, false);
        }
        at += chunk.length;
        meter.add(chunk.length);
      }
    } catch (err) {
      if (err instanceof LinkmuxError) throw err;
      throw new LinkmuxError(
        'LINKMUX_ERR_CONNECT',
        `the transfer broke after ${at} bytes: ${describe(err)}`,
        { cause: err },
      );
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return at;
}
