// The config loader around the schema: files, flag merging, re-parsing, redaction, the example file and freezing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  findConfigFile,
  loadConfig,
  loadConfigFile,
  mergeFlags,
  parseConfig,
  parseConfigText,
  redactConfig,
} from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { EXAMPLE_CONFIG } from '../../src/config/example.js';
import { formatPath, suggest } from '../../src/config/issues.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { encodeJoinToken } from '../../src/links/join-token.js';
import { DEFAULTS, flagError } from '../helpers/config-fixtures.js';

test('files: missing, a directory, found by default, line numbers', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'linkmux-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const missing = path.join(dir, 'nope.yaml');
  await assert.rejects(
    loadConfigFile(missing),
    (e) =>
      isLinkmuxError(e, 'LINKMUX_ERR_CONFIG') &&
      e.message ===
        `config file ${missing} not found: create one with \`linkmux config init ${missing}\`, or leave out -c to use the defaults`,
  );
  await mkdir(path.join(dir, 'sub.yaml'));
  await assert.rejects(loadConfigFile(path.join(dir, 'sub.yaml')), /is a directory/);

  assert.equal(findConfigFile(undefined, dir), undefined);
  assert.deepEqual(await loadConfig({ cwd: dir }), { config: DEFAULTS, source: 'defaults' });
  const file = path.join(dir, 'linkmux.yaml');
  await writeFile(file, 'policy: round-robin\nhealth:\n  interval: 2s\n  bogus: 1\n');
  assert.equal(findConfigFile(undefined, dir), file);
  assert.equal(findConfigFile('other.yaml', dir), 'other.yaml');
  await assert.rejects(
    loadConfig({ cwd: dir }),
    (e) =>
      isLinkmuxError(e, 'LINKMUX_ERR_CONFIG') &&
      e.message ===
        `${file}: health: unknown key "bogus" (valid keys: interval, timeout, failThreshold, riseThreshold, slowRtt, targets) (line 4)`,
  );
  await writeFile(file, 'policy: round-robin\nhealth:\n  interval: 2s\n');
  const { config, source } = await loadConfig({ cwd: dir });
  assert.equal(source, file);
  assert.equal(config.policy, 'round-robin');
  assert.equal(config.health.interval, 2);
});

test('mergeFlags lays flags over the config and validates the result', () => {
  const base = parseConfigText('links: [eth0, wlan0]\nhealth:\n  interval: 2\n', 'config.yaml');
  const merged = mergeFlags(base, {
    links: ['eth1'],
    policy: 'round-robin',
    health: { timeout: '200ms', interval: undefined },
    listen: { socks: '127.0.0.1:1999' },
  });
  assert.deepEqual(merged.links, ['eth1'], 'lists replace');
  assert.equal(merged.policy, 'round-robin');
  assert.equal(merged.health.interval, 2, 'undefined leaves the file value');
  assert.equal(merged.health.timeout, 0.2);
  assert.equal(merged.listen.socks, '127.0.0.1:1999');
  assert.equal(merged.listen.http, '127.0.0.1:8080', 'sibling keys kept');
  assert.deepEqual(base.links, ['eth0', 'wlan0'], 'the original is untouched');
  assert.ok(Object.isFrozen(merged) && Object.isFrozen(merged.health));

  assert.equal(
    flagError(() => mergeFlags(base, { connectTimeout: 'soon' })),
    'command line: connectTimeout: expected a number of seconds (e.g. 1.5) or a duration like "500ms" or "2m", got "soon"',
  );
  assert.match(
    flagError(() => mergeFlags(base, { listen: { socks: '0.0.0.0:1080' } })),
    /command line: listen\.socks: .*no auth is set/,
  );
  assert.match(
    flagError(() => mergeFlags(base, { weights: { eth9: 1 } } as never, '--weight')),
    /^--weight: weights\.eth9: "eth9" is not a link id/,
  );
});

test('a parsed config parses again to itself (flags are merged that way)', () => {
  const c = parseConfig(
    {
      listen: { socks: 1081, http: false, control: '[::1]:9190' },
      auth: { username: 'u', password: 'p' },
      health: { interval: '1500ms', targets: ['http://127.0.0.1/'] },
      rules: [{ match: { domain: '.A.example', port: '80-90' }, action: 'direct' }],
      sticky: { ttl: '10m' },
    },
    'x',
  );
  assert.deepEqual(parseConfig(structuredClone(c), 'again'), c);
  assert.deepEqual(mergeFlags(c, {}), c);
});

test('redactConfig hides the password and credentials in probe URLs, and nothing else', () => {
  const c = parseConfig(
    {
      auth: { username: 'alice', password: 's3cret' },
      health: { targets: ['https://bob:pw@status.example/ping', 'tcp://127.0.0.1:1'] },
    },
    'x',
  );
  const r = redactConfig(c);
  assert.deepEqual(r.auth, { username: 'alice', password: '***' });
  assert.deepEqual(r.health.targets, ['https://***@status.example/ping', 'tcp://127.0.0.1:1']);
  assert.ok(!JSON.stringify(r).includes('s3cret') && !JSON.stringify(r).includes(':pw@'));
  assert.equal(c.auth?.password, 's3cret', 'the config itself keeps the password');
  const token = encodeJoinToken({
    name: 'pc',
    host: '198.18.100.2',
    port: 7300,
    fingerprint: 'ab'.repeat(32),
    secret: 'S'.repeat(42) + 'A',
    links: [],
  });
  const remote = redactConfig(
    parseConfig({ links: ['socks5://u:hunter2@10.0.0.1:1080', 'eth0'], join: [token] }, 'x'),
  );
  assert.deepEqual(remote.links, ['socks5://u:***@10.0.0.1:1080', 'eth0']);
  assert.deepEqual(remote.join, ['lmx1_***']);
  assert.ok(!JSON.stringify(remote).includes('hunter2') && !JSON.stringify(remote).includes(token));
  assert.ok(Object.isFrozen(r));
  assert.deepEqual({ ...redactConfig(parseConfig({}, 'x')) }, DEFAULTS, 'no auth: nothing to redact');
});

test('regression: config show redacts a SOCKS5 link whose user or password holds "@"', () => {
  // Found by fuzz-config: the redaction stopped at the first "@", so "u@x:pw@host"
  // was shown whole and "u:p@ss@host" showed the password's tail.
  const r = redactConfig(
    parseConfig(
      { links: ['socks5://u@x:Hunter2pw@10.0.0.1:1080', 'socks5h://u:pre@Hunter3tail@10.0.0.2:1080'] },
      'x',
    ),
  );
  assert.deepEqual(r.links, ['socks5://u@x:***@10.0.0.1:1080', 'socks5h://u:***@10.0.0.2:1080']);
});

test('the example written by `config init` parses to exactly the defaults and shows every key', () => {
  assert.deepEqual(parseConfigText(EXAMPLE_CONFIG, 'linkmux.yaml'), DEFAULTS);
  assert.deepEqual(parseYaml(EXAMPLE_CONFIG), DEFAULTS, 'every default is written out, not left implicit');
  // The commented-out optional sections parse too, once uncommented.
  const uncommented = EXAMPLE_CONFIG.replace('# auth:', 'auth:')
    .replace('rules: []', 'rules:')
    .replace(/^#(?= {3}username:| {3}password:| {2}- match:| {4}action:)/gm, '');
  const parsed = parseConfigText(uncommented, 'uncommented.yaml');
  assert.equal(parsed.auth?.username, 'me');
  assert.equal(parsed.rules.length, 2);
});

test('the parsed config is deeply frozen', () => {
  const c = parseConfig({ rules: [{ match: { port: 1 }, action: 'deny' }] }, 'x');
  for (const part of [
    c,
    c.listen,
    c.health,
    c.health.targets,
    c.rules,
    c.rules[0],
    c.rules[0]?.match,
    c.weights,
  ]) {
    assert.ok(Object.isFrozen(part));
  }
  assert.throws(() => {
    (c as { log: string }).log = 'debug';
  }, TypeError);
  assert.throws(() => {
    (c.health.targets as string[]).push('tcp://x:1');
  }, TypeError);
});

test('helpers: paths as written in YAML, suggestions only when close', () => {
  assert.equal(formatPath(['rules', 0, 'match', 'cidr']), 'rules[0].match.cidr');
  assert.equal(formatPath(['weights', 'my link']), 'weights["my link"]');
  assert.equal(suggest('helth', ['health', 'log']), 'health');
  assert.equal(suggest('fail-threshold', ['failThreshold']), 'failThreshold');
  assert.equal(suggest('zzz', ['health', 'log']), undefined);
});

// Compile-time check: tsc fails if Config ever stops being deeply read-only.
export function _readonlyCheck(c: Config): void {
  // @ts-expect-error Config is deeply readonly
  c.health.interval = 5;
}
