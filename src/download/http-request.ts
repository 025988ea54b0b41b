/**
 * One HTTP GET through a link's agent, with linkmux's headers and timeouts,
 * and the status line turned into a clear error when it is not usable.
 */
import type { Agent } from 'undici';
import { Readable } from 'node:stream';
import { LinkmuxError, redactUrl } from '../util/errors.js';
import { VERSION } from '../version.js';
import { HttpStatusError } from './retry-policy.js';
import type { Headers } from './http-headers.js';

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Readable;
}

/** What the range path needs of a body (undici's or node-http.ts's): its chunks, and a way to drop it. */
export interface ResponseBody extends AsyncIterable<Buffer> {
  destroy(): unknown;
}

export interface RangeResponse {
  status: number;
  headers: Headers;
  body: ResponseBody;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Longest wait for the response headers, and between two body chunks (ms). */
  stallTimeoutMs: number;
}

export const USER_AGENT = `linkmux/${VERSION}`;

export async function httpGet(agent: Agent, url: URL, opts: RequestOptions): Promise<HttpResponse> {
  const res = await agent.request({
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    method: 'GET',
    headers: requestHeaders(url, opts.headers),
    signal: opts.signal ?? null,
    headersTimeout: opts.stallTimeoutMs,
    bodyTimeout: opts.stallTimeoutMs,
  });
  return { status: res.statusCode, headers: res.headers as Headers, body: res.body };
}

/** linkmux's request headers: user agent, credentials from the URL, then the caller's. */
export function requestHeaders(url: URL, extra?: Record<string, string>): Record<string, string> {
  return { 'user-agent': USER_AGENT, ...basicAuth(url), ...extra };
}

/** Credentials in the URL become a Basic Authorization header (never logged). */
function basicAuth(url: URL): Record<string, string> {
  if (!url.username && !url.password) return {};
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  return { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
}

/** Throws the error a non-2xx, non-redirect status deserves; discards the body first. */
export function statusError(res: RangeResponse, url: URL): HttpStatusError {
  if (res.body instanceof Readable) {
    res.body.resume();
    res.body.on('error', () => {});
  } else {
    res.body.destroy();
  }
  const hint =
    res.status === 401 || res.status === 403
      ? 'check the URL and its credentials'
      : res.status === 404 || res.status === 410
        ? 'check the URL'
        : res.status >= 500 || res.status === 429
          ? 'the server is in trouble; retry later'
          : 'check the URL';
  return new HttpStatusError(res.status, `the server answered ${res.status} for ${redactUrl(url)}: ${hint}`);
}

/** Parses and checks a URL given by the user: only http and https are accepted. */
export function parseHttpUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new LinkmuxError(
      'LINKMUX_ERR_URL',
      `"${text.slice(0, 200)}" is not a URL: give a full http:// or https:// URL`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new LinkmuxError(
      'LINKMUX_ERR_URL',
      `${url.protocol.replace(/:$/, '')} URLs are not supported (${redactUrl(url)}): linkmux get fetches http:// and https:// URLs`,
    );
  }
  return url;
}

/** Drains and discards a body we will not use, without unhandled errors. */
export function discard(body: ResponseBody): void {
  if (body instanceof Readable) body.on('error', () => {});
  body.destroy();
}
