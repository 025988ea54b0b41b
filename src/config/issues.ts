/**
 * Turns zod's issues into messages a user can act on: the key's path as it
 * appears in the file ("health.interval", "rules[2].action"), what was expected,
 * the value that was given, the line when the config came from a file, and for
 * unknown keys and enum values the closest valid name ("did you mean …?").
 * Values under `auth` are never quoted, so a password cannot leak into a message.
 */
import type { z } from 'zod';
import { show } from './fields.js';

type Path = ReadonlyArray<PropertyKey>;

/** The parts of zod's internal definitions that are walked to find an object's keys. */
interface Def {
  type: string;
  innerType?: Schema;
  in?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  valueType?: Schema;
}
interface Schema {
  _zod: { def: unknown };
}

/** One line per issue: "health.interval: expected …, got "fast" (line 4)", in file order when lines are known. */
export function describeIssues(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  schema: Schema,
  locate?: (path: Path, key?: string) => number | undefined,
): string[] {
  const lines: Array<{ text: string; line: number | undefined }> = [];
  const withLine = (text: string, line: number | undefined) => ({
    text: line === undefined ? text : `${text} (line ${line})`,
    line,
  });
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = keysAt(schema, issue.path) ?? [];
      for (const key of issue.keys) {
        const where = issue.path.length === 0 ? ' at the top level' : '';
        const hint = suggest(key, known);
        const help = hint
          ? ` (did you mean "${hint}"?)`
          : known.length
            ? ` (valid keys: ${known.join(', ')})`
            : '';
        lines.push(
          withLine(
            prefix(issue.path) + `unknown key ${JSON.stringify(key)}${where}${help}`,
            locate?.(issue.path, key),
          ),
        );
      }
      continue;
    }
    lines.push(withLine(prefix(issue.path) + describeIssue(issue, input), locate?.(issue.path)));
  }
  // Array.prototype.sort is stable: issues without a line keep zod's order, after the others.
  return lines.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity)).map((l) => l.text);
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const secret = issue.path[0] === 'auth' && issue.path.length > 1;
  const value = valueAt(input, issue.path);
  const got = secret ? '' : `, got ${show(value)}`;
  switch (issue.code) {
    case 'invalid_type': {
      if (value === undefined) return 'is missing (required)';
      const where = issue.path.length === 0 ? ' at the top level' : '';
      return `expected ${expectedText(issue.expected)}${where}${got}`;
    }
    case 'invalid_value': {
      const values = issue.values.map(String);
      const hint = typeof value === 'string' ? suggest(value, values) : undefined;
      return `expected one of ${values.join(', ')}${got}${hint ? ` (did you mean "${hint}"?)` : ''}`;
    }
    case 'too_small':
      if (issue.origin === 'string') return 'must not be empty';
      if (issue.origin === 'array' || issue.origin === 'set')
        return `needs at least ${issue.minimum} entries`;
      return `must be ${issue.inclusive ? 'at least' : 'more than'} ${issue.minimum}${got}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      if (issue.origin === 'array' || issue.origin === 'set') return `takes at most ${issue.maximum} entries`;
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}${got}`;
    case 'invalid_key':
      return issue.path.at(-1) === '' ? 'keys must not be empty' : `invalid key${got}`;
    default:
      return issue.message;
  }
}

function expectedText(expected: string): string {
  switch (expected) {
    case 'number':
      return 'a number';
    case 'int':
      return 'a whole number';
    case 'string':
      return 'a text value';
    case 'boolean':
      return 'true or false';
    case 'object':
    case 'record':
      return 'a mapping (key: value lines)';
    case 'array':
      return 'a list';
    default:
      return expected;
  }
}

function prefix(path: Path): string {
  return path.length === 0 ? '' : `${formatPath(path)}: `;
}

/** "health.interval", "rules[0].match.cidr", weights["my link"]. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][\w-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

function valueAt(input: unknown, path: Path): unknown {
  let v = input;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

function defOf(s: Schema): Def {
  return s._zod.def as Def;
}

/** Looks through default / optional / transform wrappers to the schema that holds the shape. */
function unwrap(s: Schema): Schema {
  for (let i = 0; i < 20; i++) {
    const d = defOf(s);
    const inner = d.innerType ?? (d.type === 'pipe' ? d.in : undefined);
    if (!inner) return s;
    s = inner;
  }
  return s;
}

/** The keys an object at `path` accepts, when the schema there is an object. */
export function keysAt(schema: Schema, path: Path): string[] | undefined {
  let s: Schema | undefined = unwrap(schema);
  for (const seg of path) {
    const d = defOf(s);
    if (d.type === 'object') s = d.shape?.[String(seg)];
    else if (d.type === 'array') s = d.element;
    else if (d.type === 'record') s = d.valueType;
    else return undefined;
    if (!s) return undefined;
    s = unwrap(s);
  }
  const d = defOf(s);
  return d.type === 'object' && d.shape ? Object.keys(d.shape) : undefined;
}

/** The closest known name: same letters ignoring case and "-"/"_", or within a small edit distance. */
export function suggest(word: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');
  const w = norm(word);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = norm(k) === w ? 0 : editDistance(w, norm(k));
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const allowed = w.length <= 3 ? 1 : w.length <= 6 ? 2 : 3;
  return bestDistance <= allowed ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}
