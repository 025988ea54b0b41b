/**
 * The first request of a download: follows redirects, learns the size, the
 * validators and whether the server honours byte ranges. It asks for the
 * first PROBE_BYTES so that a server with Range support answers 206 and its
 * body serves as the start of the first connection's first piece (no round
 * trip wasted), while a resumed download throws away little. A server without
 * Range support answers 200 and the body is the whole file.
 */
import { LinkmuxError, redactUrl } from '../util/errors.js';
import {
  dispositionFilename,
  header,
  parseContentLength,
  parseContentRange,
  parseUnsatisfiedRange,
  validatorsOf,
  type Validators,
} from './http-headers.js';
import { discard, statusError, type RangeResponse } from './http-request.js';
import type { Fetch } from './link-fetch.js';

export interface RemoteFile {
  /** The URL after redirects: every range request goes there. */
  url: URL;
  /** Size in bytes; undefined when the server did not say (chunked, no Range). */
  size: number | undefined;
  rangeSupported: boolean;
  validators: Validators;
  /** Name suggested by Content-Disposition, if any. */
  dispositionName: string | undefined;
}

export interface ProbeResult {
  file: RemoteFile;
  /** The response whose body starts at byte 0 (206 or 200); undefined for an empty file. */
  response: RangeResponse | undefined;
  /** Last byte (inclusive) the response carries. */
  responseLast: number;
}

export const MAX_REDIRECTS = 10;
export const PROBE_BYTES = 256 * 1024;

export async function probe(
  fetch: Fetch,
  start: URL,
  opts: { signal?: AbortSignal; stallTimeoutMs: number; headers?: Record<string, string> },
): Promise<ProbeResult> {
  let url = start;
  const seen = new Set<string>([url.href]);
  for (let hop = 0; ; hop++) {
    const res = await fetch(url, {
      headers: { ...opts.headers, range: `bytes=0-${PROBE_BYTES - 1}` },
      stallTimeoutMs: opts.stallTimeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (res.status >= 300 && res.status < 400 && res.status !== 304) {
      discard(res.body);
      url = nextHop(url, header(res.headers, 'location'), res.status, hop, seen);
      continue;
    }
    return interpret(res, url);
  }
}

function nextHop(
  from: URL,
  location: string | undefined,
  status: number,
  hop: number,
  seen: Set<string>,
): URL {
  if (!location) {
    throw new LinkmuxError(
      'LINKMUX_ERR_BAD_RESPONSE',
      `the server answered ${status} (a redirect) without a Location header for ${redactUrl(from)}: the server is misconfigured`,
    );
  }
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw new LinkmuxError(
      'LINKMUX_ERR_BAD_RESPONSE',
      `the server redirected to a malformed URL from ${redactUrl(from)}`,
    );
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new LinkmuxError(
      'LINKMUX_ERR_URL',
      `the server redirected to a non-http(s) URL (${redactUrl(next)})`,
    );
  }
  if (from.protocol === 'https:' && next.protocol === 'http:') {
    throw new LinkmuxError(
      'LINKMUX_ERR_URL',
      `the server redirected from https to plain http (${redactUrl(next)}): refusing to downgrade; pass the http URL yourself if you trust it`,
    );
  }
  if (seen.has(next.href) || hop + 1 >= MAX_REDIRECTS) {
    throw new LinkmuxError(
      'LINKMUX_ERR_TOO_MANY_REDIRECTS',
      `the redirects from ${redactUrl(from)} loop or exceed ${MAX_REDIRECTS} hops: check the URL`,
    );
  }
  if (next.origin !== from.origin) {
    // Credentials are for the origin they were given for.
    next.username = '';
    next.password = '';
  } else if (!next.username && from.username) {
    next.username = from.username;
    next.password = from.password;
  }
  seen.add(next.href);
  return next;
}

function interpret(res: RangeResponse, url: URL): ProbeResult {
  const validators = validatorsOf(res.headers);
  const dispositionName = dispositionFilename(header(res.headers, 'content-disposition'));
  if (res.status === 206) {
    const cr = parseContentRange(header(res.headers, 'content-range'));
    if (!cr || cr.start !== 0 || cr.total === undefined || cr.last > PROBE_BYTES - 1) {
      discard(res.body);
      throw new LinkmuxError(
        'LINKMUX_ERR_BAD_RESPONSE',
        `the server answered 206 with a Content-Range that does not match the request ` +
          `("${header(res.headers, 'content-range') ?? ''}" for bytes=0-${PROBE_BYTES - 1}) at ${redactUrl(url)}: ` +
          `the server is broken; try another mirror`,
      );
    }
    return {
      file: { url, size: cr.total, rangeSupported: true, validators, dispositionName },
      response: res,
      responseLast: cr.last,
    };
  }
  if (res.status === 200) {
    const size = parseContentLength(header(res.headers, 'content-length'));
    return {
      file: { url, size, rangeSupported: false, validators, dispositionName },
      response: res,
      responseLast: (size ?? Infinity) - 1,
    };
  }
  if (res.status === 416 && parseUnsatisfiedRange(header(res.headers, 'content-range')) === 0) {
    discard(res.body);
    return {
      file: { url, size: 0, rangeSupported: true, validators, dispositionName },
      response: undefined,
      responseLast: -1,
    };
  }
  throw statusError(res, url);
}
