/**
 * The resume control file beside a partial download (`<output>.linkmux`).
 * It records which byte ranges of `<output>.part` are on disk and which
 * version of which URL they belong to. It is written atomically (temp file,
 * fsync, rename), only after the data it claims was flushed, so after a crash
 * it never claims a byte that is not on disk. The URL itself is stored
 * redacted (no credentials on disk); a hash of the full URL is used to match.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import type { z } from 'zod';
import { LinkmuxError, redactUrl, systemCode } from '../util/errors.js';
import { normalizeRanges, type ByteRange } from './range-plan.js';
import type { Validators } from './http-headers.js';

/** zod is loaded only when a control file is read (a resume), to keep start-up short. */
async function controlSchema() {
  const { z } = await import('zod');
  const range = z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]);
  return z
    .object({
      format: z.literal('linkmux-download'),
      version: z.literal(1),
      url: z.string(),
      urlHash: z.string().regex(/^[0-9a-f]{64}$/),
      size: z.number().int().nonnegative(),
      etag: z.string().optional(),
      lastModified: z.string().optional(),
      done: z.array(range),
      updatedAt: z.string(),
    })
    .strict();
}

type ControlDoc = z.infer<Awaited<ReturnType<typeof controlSchema>>>;

export interface ControlState {
  url: string;
  size: number;
  validators: Validators;
  done: ByteRange[];
}

export function controlPathFor(output: string): string {
  return `${output}.linkmux`;
}

export function urlHash(url: string): string {
  return createHash('sha256').update(url).digest('hex');
}

export function encodeControl(state: ControlState, now = new Date()): string {
  const doc: ControlDoc = {
    format: 'linkmux-download',
    version: 1,
    url: redactUrl(state.url),
    urlHash: urlHash(state.url),
    size: state.size,
    ...(state.validators.etag ? { etag: state.validators.etag } : {}),
    ...(state.validators.lastModified ? { lastModified: state.validators.lastModified } : {}),
    done: normalizeRanges(state.done, state.size).map((r) => [r.start, r.end] as [number, number]),
    updatedAt: now.toISOString(),
  };
  return `${JSON.stringify(doc)}\n`;
}

/**
 * Decodes a control file's text and checks it belongs to `url`. Throws
 * LINKMUX_ERR_CONTROL_FILE with what to do when corrupt or foreign.
 */
export async function decodeControl(text: string, path: string, url: string): Promise<ControlState> {
  const fix = `rerun with --overwrite to discard the partial download and start over, or delete ${path}`;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONTROL_FILE',
      `the control file ${path} is corrupt (not JSON): ${fix}`,
    );
  }
  const parsed = (await controlSchema()).safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at "${issue.path.join('.')}"` : '';
    throw new LinkmuxError(
      'LINKMUX_ERR_CONTROL_FILE',
      `the control file ${path} is corrupt${where}: ${issue?.message ?? 'invalid'}; ${fix}`,
    );
  }
  const doc = parsed.data;
  for (const [start, end] of doc.done) {
    if (end <= start || end > doc.size) {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONTROL_FILE',
        `the control file ${path} is corrupt: range ${start}-${end} lies outside the file of ${doc.size} bytes; ${fix}`,
      );
    }
  }
  if (doc.urlHash !== urlHash(url)) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONTROL_FILE',
      `the partial download ${path} belongs to another URL (${doc.url}): pass that URL to continue it, ` +
        `choose another output with -o, or rerun with --overwrite to start over`,
    );
  }
  const validators: Validators = {};
  if (doc.etag) validators.etag = doc.etag;
  if (doc.lastModified) validators.lastModified = doc.lastModified;
  return {
    url,
    size: doc.size,
    validators,
    done: doc.done.map(([start, end]) => ({ start, end })),
  };
}

/** Reads the control file; undefined when it does not exist. */
export async function readControl(path: string, url: string): Promise<ControlState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (systemCode(err) === 'ENOENT') return undefined;
    throw new LinkmuxError('LINKMUX_ERR_IO', `cannot read the control file ${path}: ${String(err)}`, {
      cause: err,
    });
  }
  return decodeControl(text, path, url);
}

/** Writes the control file atomically: a reader sees the old or the new one, never a mix. */
export async function writeControl(path: string, state: ControlState): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(encodeControl(state));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export async function removeControl(path: string): Promise<void> {
  await rm(path, { force: true });
  await rm(`${path}.tmp`, { force: true });
}
