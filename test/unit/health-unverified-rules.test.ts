// Pure pieces of "suspect the probe, not every link", as tables: the state
// machine's unverified transitions, the suspicion predicate, the passive
// verdict, failure kinds, dns:// targets and the default target list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialStatus, step } from '../../src/health/state-machine.js';
import type { HealthInput, HealthStatus, LinkState } from '../../src/health/state-machine.js';
import { targetsSuspect } from '../../src/health/suspicion.js';
import { connectFailureKind, passiveVerdict } from '../../src/health/passive-rule.js';
import { formatProbeTarget, parseProbeTarget } from '../../src/health/probe-target.js';
import { DEFAULT_HEALTH_CONFIG, defaultProbeTargets } from '../../src/health/config.js';
import { LinkmuxError } from '../../src/util/errors.js';

const fail = (suspect?: string): HealthInput => ({
  type: 'probe-failed',
  reason: 'timeout',
  ...(suspect ? { suspect } : {}),
});
const okFast: HealthInput = { type: 'probe-ok', rttMs: 20 };

/** Runs inputs from a status; returns the final state. */
function run(from: Partial<HealthStatus> & { state: LinkState }, inputs: HealthInput[]): LinkState {
  let s: HealthStatus = { ...initialStatus(from.state), ...from };
  for (const i of inputs) s = step(s, i).status;
  return s.state;
}

test('state machine: unverified in, unverified out', () => {
  const table: Array<[string, Partial<HealthStatus> & { state: LinkState }, HealthInput[], LinkState]> = [
    [
      'F suspect failures from online: unverified',
      { state: 'online' },
      [fail('s'), fail('s'), fail('s')],
      'unverified',
    ],
    ['F plain failures from online: offline', { state: 'online' }, [fail(), fail(), fail()], 'offline'],
    [
      'offline by probes, suspect failure: unverified',
      { state: 'offline', failStreak: 5 },
      [fail('s')],
      'unverified',
    ],
    [
      'offline by connects stays offline under suspicion',
      { state: 'offline', failStreak: 5, offlineByConnects: true },
      [fail('s')],
      'offline',
    ],
    [
      'unverified, plain failure (someone else reaches the targets): offline',
      { state: 'unverified', failStreak: 3 },
      [fail()],
      'offline',
    ],
    [
      'unverified, R fast successes: online',
      { state: 'unverified', failStreak: 3 },
      [okFast, okFast],
      'online',
    ],
    [
      'unverified, one success then plain failure: degraded',
      { state: 'unverified', failStreak: 3 },
      [okFast, fail()],
      'degraded',
    ],
    [
      'unverified, one success then suspect failure: unverified',
      { state: 'unverified', failStreak: 3 },
      [okFast, fail('s')],
      'unverified',
    ],
    [
      'unverified ignores a passive connect failure (the passive rule judges it)',
      { state: 'unverified', failStreak: 3 },
      [{ type: 'connect-failed', reason: 'x', kind: 'timeout' }],
      'unverified',
    ],
    [
      'connects-failing takes any state offline',
      { state: 'unverified' },
      [{ type: 'connects-failing', reason: 'r' }],
      'offline',
    ],
    [
      'offline by connects leaves by R probe successes',
      { state: 'offline', offlineByConnects: true },
      [okFast, okFast],
      'online',
    ],
    ['connect-ok changes nothing', { state: 'degraded' }, [{ type: 'connect-ok' }], 'degraded'],
  ];
  for (const [name, from, inputs, to] of table) assert.equal(run(from, inputs), to, name);
  // Leaving offline forgets why it was there.
  const back = step(
    { ...initialStatus('offline'), offlineByConnects: true, successStreak: 1, okStreak: 1 },
    okFast,
  );
  assert.equal(back.status.offlineByConnects, undefined);
  assert.equal(step(initialStatus('online'), { type: 'connects-failing', reason: 'r' }).change?.reason, 'r');
});

test('targetsSuspect: every link failing now and one at the threshold; never a lone link', () => {
  const v = (failStreak: number, probed = true) => ({ failStreak, probed });
  const table: Array<[string, Array<{ failStreak: number; probed: boolean }>, boolean]> = [
    ['all at the threshold', [v(3), v(3)], true],
    ['one at the threshold, the other failing too', [v(3), v(1)], true],
    ['one link succeeded last', [v(3), v(0)], false],
    ['nobody at the threshold yet', [v(2), v(2), v(1)], false],
    ['a link without a round yet holds it back', [v(3), v(0, false)], false],
    ['a lone link', [v(9)], false],
    ['no links', [], false],
  ];
  for (const [name, views, want] of table) assert.equal(targetsSuspect(views, 3), want, name);
});

test('passiveVerdict: N timeouts here while another link connected within the window', () => {
  const now = 100_000;
  const a = (streak: number) => ({ id: 'a', connectFailStreak: streak });
  const b = (okAt?: number) => ({
    id: 'b',
    connectFailStreak: 0,
    ...(okAt !== undefined ? { lastConnectOkAt: okAt } : {}),
  });
  const table: Array<[string, Parameters<typeof passiveVerdict>[0], boolean]> = [
    ['3 here, b connected 5 s ago', [a(3), b(now - 5_000)], true],
    ['2 here', [a(2), b(now - 5_000)], false],
    ['b never connected', [a(5), b()], false],
    ['b connected 31 s ago', [a(5), b(now - 31_000)], false],
    ["a's own old success is no witness", [{ ...a(3), lastConnectOkAt: now }], false],
  ];
  for (const [name, views, out] of table)
    assert.equal(passiveVerdict(views, 'a', now) !== undefined, out, name);
  assert.equal(
    passiveVerdict([a(3), b(now - 5_000)], 'a', now),
    '3 connects in a row timed out or found no route through this link while b connected 5 s ago',
  );
  assert.equal(passiveVerdict([a(3), b(now - 5_000)], 'zz', now), undefined, 'unknown link');
});

test('connectFailureKind: timeouts and unreachables blame the path, the rest does not count', () => {
  const sys = (code: string) => Object.assign(new Error(code), { code });
  const table: Array<[unknown, string]> = [
    [new LinkmuxError('LINKMUX_ERR_TIMEOUT', 't'), 'timeout'],
    [new LinkmuxError('LINKMUX_ERR_CONNECT', 'c', { cause: sys('ETIMEDOUT') }), 'timeout'],
    [new LinkmuxError('LINKMUX_ERR_CONNECT', 'c', { cause: sys('EHOSTUNREACH') }), 'unreachable'],
    [sys('ENETUNREACH'), 'unreachable'],
    [new LinkmuxError('LINKMUX_ERR_CONNECT', 'c', { cause: sys('ECONNRESET') }), 'other'],
    [new Error('x'), 'other'],
  ];
  for (const [err, kind] of table) assert.equal(connectFailureKind(err), kind, String(err));
});

test('dns:// targets: IP literals, port 53 by default, bracketed IPv6; malformed ones say the form', () => {
  const good: Array<[string, { host: string; port: number }, string]> = [
    ['dns://192.168.1.1', { host: '192.168.1.1', port: 53 }, 'dns://192.168.1.1'],
    ['dns://9.9.9.9:5353', { host: '9.9.9.9', port: 5353 }, 'dns://9.9.9.9:5353'],
    ['DNS://9.9.9.9:53/', { host: '9.9.9.9', port: 53 }, 'dns://9.9.9.9'],
    ['dns://[2001:db8::53]', { host: '2001:db8::53', port: 53 }, 'dns://[2001:db8::53]'],
    [' dns://[::1]:54 ', { host: '::1', port: 54 }, 'dns://[::1]:54'],
  ];
  for (const [text, want, shown] of good) {
    const r = parseProbeTarget(text);
    assert.deepEqual(r, { ok: true, target: { kind: 'dns', ...want } }, text);
    if (r.ok) assert.equal(formatProbeTarget(r.target), shown);
  }
  const form = /expected dns:\/\/IP\[:PORT\] with an IP address \(e\.g\. dns:\/\/192\.168\.1\.1/;
  const bad: Array<[string, RegExp]> = [
    ['dns://resolver.example', form],
    ['dns://2001:db8::53', form],
    ['dns://[192.168.1.1]', form],
    ['dns://[2001:db8::zz]', form],
    ['dns://999.1.1.1', form],
    ['dns://', form],
    ['dns://1.1.1.1:', form],
    ['dns://1.1.1.1:0', /port 0 is out of range 1-65535/],
    ['dns://1.1.1.1:70000', /port 70000 is out of range/],
    ['udp://1.1.1.1:53', /expected tcp:\/\/HOST:PORT .*dns:\/\/IP\[:PORT\].*got "udp:\/\/1\.1\.1\.1:53"/],
  ];
  for (const [text, re] of bad) {
    const r = parseProbeTarget(text);
    assert.ok(!r.ok, `${text} must not parse`);
    if (!r.ok) assert.match(r.message, re, text);
  }
});

test('defaultProbeTargets: four operators, then public nameservers only, deduplicated', () => {
  const publicHosts = [
    'tcp://1.1.1.1:443',
    'tcp://8.8.8.8:443',
    'tcp://9.9.9.9:443',
    'tcp://208.67.222.222:443',
  ];
  assert.deepEqual(defaultProbeTargets([]).map(formatProbeTarget), publicHosts);
  assert.deepEqual(DEFAULT_HEALTH_CONFIG.targets.map(formatProbeTarget), publicHosts);
  assert.deepEqual(
    defaultProbeTargets([
      '80.58.61.250',
      '127.0.0.53', // a local stub: this machine answering proves nothing
      '192.168.1.1', // the home router answers from its cache with its WAN dead
      '10.0.0.2',
      '172.16.0.1',
      '100.64.0.1',
      '169.254.1.1',
      'fe80::1%eth0',
      'fd00::53',
      '::1',
      '::ffff:10.0.0.1',
      '80.58.61.250',
      'not an address',
      ' 2001:4860:4860::8844 ',
    ]).map(formatProbeTarget),
    [...publicHosts, 'dns://80.58.61.250', 'dns://[2001:4860:4860::8844]'],
  );
  const a = defaultProbeTargets([]);
  (a[0] as { port: number }).port = 1;
  assert.equal(
    defaultProbeTargets([])[0]?.kind === 'tcp' && (defaultProbeTargets([])[0] as { port: number }).port,
    443,
    'fresh objects each call',
  );
});
