/**
 * Reading the config: from an object (parseConfig), a YAML file
 * (loadConfigFile), the usual place (loadConfig: -c FILE, else ./linkmux.yaml
 * when it exists, else the defaults), plus flag overrides (mergeFlags) and a
 * printable copy (redactConfig).
 *
 * Guarantees: every failure is a LINKMUX_ERR_CONFIG (LINKMUX_ERR_USAGE for a
 * flag refused by mergeFlags) naming the source, the
 * key's path and, for files, the line; YAML syntax errors carry line and
 * column; all problems are reported at once, not one per run; the result is
 * deeply frozen; merged flags go through the same schema as the file, so a
 * flag cannot produce a config the file could not.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, isMap, isScalar, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { LinkmuxError, redactUrl, systemCode } from '../util/errors.js';
import { DEFAULT_CONFIG_FILE } from './example.js';
import { describeIssues } from './issues.js';
import type { Config, ConfigInput } from './schema.js';
import { configSchema } from './schema.js';

export { DEFAULT_CONFIG_FILE };

type Path = ReadonlyArray<PropertyKey>;
type Locate = (path: Path, key?: string) => number | undefined;

/** Validates `input` (a parsed YAML/JSON value) against the schema; `source` names it in errors. */
export function parseConfig(input: unknown, source: string): Config {
  return parseWith(input, source);
}

function parseWith(input: unknown, source: string, locate?: Locate): Config {
  // An empty file is YAML null: it means "all defaults", like {}.
  const value = input === null || input === undefined ? {} : input;
  const result = configSchema.safeParse(value);
  if (!result.success) {
    const lines = describeIssues(result.error.issues, value, configSchema, locate);
    const message =
      lines.length === 1
        ? `${source}: ${lines[0]}`
        : `${source}: ${lines.length} problems:\n${lines.map((l) => `  - ${l}`).join('\n')}`;
    throw new LinkmuxError('LINKMUX_ERR_CONFIG', message);
  }
  return deepFreeze(result.data) as Config;
}

/** Parses YAML text; `source` (the file name) prefixes every message. */
export function parseConfigText(text: string, source: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const error = doc.errors[0];
  if (error) {
    const pos = error.linePos?.[0];
    const where = pos ? `${source}:${pos.line}:${pos.col}` : source;
    const detail = error.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '').trim();
    throw new LinkmuxError('LINKMUX_ERR_CONFIG', `${where}: invalid YAML: ${detail}`, { cause: error });
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new LinkmuxError('LINKMUX_ERR_CONFIG', `${source}: invalid YAML: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseWith(value, source, locator(doc, lineCounter));
}

/** Reads and parses a YAML config file. */
export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw readError(err, file);
  }
  return parseConfigText(text, file);
}

/** -c FILE when given, else ./linkmux.yaml when it exists, else undefined (the defaults). */
export function findConfigFile(
  explicit: string | undefined,
  cwd: string = process.cwd(),
): string | undefined {
  if (explicit !== undefined) return explicit;
  const candidate = path.join(cwd, DEFAULT_CONFIG_FILE);
  return existsSync(candidate) ? candidate : undefined;
}

/** The effective config and where it came from ("defaults" or the file's path). */
export async function loadConfig(
  opts: { file?: string; cwd?: string } = {},
): Promise<{ config: Config; source: string }> {
  const file = findConfigFile(opts.file, opts.cwd);
  if (file === undefined) return { config: parseConfig({}, 'defaults'), source: 'defaults' };
  return { config: await loadConfigFile(file), source: file };
}

/** Overrides as flags give them: any subset of the file's keys; undefined means "not given". */
export type ConfigOverrides = DeepPartial<ConfigInput>;
type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> | undefined }
    : T;

/**
 * The config with `overrides` laid over it: mappings merge key by key, lists and
 * values replace, undefined is skipped. The result is validated again (source
 * `source`, default "command line") and frozen. The config was valid before, so
 * a refusal is the flags' fault: LINKMUX_ERR_USAGE (exit 2), same message.
 */
export function mergeFlags(config: Config, overrides: ConfigOverrides, source = 'command line'): Config {
  try {
    return parseConfig(merge(config, overrides), source);
  } catch (err) {
    if (!(err instanceof LinkmuxError)) throw err;
    throw new LinkmuxError('LINKMUX_ERR_USAGE', err.message, { cause: err });
  }
}

function merge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

/** A copy safe to print or log: the password becomes "***", as do credentials in probe URLs. */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config) as unknown as {
    auth?: { password: string };
    health: { targets?: string[] };
    links: string[];
    join: string[];
    rpc: { secret?: string };
  };
  if (copy.auth) copy.auth.password = '***';
  if (copy.rpc.secret !== undefined) copy.rpc.secret = '***';
  // The userinfo runs to the LAST "@" before any "/", "?" or "#" (as URL parsing reads it): "@" may be in the password.
  copy.links = copy.links.map((l) =>
    l.replace(
      /^(socks5h?:\/\/)([^/?#]*)@/i,
      (_, scheme: string, userinfo: string) => `${scheme}${userinfo.split(':')[0]}:***@`,
    ),
  );
  // A join token is a bearer credential: only its kind is shown.
  copy.join = copy.join.map((t) => `${t.slice(0, 5)}***`);
  if (copy.health.targets) {
    copy.health.targets = copy.health.targets.map((t) => (/^https?:\/\/[^/]*@/i.test(t) ? redactUrl(t) : t));
  }
  return deepFreeze(copy) as unknown as Config;
}

function readError(err: unknown, file: string): LinkmuxError {
  const code = systemCode(err);
  const message =
    code === 'ENOENT'
      ? `config file ${file} not found: create one with \`linkmux config init ${file}\`, or leave out -c to use the defaults`
      : code === 'EISDIR'
        ? `config file ${file} is a directory: give the path of a YAML file`
        : code === 'EACCES' || code === 'EPERM'
          ? `cannot read config file ${file}: permission denied; check its owner and mode`
          : `cannot read config file ${file}: ${(err as Error).message}`;
  return new LinkmuxError('LINKMUX_ERR_CONFIG', message, { cause: err });
}

/**
 * Line numbers in the YAML document: of an unknown key, or of the value at a
 * path — or of its nearest ancestor present in the file (a missing key).
 */
function locator(doc: Document, lines: LineCounter): Locate {
  const offsetOf = (node: unknown): number | undefined =>
    node && typeof node === 'object' && 'range' in node
      ? ((node as { range?: [number, number, number] | null }).range?.[0] ?? undefined)
      : undefined;
  const nodeAt = (segs: unknown[]): unknown => (segs.length === 0 ? doc.contents : doc.getIn(segs, true));
  return (p, key) => {
    try {
      const segs = p.map((s) => (typeof s === 'symbol' ? String(s) : s));
      if (key !== undefined) {
        const node = nodeAt(segs);
        if (!isMap(node)) return undefined;
        const pair = node.items.find(
          (it) => (isScalar(it.key) ? String(it.key.value) : String(it.key)) === key,
        );
        const offset = offsetOf(pair?.key);
        return offset === undefined ? undefined : lines.linePos(offset).line;
      }
      for (let n = segs.length; n >= 0; n--) {
        const offset = offsetOf(nodeAt(segs.slice(0, n)));
        if (offset !== undefined) return lines.linePos(offset).line;
      }
      return undefined;
    } catch {
      return undefined;
    }
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
