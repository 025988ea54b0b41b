/**
 * A structural comparer for JSON values: same keys and same JSON types,
 * recursively (values may differ). Arrays of the same length compare position
 * by position; otherwise every element of one side with the first element of
 * the other; an empty array matches any array.
 * Returns the list of differences as "path: what" lines ([] = same shape).
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

export function shapeDiff(expected: unknown, actual: unknown, path = '$'): string[] {
  const te = jsonType(expected);
  const ta = jsonType(actual);
  if (te !== ta) return [`${path}: ${ta} where aria2 has ${te}`];
  if (te === 'array') {
    const e = expected as unknown[];
    const a = actual as unknown[];
    if (e.length === 0 || a.length === 0) return [];
    const out: string[] = [];
    if (e.length === a.length) {
      // Same length: position by position (batches and multicalls mix results and errors).
      for (let i = 0; i < a.length; i++) out.push(...shapeDiff(e[i], a[i], `${path}[${i}]`));
      return out;
    }
    for (let i = 0; i < a.length; i++) out.push(...shapeDiff(e[0], a[i], `${path}[${i}]`));
    for (let i = 1; i < e.length; i++) out.push(...shapeDiff(e[i], a[0], `${path}[aria2 ${i}]`));
    return [...new Set(out)];
  }
  if (te === 'object') {
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const out: string[] = [];
    for (const k of Object.keys(e)) {
      if (!(k in a)) out.push(`${path}.${k}: missing (aria2 has it)`);
      else out.push(...shapeDiff(e[k], a[k], `${path}.${k}`));
    }
    for (const k of Object.keys(a)) if (!(k in e)) out.push(`${path}.${k}: extra (aria2 has no such key)`);
    return out;
  }
  return [];
}
