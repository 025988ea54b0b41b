/**
 * Parsing of the HTTP headers the downloader depends on (RFC 9110): Content-Range,
 * Content-Length, validators and Content-Disposition. Pure functions that
 * return undefined (never throw) on malformed input; callers decide what a
 * missing or lying header means.
 */

export type HeaderValue = string | string[] | undefined;
export type Headers = Record<string, HeaderValue>;

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export interface ContentRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  last: number;
  /** Complete length, undefined for "*". */
  total: number | undefined;
}

/** Parses "bytes 0-99/1000" or "bytes 0-99/*"; undefined when malformed or inconsistent. */
export function parseContentRange(value: string | undefined): ContentRange | undefined {
  if (!value) return undefined;
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value);
  if (!m) return undefined;
  const start = Number(m[1]);
  const last = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last) || last < start) return undefined;
  if (total !== undefined && (!Number.isSafeInteger(total) || last >= total)) return undefined;
  return { start, last, total };
}

/** Parses the "*\/N" form sent with 416 (Range Not Satisfiable). */
export function parseUnsatisfiedRange(value: string | undefined): number | undefined {
  const m = value ? /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(value) : null;
  return m ? Number(m[1]) : undefined;
}

export function parseContentLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** What identifies one version of a file on the server. */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

export function validatorsOf(headers: Headers): Validators {
  const out: Validators = {};
  const etag = header(headers, 'etag');
  const lastModified = header(headers, 'last-modified');
  if (etag) out.etag = etag.trim();
  if (lastModified) out.lastModified = lastModified.trim();
  return out;
}

/**
 * True when `seen` could be the same file as `expected`: a validator present on
 * both sides must match (weak ETags compare by their opaque tag).
 */
export function sameVersion(expected: Validators, seen: Validators): boolean {
  if (expected.etag && seen.etag && stripWeak(expected.etag) !== stripWeak(seen.etag)) return false;
  if (expected.lastModified && seen.lastModified && expected.lastModified !== seen.lastModified) return false;
  return true;
}

function stripWeak(etag: string): string {
  return etag.startsWith('W/') ? etag.slice(2) : etag;
}

/** The If-Range value to send, when a strong validator exists (weak ETags are not allowed there). */
export function ifRangeValue(v: Validators): string | undefined {
  if (v.etag && !v.etag.startsWith('W/')) return v.etag;
  return v.lastModified;
}

/**
 * The file name from Content-Disposition (RFC 6266): filename* (RFC 8187,
 * UTF-8) wins over filename. Path parts are stripped; undefined if none is usable.
 */
export function dispositionFilename(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const star = /filename\*\s*=\s*([^;]+)/i.exec(value);
  if (star?.[1]) {
    const m = /^([\w-]+)'[^']*'(.*)$/.exec(star[1].trim());
    if (m?.[2] !== undefined && m[1]?.toLowerCase() === 'utf-8') {
      try {
        const name = safeName(decodeURIComponent(m[2]));
        if (name) return name;
      } catch {
        // malformed percent-encoding: fall through to filename=
      }
    }
  }
  const plain = /filename\s*=\s*("((?:[^"\\]|\\.)*)"|[^;\s]+)/i.exec(value);
  if (!plain) return undefined;
  const raw = plain[2] !== undefined ? plain[2].replace(/\\(.)/g, '$1') : (plain[1] ?? '');
  return safeName(raw);
}

/** The last path segment of a URL, decoded; undefined for "/" or empty names. */
export function urlFilename(url: URL): string | undefined {
  const seg = url.pathname.split('/').pop() ?? '';
  try {
    return safeName(decodeURIComponent(seg));
  } catch {
    return safeName(seg);
  }
}

/** A bare file name: no directories, no control characters, not "." or "..". */
export function safeName(name: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  const base = (name.split(/[/\\]/).pop() ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim();
  if (!base || base === '.' || base === '..') return undefined;
  return base.length > 255 ? base.slice(0, 255) : base;
}
