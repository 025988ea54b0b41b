import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_HEALTH_CONFIG, withHealthDefaults } from '../../src/health/config.js';
import type {
  HealthEvent,
  HealthInput,
  HealthThresholds,
  LinkState,
} from '../../src/health/state-machine.js';
import { LinkHealth, initialStatus, step } from '../../src/health/state-machine.js';
import { FakeClock } from '../../src/util/clock.js';

/** Short names for inputs, so a case reads as a line of text. */
const INPUT: Record<string, HealthInput> = {
  ok: { type: 'probe-ok', rttMs: 20 },
  slow: { type: 'probe-ok', rttMs: 800 },
  fail: { type: 'probe-failed', reason: 'timeout' },
  conn: { type: 'connect-failed', reason: 'ETIMEDOUT' },
};

const S: Record<string, LinkState> = { on: 'online', deg: 'degraded', off: 'offline' };

/** Runs "fail fail ok" from `initial`, returns the state after each input as "deg deg on". */
function run(
  inputs: string,
  thresholds: Partial<HealthThresholds> = {},
  initial: LinkState = 'online',
): string {
  const health = new LinkHealth('eth0', { clock: new FakeClock(), thresholds, initial });
  const short = Object.fromEntries(Object.entries(S).map(([k, v]) => [v, k]));
  return inputs
    .split(' ')
    .map((name) => {
      health.apply(INPUT[name]!);
      return short[health.state];
    })
    .join(' ');
}

test('state after each input (F = 3, R = 2, slow > 500 ms)', () => {
  const table: { name: string; inputs: string; want: string; initial?: LinkState }[] = [
    { name: 'healthy stays online', inputs: 'ok ok ok', want: 'on on on' },
    {
      name: 'three failures: degraded at once, offline at the third',
      inputs: 'fail fail fail',
      want: 'deg deg off',
    },
    { name: 'a lost probe then recovery', inputs: 'fail ok ok', want: 'deg deg on' },
    { name: 'failures must be consecutive', inputs: 'fail fail ok fail fail', want: 'deg deg deg deg deg' },
    {
      name: 'hysteresis: one success does not re-admit',
      inputs: 'fail fail fail ok ok',
      want: 'deg deg off off on',
    },
    {
      name: 'a failure restarts the rise count',
      inputs: 'fail fail fail ok fail ok ok',
      want: 'deg deg off off off off on',
    },
    {
      name: 'offline stays offline while failing',
      inputs: 'fail fail fail fail fail',
      want: 'deg deg off off off',
    },
    {
      name: 'back from offline but slow: degraded',
      inputs: 'fail fail fail ok slow',
      want: 'deg deg off off deg',
    },
    {
      name: 'then online after R fast',
      inputs: 'fail fail fail slow slow ok ok',
      want: 'deg deg off off deg deg on',
    },
    { name: 'slow probe degrades, R fast ones restore', inputs: 'slow ok ok', want: 'deg deg on' },
    { name: 'a slow probe restarts the count', inputs: 'slow ok slow ok ok', want: 'deg deg deg deg on' },
    {
      name: 'slow successes reset the failure count',
      inputs: 'fail fail slow fail fail',
      want: 'deg deg deg deg deg',
    },
    { name: 'connect failure degrades', inputs: 'conn ok ok', want: 'deg deg on' },
    {
      name: 'a passive signal restarts the rise count',
      inputs: 'conn ok conn ok ok',
      want: 'deg deg deg deg on',
    },
    {
      name: 'passive signals never take a link offline',
      inputs: 'conn conn conn conn conn',
      want: 'deg deg deg deg deg',
    },
    {
      name: 'but they do not reset the failure count',
      inputs: 'fail conn fail fail',
      want: 'deg deg deg off',
    },
    {
      name: 'passive signals are ignored while offline',
      inputs: 'fail fail fail ok conn ok',
      want: 'deg deg off off off on',
    },
    { name: 'starting offline needs R successes', inputs: 'ok ok', want: 'off on', initial: 'offline' },
    {
      name: 'starting degraded needs R fast ones',
      inputs: 'ok slow ok ok',
      want: 'deg deg deg on',
      initial: 'degraded',
    },
  ];
  for (const { name, inputs, want, initial } of table) assert.equal(run(inputs, {}, initial), want, name);
});

test('thresholds: custom counts, and values below 1 act as 1', () => {
  const table: { thresholds: Partial<HealthThresholds>; inputs: string; want: string }[] = [
    { thresholds: { failThreshold: 1 }, inputs: 'fail ok ok', want: 'off off on' },
    { thresholds: { riseThreshold: 1 }, inputs: 'fail fail fail ok', want: 'deg deg off on' },
    { thresholds: { failThreshold: 0, riseThreshold: 0 }, inputs: 'fail ok', want: 'off on' },
    { thresholds: { failThreshold: 5 }, inputs: 'fail fail fail fail fail', want: 'deg deg deg deg off' },
    { thresholds: { riseThreshold: 3 }, inputs: 'fail fail fail ok ok ok', want: 'deg deg off off off on' },
    { thresholds: { slowRttMs: 1_000 }, inputs: 'slow', want: 'on' },
    { thresholds: { slowRttMs: 10 }, inputs: 'ok', want: 'deg' },
  ];
  for (const { thresholds, inputs, want } of table) {
    assert.equal(run(inputs, thresholds), want, `${JSON.stringify(thresholds)}: ${inputs}`);
  }
});

test('events: typed, one per change, stamped by the injected clock, with reasons', () => {
  const clock = new FakeClock(5_000);
  const heard: HealthEvent[] = [];
  const health = new LinkHealth('wlan0', { clock, onEvent: (e) => heard.push(e) });
  const returned: HealthEvent[] = [];
  for (const name of [
    'ok',
    'fail',
    'fail',
    'fail',
    'fail',
    'ok',
    'ok',
    'ok',
    'slow',
    'ok',
    'ok',
    'conn',
    'conn',
  ]) {
    clock.advance(1_000);
    const e = health.apply(INPUT[name]!);
    if (e) returned.push(e);
  }
  assert.deepEqual(returned, heard, 'the listener hears exactly what apply returns');
  assert.deepEqual(
    heard.map(({ from, to, at }) => `${at} ${from}->${to}`),
    [
      '7000 online->degraded',
      '9000 degraded->offline',
      '12000 offline->online',
      '14000 online->degraded',
      '16000 degraded->online',
      '17000 online->degraded',
    ],
  );
  const reasons = heard.map((e) => e.reason);
  const want = [
    /^probe failed \(1 of 3 before offline\): timeout$/,
    /^3 consecutive probe failures \(last: timeout\)$/,
    /^2 consecutive probe successes$/,
    /^slow probe: RTT 800 ms > 500 ms$/,
    /^2 consecutive probes answered within 500 ms$/,
    /^connect failed: ETIMEDOUT$/,
  ];
  want.forEach((re, i) => assert.match(reasons[i]!, re));
  for (const e of heard) {
    assert.equal(e.type, 'state-changed');
    assert.equal(e.link, 'wlan0');
  }
});

test('status: counters, last observations and when the state began', () => {
  const clock = new FakeClock();
  const health = new LinkHealth('eth1', { clock });
  assert.deepEqual(health.status(), { ...initialStatus(), since: 0 });
  clock.advance(100);
  health.apply(INPUT.fail!);
  clock.advance(100);
  health.apply({ type: 'connect-failed', reason: 'no data for 10 s' });
  clock.advance(100);
  health.apply({ type: 'probe-ok', rttMs: 42 });
  assert.deepEqual(health.status(), {
    state: 'degraded',
    failStreak: 0,
    successStreak: 1,
    okStreak: 1,
    lastRttMs: 42,
    lastFailure: 'no data for 10 s',
    since: 100,
  });
});

test('step is pure: the input status is not changed', () => {
  const before = initialStatus('online');
  const frozen = Object.freeze({ ...before });
  const { status, change } = step(frozen, INPUT.fail!);
  assert.deepEqual(frozen, before);
  assert.equal(status.state, 'degraded');
  assert.equal(change?.to, 'degraded');
  assert.equal(step(status, INPUT.fail!).change, undefined, 'no change: no event');
});

test('defaults: 1 s interval, 3 failures to go offline, 2 successes to come back', () => {
  assert.equal(DEFAULT_HEALTH_CONFIG.failThreshold, 3);
  assert.equal(DEFAULT_HEALTH_CONFIG.riseThreshold, 2);
  assert.equal(DEFAULT_HEALTH_CONFIG.intervalMs, 1_000);
  assert.deepEqual(withHealthDefaults({ intervalMs: 500 }), { ...DEFAULT_HEALTH_CONFIG, intervalMs: 500 });
});
