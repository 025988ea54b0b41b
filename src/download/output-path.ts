/**
 * Where a download is written, and the rules that protect what is already on
 * disk: data goes to `<out>.part` beside a control file `<out>.linkmux`; the
 * final name appears only when the file is complete. An existing file is never
 * overwritten silently, and a partial download is never discarded without
 * --overwrite.
 */
import { stat, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LinkmuxError, systemCode } from '../util/errors.js';
import { controlPathFor } from './control-file.js';

export interface OutputPaths {
  final: string;
  part: string;
  control: string;
}

export function pathsFor(final: string): OutputPaths {
  return { final, part: `${final}.part`, control: controlPathFor(final) };
}

/** The final path from -o / -d and the names the server suggested. */
export async function chooseOutput(opts: {
  output?: string | undefined;
  dir?: string | undefined;
  names: (string | undefined)[];
}): Promise<string> {
  const name = opts.names.find((n): n is string => !!n) ?? 'download';
  if (opts.output) {
    const out = resolve(opts.dir ?? '.', opts.output);
    if (opts.output.endsWith('/') || (await isDirectory(out))) return join(out, name);
    return out;
  }
  return resolve(opts.dir ?? '.', name);
}

export type StartMode = 'fresh' | 'resume';

/**
 * Decides whether to start fresh or resume, applying --continue / --overwrite.
 * Throws with what to do when the files on disk would otherwise be lost.
 */
export async function prepareOutput(
  paths: OutputPaths,
  flags: { continue: boolean; overwrite: boolean },
): Promise<StartMode> {
  const [final, part, control] = await Promise.all([
    exists(paths.final),
    exists(paths.part),
    exists(paths.control),
  ]);
  if (flags.overwrite) {
    await Promise.all([rm(paths.part, { force: true }), rm(paths.control, { force: true })]);
    return 'fresh';
  }
  if (final) {
    throw new LinkmuxError(
      'LINKMUX_ERR_OUTPUT_EXISTS',
      `${paths.final} already exists: choose another name with -o, or pass --overwrite to replace it`,
    );
  }
  if (!part && !control) return 'fresh';
  if (!flags.continue) {
    throw new LinkmuxError(
      'LINKMUX_ERR_PARTIAL_EXISTS',
      `a partial download of ${paths.final} exists (${paths.part}): continue it with -c, or start over with --overwrite`,
    );
  }
  if (part && !control) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONTROL_FILE',
      `${paths.part} has no control file (${paths.control}), so which bytes are valid is unknown: ` +
        `rerun with --overwrite to start over`,
    );
  }
  if (!part && control) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONTROL_FILE',
      `the data file ${paths.part} of this partial download is missing: rerun with --overwrite to start over`,
    );
  }
  return 'resume';
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (systemCode(err) === 'ENOENT') return false;
    throw new LinkmuxError('LINKMUX_ERR_IO', `cannot check ${path}: ${String(err)}`, { cause: err });
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
