// Fuzzing the config loader: random JSON values at every key the schema knows
// (taken from the schema itself, so new sections are fuzzed too), random and
// edited YAML text, and credentials in every place one can stand. Each input
// gives either a deeply frozen config that parses again to itself, or a
// LINKMUX_ERR_CONFIG whose every problem names a key path (or a line, for YAML
// syntax) — never another error; and neither the redacted config that
// `linkmux config show` prints nor any error message holds a password.
// Runs: LINKMUX_FUZZ_RUNS / LINKMUX_FUZZ_SEED (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { parseConfig, parseConfigText, redactConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { configSchema } from '../../src/config/schema.js';
import { keysAt } from '../../src/config/issues.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { fuzzParams, testTimeout, timed } from '../helpers/fuzz.js';

const SOURCE = 'fuzz.yaml';
const DEFAULTS = parseConfig({}, 'defaults');

/** Every key path of the schema's objects, e.g. ["health", "interval"], found by walking the schema. */
function schemaPaths(prefix: string[] = []): string[][] {
  const keys = keysAt(configSchema, prefix) ?? [];
  return keys.flatMap((k) => {
    const p = [...prefix, k];
    return [p, ...schemaPaths(p)];
  });
}
const PATHS = schemaPaths();

function isDeepFrozen(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return true;
  return Object.isFrozen(v) && Object.values(v).every(isDeepFrozen);
}

/** A problem line names a path ("health.interval: …", "rules[0].match: …") or the top level. */
const SEGMENT = String.raw`(?:\[(?:\d+|"(?:[^"\\]|\\.)*")\])`;
const NAMES_A_PATH = new RegExp(
  String.raw`^(?:[A-Za-z_][\w-]*|${SEGMENT})(?:\.[A-Za-z_][\w-]*|${SEGMENT})*: |at the top level`,
);

/** Parses, and fails on anything but a frozen config or a well-formed LINKMUX_ERR_CONFIG. */
function parseOrConfigError(parse: () => Config, secrets: readonly string[] = []): Config | undefined {
  let config: Config;
  try {
    config = timed('parse config', parse);
  } catch (err) {
    assert.ok(isLinkmuxError(err, 'LINKMUX_ERR_CONFIG'), `only LINKMUX_ERR_CONFIG, got ${String(err)}`);
    const m = err.message;
    assert.ok(m.startsWith(`${SOURCE}`), `the message names the source: ${m}`);
    if (/^fuzz\.yaml(?::\d+:\d+)?: invalid YAML/.test(m)) return undefined;
    const body = m.slice(SOURCE.length + 2);
    // Problems are listed as "\n  - …"; a YAML collection used as a key may hold line breaks itself.
    const lines = /^\d+ problems:\n {2}- /.test(body) ? body.split(/\n {2}- /).slice(1) : [body];
    for (const l of lines) assert.match(l, NAMES_A_PATH, `a problem names its path: ${JSON.stringify(l)}`);
    for (const s of secrets) assert.ok(!m.includes(s), `no password in ${JSON.stringify(m)}`);
    return undefined;
  }
  assert.ok(isDeepFrozen(config), 'the config is deeply frozen');
  assert.deepEqual(parseConfig(JSON.parse(JSON.stringify(config)), SOURCE), config, 'parses again to itself');
  const shown = JSON.stringify(redactConfig(config));
  for (const s of secrets) assert.ok(!shown.includes(s), `no password in config show: ${shown}`);
  return config;
}

// ---------------------------------------------------------------------------
// Generators

/** Values a config key might be given: its default, near-valid text, and anything JSON. */
function valueAt(path: readonly string[]): fc.Arbitrary<unknown> {
  let d: unknown = DEFAULTS;
  for (const k of path)
    d = d !== null && typeof d === 'object' ? (d as Record<string, unknown>)[k] : undefined;
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant(d === undefined ? null : structuredClone(d)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '',
        '0',
        '1',
        '-1',
        '1.5',
        '500ms',
        '2m',
        '1h',
        'x',
        '127.0.0.1:0',
        '0.0.0.0:1080',
        '[::1]:1',
        '/tmp/s',
        'lan',
        'lan:70000',
        'direct',
        'link:eth0',
        'policy:sticky',
        '10.0.0.0/8',
        '8000-8999',
        '.example.org',
        'tcp://1.1.1.1:443',
        'http://u:p@h/',
        'socks5://h:1080',
        'adaptive',
        'debug',
        true,
        false,
        0,
        65536,
        1e9,
        -0.5,
        NaN,
        [],
        {},
        [null],
        ['eth0', 'eth0'],
        { '': 1 },
        { __proto__: 1 },
        { constructor: 1 },
      ),
    },
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  );
}

/** A config object: some schema keys set (nested ones through their parents), sometimes an unknown key. */
const configObjectArb: fc.Arbitrary<unknown> = fc
  .tuple(
    fc
      .uniqueArray(fc.constantFrom(...PATHS), { minLength: 1, maxLength: 6 })
      .chain((paths) => fc.tuple(...paths.map((p) => valueAt(p).map((v) => [p, v] as const)))),
    fc.option(fc.tuple(fc.constantFrom([], ['health'], ['listen'], ['node']), fc.string({ maxLength: 8 })), {
      freq: 5,
    }),
  )
  .map(([entries, unknown]) => {
    const root: Record<string, unknown> = {};
    for (const [p, v] of entries) setPath(root, p, v);
    if (unknown) setPath(root, [...unknown[0], unknown[1] || 'bogus'], 1);
    return root;
  });

function setPath(root: Record<string, unknown>, path: readonly string[], v: unknown): void {
  let o = root;
  path.slice(0, -1).forEach((k) => {
    const next = o[k];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) o[k] = {};
    o = o[k] as Record<string, unknown>;
  });
  o[path.at(-1) as string] = v;
}

/** A password that cannot occur by chance elsewhere, with the characters that break naive redaction. */
const passwordArb = fc
  .tuple(
    fc.stringMatching(/^[A-Za-z0-9]{6,10}$/),
    fc.array(fc.constantFrom('@', ':', '/', '%40', '#', ' ', '\n', '\t', '?', 'é'), { maxLength: 2 }),
    fc.stringMatching(/^[A-Za-z0-9]{6,10}$/),
  )
  .map(([a, odd, b]) => `PW${a}${odd.join('')}${b}`);
const userArb = fc.constantFrom('u', 'user.name', 'u@x', 'u%40x', 'a-b');

/** Parts of a password that must not be shown: runs of 6+ characters without separators. */
function secretParts(password: string): string[] {
  return password.split(/[@:/#?\s%]|%40/).filter((p) => p.length >= 6);
}

// ---------------------------------------------------------------------------
// Properties

test(
  'fuzz config: random values at every schema key give a frozen config or LINKMUX_ERR_CONFIG naming a path',
  { timeout: testTimeout(400) },
  () => {
    fc.assert(
      fc.property(configObjectArb, (input) => {
        parseOrConfigError(() => parseConfig(input, SOURCE));
      }),
      fuzzParams(400),
    );
  },
);

test(
  'fuzz config: random top-level documents (any JSON) never give another error',
  { timeout: testTimeout(300) },
  () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (input) => {
        parseOrConfigError(() => parseConfig(input, SOURCE));
      }),
      fuzzParams(300),
    );
  },
);

test(
  'fuzz config: YAML text, valid, edited or random, gives a frozen config or LINKMUX_ERR_CONFIG',
  { timeout: testTimeout(400) },
  () => {
    const yamlChar = fc.constantFrom(...'ab: -[]{}#&*!|>\'"%@`,?\n\n  \t0.1'.split(''));
    const edit = fc.record({
      at: fc.nat(),
      del: fc.integer({ min: 0, max: 4 }),
      ins: fc.string({ unit: yamlChar, maxLength: 4 }),
    });
    const text = fc.oneof(
      configObjectArb.map((o) => stringify(o)),
      fc
        .tuple(
          configObjectArb.map((o) => stringify(o)),
          fc.array(edit, { minLength: 1, maxLength: 3 }),
        )
        .map(([s, es]) =>
          es.reduce((t, e) => {
            const at = e.at % (t.length + 1);
            return t.slice(0, at) + e.ins + t.slice(at + e.del);
          }, s),
        ),
      fc.string({ unit: yamlChar, maxLength: 80 }),
      fc.constantFrom(
        '&a [*a]',
        '!!js/function x',
        'a: &x 1\nb: *y',
        '? [a]\n: 1',
        '<<: {health: 1}',
        'health: !!binary x',
      ),
    );
    fc.assert(
      fc.property(text, (t) => {
        parseOrConfigError(() => parseConfigText(t, SOURCE));
      }),
      fuzzParams(400),
    );
  },
);

test(
  'fuzz config: no password reaches config show or an error message, wherever it stands',
  { timeout: testTimeout(400) },
  () => {
    fc.assert(
      fc.property(
        userArb,
        passwordArb,
        fc.constantFrom('auth', 'socks5', 'socks5h', 'health-http', 'health-https'),
        fc.constantFrom('', ':1080', ':0', ':x'),
        configObjectArb,
        (user, password, place, port, noise) => {
          const input: Record<string, unknown> = { ...(noise as object) };
          const enc = encodeURIComponent(password);
          if (place === 'auth') input.auth = { username: user, password };
          else if (place.startsWith('socks5'))
            input.links = [`${place}://${user}:${password}@10.1.2.3${port}#up`];
          else input.health = { targets: [`${place.slice(7)}://${user}:${enc}@probe.example${port}/`] };
          const secrets = [...secretParts(password), ...secretParts(enc)];
          parseOrConfigError(() => parseConfig(input, SOURCE), secrets);
          parseOrConfigError(() => parseConfigText(stringify(input), SOURCE), secrets);
        },
      ),
      fuzzParams(400),
    );
  },
);
