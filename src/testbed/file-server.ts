/**
 * A small static HTTP/HTTPS file server for tests, the netns testbed and the demo.
 *
 * Guarantees: files under `root` are served at `/files/<name>` with Content-Length,
 * Accept-Ranges, a strong ETag (size + mtime), Last-Modified, single byte ranges
 * (`a-b`, `a-`, `-n`) answered 206 with Content-Range, 416 with `bytes *\/size` when
 * unsatisfiable, If-Range honoured, HEAD, keep-alive, 404 for missing files and 403
 * for any path that tries to leave `root`. Bodies are streamed with backpressure.
 *
 * `Behaviour` switches turn it into a bad server on purpose (ignores Range, redirects,
 * drops or stalls mid-body, lies in Content-Range, changes the file, answers errors),
 * and `stats()` records every request with the body bytes it was sent, so tests can
 * assert that nothing was fetched twice.
 */
import { createReadStream, type Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { formatHostPort } from '../net/address.js';

export interface Behaviour {
  /** Ignore Range and If-Range: always 200 with the full body. */
  noRange?: boolean;
  /** Serve `/redirect/<n>/<name>` (302 chain of n hops to /files/<name>) and `/redirect-loop[/<name>]`. */
  redirect?: boolean;
  /** Destroy the socket after `bytes` body bytes, for the first `times` GET responses longer than that. */
  dropAfterBytes?: { bytes: number; times: number };
  /** Answer ranged requests 206 with a Content-Range (and matching body) other than the one asked for. */
  lieContentRange?: boolean;
  /** After this many /files requests the file "changes": new ETag and Last-Modified, every byte XOR 0xff. */
  changeAfterRequests?: number;
  /** Answer every request (or only the first `times`) with this status and a short text body. */
  status?: { code: number; times?: number };
  /** Send this many body bytes, then stop writing but keep the connection open (every response, or the first `times`). */
  stallAfterBytes?: number | { bytes: number; times: number };
  /** Pace every response body to at most this many bytes per second. */
  rateBytesPerSec?: number;
}

export interface FileServerOptions {
  /** Directory whose files are served at /files/<name>. */
  root: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** PEM key and certificate: serve HTTPS instead of HTTP. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  behaviour?: Behaviour;
}

export interface RequestRecord {
  /** 1-based, in arrival order. */
  seq: number;
  method: string;
  path: string;
  /** The Range header as received, if any. */
  range?: string;
  status: number;
  /** Body bytes written to the socket so far. */
  bodyBytes: number;
  /** The body was sent in full (false for drops, stalls and client aborts). */
  complete: boolean;
}

export interface FileServerStats {
  requests: number;
  bodyBytes: number;
  log: RequestRecord[];
}

export interface FileServer {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  /** URL of /files/<name>. */
  fileUrl(name: string): string;
  stats(): FileServerStats;
  resetStats(): void;
  /** Replaces the behaviour switches and resets their counters. */
  setBehaviour(behaviour: Behaviour): void;
  /** Stops listening and destroys every connection (including stalled ones). */
  close(): Promise<void>;
}

interface FileInfo {
  file: string;
  size: number;
  etag: string;
  lastModified: string;
  changed: boolean;
}

type Range = { start: number; end: number } | 'unsatisfiable' | undefined;

/** Parses a single `bytes=` range against `size`; undefined means "serve the whole file". */
export function parseRange(header: string | undefined, size: number): Range {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined; // malformed or multi-range: RFC 9110 lets us ignore Range
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Number(b);
  if (b !== '' && end < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

/** What the request handlers read and count; setBehaviour replaces the behaviour and resets the counters. */
interface ServerState {
  root: string;
  behaviour: Behaviour;
  counters: { status: number; drops: number; stalls: number; files: number };
}

const freshCounters = (): ServerState['counters'] => ({ status: 0, drops: 0, stalls: 0, files: 0 });

export async function startFileServer(opts: FileServerOptions): Promise<FileServer> {
  const host = opts.host ?? '127.0.0.1';
  const state: ServerState = {
    root: await realpath(opts.root),
    behaviour: { ...opts.behaviour },
    counters: freshCounters(),
  };
  let log: RequestRecord[] = [];
  let seq = 0;
  const sockets = new Set<Socket>();

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const rec: RequestRecord = {
      seq: ++seq,
      method: req.method ?? '',
      path: req.url ?? '',
      status: 0,
      bodyBytes: 0,
      complete: false,
    };
    if (typeof req.headers.range === 'string') rec.range = req.headers.range;
    log.push(rec);
    handleRequest(state, req, res, rec).catch((err: unknown) => {
      if (!res.headersSent) {
        send(res, rec, 500, `internal error: ${err instanceof Error ? err.message : String(err)}\n`);
      } else {
        res.destroy();
      }
    });
  };

  const server = opts.tls
    ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler)
    : http.createServer(handler);
  server.keepAliveTimeout = 5000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // TLS servers see the raw TCP socket on 'connection' too; tracking it is enough to destroy it.

  const port = await listen(server, opts.port ?? 0, host);
  const scheme = opts.tls ? 'https' : 'http';
  const url = `${scheme}://${formatHostPort({ host, port })}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    fileUrl: (name) => `${url}/files/${encodeURIComponent(name)}`,
    stats: () => ({
      requests: log.length,
      bodyBytes: log.reduce((n, r) => n + r.bodyBytes, 0),
      log: log.map((r) => ({ ...r })),
    }),
    resetStats: () => {
      log = [];
    },
    setBehaviour: (b) => {
      state.behaviour = { ...b };
      state.counters = freshCounters();
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}

/** One request: a status or method answer, a redirect, a 404/403, or the file. */
async function handleRequest(
  state: ServerState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  rec: RequestRecord,
): Promise<void> {
  const st = state.behaviour.status;
  if (st && (st.times === undefined || state.counters.status < st.times)) {
    state.counters.status++;
    send(res, rec, st.code, `status ${st.code} by state.behaviour\n`);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    send(res, rec, 405, 'method not allowed\n');
    return;
  }
  const urlPath = (req.url ?? '/').split('?')[0] ?? '/';
  if (state.behaviour.redirect && redirect(urlPath, res, rec)) return;
  if (!urlPath.startsWith('/files/')) {
    send(res, rec, 404, 'not found\n');
    return;
  }
  const file = await resolveFile(state.root, urlPath.slice('/files/'.length));
  if (file === 'forbidden') {
    send(res, rec, 403, 'forbidden\n');
    return;
  }
  if (file === undefined) {
    send(res, rec, 404, 'not found\n');
    return;
  }
  state.counters.files++;
  const changeAfter = state.behaviour.changeAfterRequests;
  const info = fileInfo(
    file.path,
    file.stats,
    changeAfter !== undefined && state.counters.files > changeAfter,
  );
  await serveFile(state, req, res, rec, info);
}

/** /redirect-loop/… and /redirect/N/NAME (N hops to /files/NAME); false for any other path. */
function redirect(urlPath: string, res: http.ServerResponse, rec: RequestRecord): boolean {
  if (urlPath === '/redirect-loop' || urlPath.startsWith('/redirect-loop/')) {
    res.setHeader('Location', urlPath);
    send(res, rec, 302, 'loop\n');
    return true;
  }
  const m = /^\/redirect\/(\d+)\/(.+)$/.exec(urlPath);
  if (!m) return false;
  const n = Number(m[1]);
  res.setHeader('Location', n <= 1 ? `/files/${m[2]}` : `/redirect/${n - 1}/${m[2]}`);
  send(res, rec, 302, 'redirect\n');
  return true;
}

/** The file, whole or the range asked for, with the state.behaviour's faults (lies, drops, stalls, rate). */
async function serveFile(
  state: ServerState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  rec: RequestRecord,
  info: FileInfo,
): Promise<void> {
  // A server that ignores Range usually says nothing about ranges at all.
  if (!state.behaviour.noRange) res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('ETag', info.etag);
  res.setHeader('Last-Modified', info.lastModified);
  res.setHeader('Content-Type', 'application/octet-stream');

  let range = state.behaviour.noRange ? undefined : parseRange(req.headers.range, info.size);
  const ifRange = req.headers['if-range'];
  if (range !== undefined && typeof ifRange === 'string' && !ifRangeMatches(ifRange, info)) range = undefined;

  if (range === 'unsatisfiable') {
    res.setHeader('Content-Range', `bytes */${info.size}`);
    send(res, rec, 416, 'range not satisfiable\n');
    return;
  }
  let start = 0;
  let end = info.size - 1;
  let status = 200;
  if (range !== undefined) {
    status = 206;
    ({ start, end } = state.behaviour.lieContentRange ? lie(range, info.size) : range);
    res.setHeader('Content-Range', `bytes ${start}-${end}/${info.size}`);
  }
  const length = Math.max(0, end - start + 1);
  res.setHeader('Content-Length', length);
  rec.status = status;
  res.writeHead(status);
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    rec.complete = true;
    return;
  }

  const cut = cutFor(state, length);
  await streamBody(res, rec, info, start, end, cut, state.behaviour.rateBytesPerSec);
}

/** Where this body is cut, if the behaviour drops or stalls it (each counted against its `times`). */
function cutFor(state: ServerState, length: number): { at: number; action: 'drop' | 'stall' } | undefined {
  const { behaviour, counters } = state;
  const drop = behaviour.dropAfterBytes;
  const stall =
    typeof behaviour.stallAfterBytes === 'number'
      ? { bytes: behaviour.stallAfterBytes, times: Infinity }
      : behaviour.stallAfterBytes;
  if (drop && counters.drops < drop.times && length > drop.bytes) {
    counters.drops++;
    return { at: drop.bytes, action: 'drop' };
  }
  if (stall && counters.stalls < stall.times && length > stall.bytes) {
    counters.stalls++;
    return { at: stall.bytes, action: 'stall' };
  }
  return undefined;
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function send(res: http.ServerResponse, rec: RequestRecord, status: number, body: string): void {
  rec.status = status;
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  rec.bodyBytes = res.req.method === 'HEAD' ? 0 : Buffer.byteLength(body);
  rec.complete = true;
  res.end(body);
}

/** Maps the part after /files/ to a file inside root; 'forbidden' for any escape attempt. */
async function resolveFile(
  root: string,
  encoded: string,
): Promise<{ path: string; stats: Stats } | 'forbidden' | undefined> {
  let name: string;
  try {
    name = decodeURIComponent(encoded);
  } catch {
    return 'forbidden';
  }
  const parts = name.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\\') || p.includes('\0'))) {
    return 'forbidden';
  }
  const candidate = path.join(root, ...parts);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    return undefined;
  }
  // A symlink inside root must not lead outside it either.
  if (!real.startsWith(root + path.sep)) return 'forbidden';
  const stats = await stat(real);
  return stats.isFile() ? { path: real, stats } : undefined;
}

function fileInfo(file: string, stats: Stats, changed: boolean): FileInfo {
  const mtime = Math.floor(stats.mtimeMs / 1000) + (changed ? 86400 : 0);
  const tag = `${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}${changed ? '-x' : ''}`;
  return {
    file,
    size: stats.size,
    etag: `"${tag}"`,
    lastModified: new Date(mtime * 1000).toUTCString(),
    changed,
  };
}

/** If-Range: a strong ETag must match exactly, a date must equal Last-Modified; weak tags never match. */
function ifRangeMatches(value: string, info: FileInfo): boolean {
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === info.etag;
  const t = Date.parse(v);
  return !Number.isNaN(t) && t === Date.parse(info.lastModified);
}

/** A range of the same length shifted by one byte (shorter when it cannot shift). */
function lie(r: { start: number; end: number }, size: number): { start: number; end: number } {
  if (r.start > 0) return { start: r.start - 1, end: r.end - 1 };
  if (r.end + 1 < size) return { start: 1, end: r.end + 1 };
  return { start: Math.min(1, size - 1), end: r.end };
}

async function streamBody(
  res: http.ServerResponse,
  rec: RequestRecord,
  info: FileInfo,
  start: number,
  end: number,
  cut: { at: number; action: 'drop' | 'stall' } | undefined,
  rate: number | undefined,
): Promise<void> {
  const input = createReadStream(info.file, { start, end, highWaterMark: rate ? 16 * 1024 : 256 * 1024 });
  const began = Date.now();
  const length = end - start + 1;
  try {
    for await (const raw of input) {
      if (res.destroyed) return;
      let chunk = raw as Buffer;
      if (info.changed) chunk = xorFF(chunk);
      if (cut && rec.bodyBytes + chunk.length >= cut.at) {
        chunk = chunk.subarray(0, cut.at - rec.bodyBytes);
        rec.bodyBytes += chunk.length;
        await writeFlushed(res, chunk);
        // The stalled socket stays open until the client or close() ends it.
        if (cut.action === 'drop') res.socket?.destroy();
        return;
      }
      // Counted before the write: a fast client may read stats() the moment it has the bytes.
      rec.bodyBytes += chunk.length;
      if (rec.bodyBytes === length) rec.complete = true;
      if (!res.write(chunk) && !(await drained(res))) return;
      if (rate) {
        const due = began + (1000 * rec.bodyBytes) / rate - Date.now();
        if (due > 0) await new Promise((r) => setTimeout(r, due));
      }
    }
    res.end();
  } finally {
    input.destroy();
  }
}

function xorFF(buf: Buffer): Buffer {
  const out = Buffer.allocUnsafe(buf.length);
  for (let i = 0; i < buf.length; i++) out[i] = (buf[i] ?? 0) ^ 0xff;
  return out;
}

/** Resolves once `chunk` (or, when empty, the header) has been handed to the kernel. */
function writeFlushed(res: http.ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (chunk.length > 0) {
      res.write(chunk, () => resolve());
      return;
    }
    res.flushHeaders();
    setTimeout(resolve, 20);
  });
}

/** Resolves true on 'drain', false when the response closes first (client went away). */
function drained(res: http.ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const done = (v: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(v);
    };
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

export { makeTestFile } from './test-file.js';
