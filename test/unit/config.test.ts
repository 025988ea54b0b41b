// The daemon's config schema: defaults, every class of error with the key's
// path (and line, from files), unknown keys with suggestions, YAML syntax
// errors. The loader around it (files, flags, redaction, example, freezing):
// config-load.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, parseConfigText } from '../../src/config/load.js';
import { toRuntime } from '../../src/config/runtime.js';
import { parseSeconds } from '../../src/config/fields.js';
import { DEFAULT_HEALTH_CONFIG } from '../../src/health/config.js';
import { DEFAULTS, configError, yamlError } from '../helpers/config-fixtures.js';

test('an empty config, {} and an empty file all give the defaults', () => {
  assert.deepEqual(parseConfig({}, 'x'), DEFAULTS);
  assert.deepEqual(parseConfig(null, 'x'), DEFAULTS);
  assert.deepEqual(parseConfigText('', 'empty.yaml'), DEFAULTS);
  assert.deepEqual(parseConfigText('# only a comment\n', 'c.yaml'), DEFAULTS);
});

test('toRuntime: milliseconds, parsed addresses and the health monitor defaults', () => {
  const rt = toRuntime(parseConfig({}, 'x'));
  assert.deepEqual(rt.health, { ...DEFAULT_HEALTH_CONFIG, targets: [...DEFAULT_HEALTH_CONFIG.targets] });
  assert.equal(rt.healthTargetsSet, false, 'unset targets: the daemon adds the system nameservers at start');
  assert.deepEqual(rt.listen, {
    socks: { kind: 'tcp', host: '127.0.0.1', port: 1080 },
    http: { kind: 'tcp', host: '127.0.0.1', port: 8080 },
    control: { kind: 'tcp', host: '127.0.0.1', port: 9190 },
  });
  assert.equal(rt.connectTimeoutMs, 10_000);
  assert.equal(rt.drainTimeoutMs, 10_000);
  assert.deepEqual(rt.failover, { attempts: 3, staggerMs: 2_000 });
  assert.deepEqual(rt.policyOptions, { ttlMs: 600_000, fallback: 'adaptive' });
  assert.equal(rt.auth, undefined);

  const custom = toRuntime(
    parseConfig(
      {
        listen: { socks: '[::1]:1081', http: false, control: '/run/linkmux.sock' },
        auth: { username: 'u', password: 'p' },
        health: {
          interval: '250ms',
          timeout: 0.1,
          targets: ['http://127.0.0.1:8000/ping', 'tcp://[::1]:22'],
        },
        rules: [{ match: { domain: '.Bank.Example', port: '8000-8999' }, action: 'link:eth0' }],
      },
      'x',
    ),
  );
  assert.deepEqual(custom.listen, {
    socks: { kind: 'tcp', host: '::1', port: 1081 },
    http: undefined,
    control: { kind: 'unix', path: '/run/linkmux.sock' },
  });
  assert.equal(custom.health.intervalMs, 250);
  assert.equal(custom.healthTargetsSet, true);
  const none = toRuntime(parseConfig({ health: { targets: [] } }, 'x'));
  assert.deepEqual([none.health.targets, none.healthTargetsSet], [[], true], '[] stays [] (passive only)');
  assert.equal(custom.health.timeoutMs, 100);
  assert.deepEqual(custom.health.targets, [
    { kind: 'http', url: 'http://127.0.0.1:8000/ping' },
    { kind: 'tcp', host: '::1', port: 22 },
  ]);
  assert.deepEqual(custom.rules, [
    { match: { domain: '.bank.example', port: '8000-8999' }, action: 'link:eth0' },
  ]);
  assert.deepEqual(custom.auth, { username: 'u', password: 'p' });
});

test('durations: seconds, or text with a unit', () => {
  const table: Array<[unknown, number | undefined]> = [
    [1.5, 1.5],
    ['1.5', 1.5],
    ['500ms', 0.5],
    ['2s', 2],
    ['2 m', 120],
    ['1h', 3600],
    ['.25', 0.25],
    ['fast', undefined],
    ['-1', undefined],
    [true, undefined],
    [Infinity, undefined],
  ];
  for (const [input, want] of table) assert.equal(parseSeconds(input), want, String(input));
  assert.equal(parseConfig({ health: { interval: '1500ms' } }, 'x').health.interval, 1.5);
});

test('listen addresses: disabled, bare port, IPv6 normalised', () => {
  const c = parseConfig({ listen: { socks: false, http: '', control: 9191 } }, 'x');
  assert.deepEqual(c.listen, { socks: false, http: false, control: '127.0.0.1:9191', allowOpen: false });
  assert.equal(parseConfigText('listen:\n  socks:\n', 'x').listen.socks, false, 'an empty value disables');
  assert.equal(parseConfig({ listen: { socks: '[::1]:1080' } }, 'x').listen.socks, '[::1]:1080');
  assert.equal(
    parseConfig({ listen: { socks: 'localhost:0', http: 'localhost:0' } }, 'x').listen.socks,
    'localhost:0',
  );
});

test('wrong types name the path, the expectation and the value given', () => {
  const cases: Array<[string, RegExp]> = [
    [
      'health:\n  interval: fast\n',
      /^config\.yaml: health\.interval: expected a number of seconds .*, got "fast" \(line 2\)$/,
    ],
    [
      'connectTimeout: 0\n',
      /^config\.yaml: connectTimeout: must be from 0\.1 to 300 seconds, got 0 \(line 1\)$/,
    ],
    ['health:\n  failThreshold: 1.5\n', /health\.failThreshold: expected a whole number, got 1\.5/],
    ['health:\n  riseThreshold: 0\n', /health\.riseThreshold: must be at least 1, got 0/],
    ['failover:\n  attempts: 99\n', /failover\.attempts: must be at most 16, got 99/],
    ['privateDirect: "yes"\n', /privateDirect: expected true or false, got "yes"/],
    ['links: eth0\n', /links: expected a list, got "eth0"/],
    ['links: [eth0, ""]\n', /links\[1\]: must not be empty/],
    ['links: [eth0, eth0]\n', /links\[1\]: "eth0" is listed twice/],
    ['health: 3\n', /health: expected a mapping \(key: value lines\), got 3/],
    [
      'policy: round_robin\n',
      /policy: expected one of adaptive, round-robin, .*, got "round_robin" \(did you mean "round-robin"\?\)/,
    ],
    ['log: verbose\n', /log: expected one of debug, info, warn, error, got "verbose"/],
    ['bind: devcie\n', /bind: .*\(did you mean "device"\?\)/],
    [
      'sticky:\n  fallback: sticky\n',
      /sticky\.fallback: expected one of adaptive, round-robin, weighted, least-connections, hash, got "sticky"/,
    ],
    ['weights:\n  eth0: -1\n', /weights\.eth0: must be more than 0, got -1/],
    ['links: [eth0]\nweights:\n  wlan0: 2\n', /weights\.wlan0: "wlan0" is not a link id \(eth0\)/],
    [
      'health:\n  targets: [udp://1.1.1.1:53]\n',
      /health\.targets\[0\]: expected tcp:\/\/HOST:PORT .*, got "udp:\/\/1\.1\.1\.1:53"/,
    ],
    ['health:\n  targets: ["tcp://1.1.1.1:99999"]\n', /health\.targets\[0\]: port 99999 is out of range/],
    ['listen:\n  socks: "1080:localhost"\n', /listen\.socks: expected HOST:PORT .*, got "1080:localhost"/],
    ['listen:\n  http: /tmp/x.sock\n', /listen\.http: expected HOST:PORT/],
    ['- a\n- b\n', /^config\.yaml: expected a mapping \(key: value lines\) at the top level, got a list/],
    ['"just text"\n', /at the top level, got "just text"/],
  ];
  for (const [text, want] of cases) assert.match(yamlError(text), want, text);
});

test('unknown keys are rejected with a suggestion or the valid keys', () => {
  assert.equal(
    yamlError('helth:\n  interval: 2\n'),
    'config.yaml: unknown key "helth" at the top level (did you mean "health"?) (line 1)',
  );
  assert.match(
    yamlError('health:\n  intervl: 2\n'),
    /^config\.yaml: health: unknown key "intervl" \(did you mean "interval"\?\) \(line 2\)$/,
  );
  assert.match(yamlError('health:\n  fail_threshold: 2\n'), /did you mean "failThreshold"/);
  assert.match(
    yamlError('listen:\n  nonsense: 1\n'),
    /listen: unknown key "nonsense" \(valid keys: socks, http, control, allowOpen\)/,
  );
  assert.match(
    yamlError('rules:\n  - match: { host: a.example }\n    action: direct\n'),
    /rules\[0\]\.match: unknown key "host"/,
  );
  assert.match(
    configError(() => parseConfig({ weird: 1 }, 'flags')),
    /^flags: unknown key "weird" at the top level \(valid keys: listen, auth,/,
  );
});

test('rules: each part is checked where it stands', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ match: { domain: 'a b' }, action: 'direct' }, /rules\[0\]\.match\.domain: expected a domain name/],
    [
      { match: { cidr: '10/8' }, action: 'direct' },
      /rules\[0\]\.match\.cidr: expected a network like 10\.0\.0\.0\/8/,
    ],
    [{ match: { cidr: '10.0.0.0/33' }, action: 'direct' }, /rules\[0\]\.match\.cidr/],
    [
      { match: { port: 70000 }, action: 'direct' },
      /rules\[0\]\.match\.port: expected a port \(1-65535\) or a range/,
    ],
    [{ match: { port: '9-1' }, action: 'direct' }, /rules\[0\]\.match\.port/],
    [{ match: {}, action: 'direct' }, /rules\[0\]\.match: give at least one of domain, cidr, port/],
    [
      { match: { port: 443 }, action: 'proxy' },
      /rules\[0\]\.action: expected direct, deny, link:<link id> or policy:<policy name>, got "proxy"/,
    ],
    [{ match: { port: 443 }, action: 'policy:fastest' }, /rules\[0\]\.action: unknown policy "fastest"/],
    [{ action: 'deny' }, /rules\[0\]\.match: is missing \(required\)/],
  ];
  for (const [rule, want] of cases) {
    assert.match(
      configError(() => parseConfig({ rules: [rule] }, 'x')),
      want,
      JSON.stringify(rule),
    );
  }
  const ok = parseConfig(
    {
      rules: [
        { match: { domain: '.bank.example' }, action: 'link:eth0' },
        { match: { cidr: '10.0.0.0/8', port: 443 }, action: 'direct' },
        { match: { cidr: '2001:db8::1' }, action: 'deny' },
        { match: { port: '8000 - 8999' }, action: 'policy:sticky' },
      ],
    },
    'x',
  );
  assert.deepEqual(
    ok.rules.map((r) => [r.match, r.action]),
    [
      [{ domain: '.bank.example' }, 'link:eth0'],
      [{ cidr: '10.0.0.0/8', port: 443 }, 'direct'],
      [{ cidr: '2001:db8::1' }, 'deny'],
      [{ port: '8000-8999' }, 'policy:sticky'],
    ],
  );
});

test('listeners beyond loopback need auth (front ends) or allowOpen; ports are not shared', () => {
  assert.match(
    yamlError('listen:\n  socks: 0.0.0.0:1080\n'),
    /^config\.yaml: listen\.socks: 0\.0\.0\.0:1080 is reachable from other machines and no auth is set.*set auth\.username and auth\.password, or listen\.allowOpen: true/,
  );
  assert.match(yamlError('listen:\n  http: "[::]:8080"\n'), /listen\.http: \[::\]:8080 is reachable/);
  assert.match(yamlError('listen:\n  http: proxy.lan:8080\n'), /listen\.http: proxy\.lan:8080 is reachable/);
  const auth = { username: 'u', password: 'p' };
  assert.equal(parseConfig({ listen: { socks: '0.0.0.0:1080' }, auth }, 'x').listen.socks, '0.0.0.0:1080');
  assert.equal(
    parseConfig({ listen: { socks: '0.0.0.0:1080', allowOpen: true } }, 'x').listen.socks,
    '0.0.0.0:1080',
  );
  assert.match(
    configError(() => parseConfig({ listen: { control: '0.0.0.0:9190' }, auth }, 'x')),
    /listen\.control: 0\.0\.0\.0:9190 is reachable from other machines and the control API has no authentication/,
  );
  assert.equal(parseConfig({ listen: { control: '/run/l.sock' } }, 'x').listen.control, '/run/l.sock');
  assert.match(
    configError(() => parseConfig({ listen: { http: '127.0.0.1:1080' } }, 'x')),
    /listen\.http: 127\.0\.0\.1:1080 is already used by listen\.socks/,
  );
});

test('credentials are never quoted in messages', () => {
  const secret = 'hunter2-is-my-password';
  const long = 'x'.repeat(256);
  for (const auth of [
    { username: 'u', password: long },
    { username: 'u', password: 42 },
    { password: secret },
  ]) {
    const msg = configError(() => parseConfig({ auth }, 'x'));
    assert.ok(!msg.includes(secret) && !msg.includes(long) && !msg.includes('42'), msg);
    assert.match(msg, /auth\.(password|username)/);
  }
  assert.match(
    configError(() => parseConfig({ auth: { username: 'u', password: 'é'.repeat(128) } }, 'x')),
    /at most 255 bytes/,
  );
});

test('several problems are reported together, in file order', () => {
  const msg = yamlError('log: loud\nhealth:\n  interval: fast\n  timeout: 0\nhelth: 1\n');
  assert.equal(
    msg,
    [
      'config.yaml: 4 problems:',
      '  - log: expected one of debug, info, warn, error, got "loud" (line 1)',
      '  - health.interval: expected a number of seconds (e.g. 1.5) or a duration like "500ms" or "2m", got "fast" (line 3)',
      '  - health.timeout: must be from 0.01 to 60 seconds, got 0 (line 4)',
      '  - unknown key "helth" at the top level (did you mean "health"?) (line 5)',
    ].join('\n'),
  );
});

test('YAML syntax errors carry line and column', () => {
  assert.match(
    yamlError('health:\n  targets: [tcp://1.1.1.1:443\nlog: info\n'),
    /^config\.yaml:3:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a \]$/,
  );
  assert.match(
    yamlError('log: info\nlog: debug\n'),
    /^config\.yaml:2:1: invalid YAML: Map keys must be unique$/,
  );
  assert.match(yamlError('health:\n\tinterval: 1\n'), /^config\.yaml:2:1: invalid YAML: /);
});

test('limits.relayHold: seconds or a duration, 0 to 1 s, in ms at run time; out of range names the key', () => {
  assert.equal(toRuntime(parseConfig({}, 'x')).limits.relayHoldMs, 100);
  assert.equal(toRuntime(parseConfig({ limits: { relayHold: '20ms' } }, 'x')).limits.relayHoldMs, 20);
  assert.equal(toRuntime(parseConfig({ limits: { relayHold: 0 } }, 'x')).limits.relayHoldMs, 0);
  assert.throws(
    () => parseConfig({ limits: { relayHold: 5 } }, 'x'),
    (err: Error) => /limits\.relayHold/.test(err.message) && /0 to 1 seconds/.test(err.message),
  );
});
