// HealthMonitor with a scripted prober, a FakeClock and FakeTimers: no sockets,
// no waiting. Each scenario drives fake time and checks states, events, the
// schedule of probe rounds and the 2.5 s detection bound of the defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, B, FakeLink, OK, SILENT, scriptedProber } from '../helpers/health-fakes.js';
import { HealthMonitor, detectionBoundMs } from '../../src/health/monitor.js';
import type { HealthMonitorOptions } from '../../src/health/monitor.js';
import { DEFAULT_HEALTH_CONFIG, withHealthDefaults } from '../../src/health/config.js';
import type { HealthConfig } from '../../src/health/config.js';
import type { ProbeOutcome } from '../../src/health/prober.js';
import { probeRound } from '../../src/health/prober.js';
import type { StateChangedEvent } from '../../src/health/state-machine.js';
import { FakeTimers, systemTimers } from '../../src/health/timers.js';
import { FakeClock, systemClock } from '../../src/util/clock.js';
import { createLogger } from '../../src/util/logger.js';

type SetupOptions = Omit<Partial<HealthMonitorOptions>, 'links' | 'config'> & {
  links?: string[];
  config?: Partial<HealthConfig>;
};

function setup(opts: SetupOptions = {}) {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const script = scriptedProber(timers, clock);
  const links = (opts.links ?? ['up1']).map((id) => new FakeLink(id));
  const events: StateChangedEvent[] = [];
  const logs: string[] = [];
  const { config, links: _ids, ...rest } = opts;
  const monitor = new HealthMonitor({
    links,
    config: withHealthDefaults({ targets: [A], ...config }),
    clock,
    timers,
    probe: script.prober,
    logger: createLogger('debug', (l) => logs.push(l)),
    onEvent: (e) => events.push(e),
    ...rest,
  });
  return { clock, timers, script, links, events, logs, monitor };
}

test('the default config detects a blackhole within 2.5 s (1 s interval, 500 ms timeout, 3 failures)', () => {
  assert.equal(DEFAULT_HEALTH_CONFIG.intervalMs, 1_000);
  assert.equal(DEFAULT_HEALTH_CONFIG.timeoutMs, 500);
  assert.equal(detectionBoundMs(DEFAULT_HEALTH_CONFIG), 2_500);
  assert.equal(detectionBoundMs({ intervalMs: 1_000, timeoutMs: 1_000, failThreshold: 3 }), 4_000);
  assert.equal(detectionBoundMs({ intervalMs: 500, timeoutMs: 2_000, failThreshold: 2 }), 6_000);
});

test('offline after 3 failed rounds, re-probed at once, 2.479 s after the worst-case break', async () => {
  const { clock, timers, script, events, logs, monitor } = setup();
  monitor.start();
  await timers.advance(3_020); // rounds at 0, 1000, 2000, 3000 answered after 20 ms
  assert.equal(monitor.state('up1'), 'online');
  assert.deepEqual(
    script.starts.map((s) => s.at),
    [0, 1_000, 2_000, 3_000],
  );
  assert.equal(monitor.status('up1').lastRttMs, 20);

  const brokeAt = clock.now() + 1; // just after a success: the worst case
  await timers.advance(1);
  script.set('up1', SILENT);
  const offlineAt = await timers.advanceUntil(() => monitor.state('up1') === 'offline', 10_000);
  // Rounds at 4000, 4500 and 5000 each time out after 500 ms; no waiting between them.
  assert.deepEqual(
    script.starts.slice(4).map((s) => s.at),
    [4_000, 4_500, 5_000],
  );
  assert.equal(offlineAt, 5_500);
  assert.ok(offlineAt - brokeAt <= detectionBoundMs(DEFAULT_HEALTH_CONFIG));
  assert.deepEqual(
    events.map((e) => [e.to, e.at]),
    [
      ['degraded', 4_500],
      ['offline', 5_500],
    ],
  );
  assert.ok(
    logs.includes('linkmux: warn: link up1 offline: 3 consecutive probe failures (last: timeout)\n'),
    logs.join(''),
  );
  assert.deepEqual(monitor.status('up1').lastFailure, { reason: 'timeout', at: 5_500 });

  // Once offline the state has settled: back to one round per interval.
  await timers.advance(2_000);
  assert.deepEqual(
    script.starts.slice(7).map((s) => s.at),
    [6_000, 7_000],
  );
  monitor.stop();
});

test('the 2.5 s bound holds wherever in the interval the link breaks', async () => {
  for (let offset = 0; offset < 1_000; offset += 37) {
    const { clock, timers, script, monitor } = setup();
    monitor.start();
    await timers.advance(2_000 + offset);
    const brokeAt = clock.now();
    script.set('up1', SILENT);
    const offlineAt = await timers.advanceUntil(() => monitor.state('up1') === 'offline', 10_000);
    const took = offlineAt - brokeAt;
    assert.ok(took <= 2_500, `break at +${offset} ms: offline after ${took} ms`);
    monitor.stop();
    assert.equal(timers.pending, 0);
  }
});

test('instant failures are re-probed one timeout apart, not in a burst', async () => {
  const { timers, script, monitor } = setup();
  script.set('up1', { answer: 'fail', ms: 1, reason: 'refused' });
  monitor.start();
  const offlineAt = await timers.advanceUntil(() => monitor.state('up1') === 'offline', 5_000);
  assert.deepEqual(
    script.starts.map((s) => s.at),
    [0, 500, 1_000],
  );
  assert.equal(offlineAt, 1_001);
  monitor.stop();
});

test('re-admitted after riseThreshold successes, one interval apart', async () => {
  const { timers, script, events, monitor } = setup();
  script.set('up1', SILENT);
  monitor.start();
  await timers.advanceUntil(() => monitor.state('up1') === 'offline', 5_000); // at 1500
  script.set('up1', OK);
  await timers.advance(500 + 20); // round at 2000 (1000 after the last one started) answers
  assert.equal(monitor.state('up1'), 'offline', 'one success is not enough');
  assert.equal(monitor.status('up1').successStreak, 1);
  await timers.advance(1_000); // round at 3000
  assert.equal(monitor.state('up1'), 'online');
  const last = events.at(-1);
  assert.equal(last?.to, 'online');
  assert.equal(last?.at, 3_020);
  assert.equal(last?.reason, '2 consecutive probe successes');
  monitor.stop();
});

test('a round succeeds when any target answers; all failing combines the reasons', async () => {
  const { timers, script, events, monitor } = setup({ config: { targets: [A, B] } });
  script.set('up1', SILENT, A);
  script.set('up1', { answer: 'ok', ms: 30 }, B);
  monitor.start();
  await timers.advance(4_950); // between rounds: the one at 4000 is over
  assert.equal(monitor.state('up1'), 'online');
  assert.deepEqual(events, []);
  assert.equal(monitor.status('up1').lastRttMs, 30);
  assert.equal(script.inFlight(), 0, 'the silent target is aborted when the other answers');

  script.set('up1', { answer: 'fail', ms: 5, reason: 'refused' }, B);
  await timers.advanceUntil(() => monitor.state('up1') === 'offline', 5_000);
  assert.equal(
    monitor.status('up1').lastFailure?.reason,
    'tcp://127.0.0.1:1 timeout; tcp://127.0.0.1:2 refused',
  );
  monitor.stop();
});

test('probeRound settles at its deadline even if the prober never does', async () => {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const link = new FakeLink('up1');
  const result = probeRound(link, [A], {
    prober: () => new Promise<ProbeOutcome>(() => {}),
    clock,
    timers,
    timeoutMs: 500,
  });
  await timers.advance(500);
  assert.deepEqual(await result, { ok: false, reason: 'timeout' });
  assert.deepEqual(
    await probeRound(link, [], { prober: () => Promise.resolve({ ok: true }), clock, timers, timeoutMs: 1 }),
    {
      ok: false,
      reason: 'no probe targets',
    },
  );
  const thrown = await probeRound(link, [A], {
    prober: () => {
      throw new Error('boom');
    },
    clock,
    timers,
    timeoutMs: 500,
  });
  assert.deepEqual(thrown, { ok: false, reason: 'boom' });
  assert.equal(timers.pending, 0);
});

test('passive reports: degraded at once, the next probe pulled forward, unknown links ignored', async () => {
  const { timers, script, events, monitor } = setup({ links: ['up1', 'up2'] });
  monitor.start();
  await timers.advance(100); // round 0 of both links done
  monitor.report('up1', { type: 'connect-failed', reason: 'timeout after 10000 ms' });
  assert.equal(monitor.state('up1'), 'degraded');
  assert.equal(events[0]?.reason, 'connect failed: timeout after 10000 ms');
  assert.deepEqual(monitor.status('up1').lastFailure, { reason: 'timeout after 10000 ms', at: 100 });
  monitor.report('direct', { type: 'connect-failed', reason: 'x' }); // not a link: ignored
  monitor.report('up2', { type: 'connect-failed', reason: 'connection reset' });

  await timers.advance(400 + 20);
  // The next round of each link started one timeout after the previous one (500), not at 1000.
  assert.deepEqual(
    script.starts.filter((s) => s.link === 'up1').map((s) => s.at),
    [0, 500],
  );
  assert.deepEqual(
    script.starts.filter((s) => s.link === 'up2').map((s) => s.at),
    [0, 500],
  );
  // Good probes bring it back after riseThreshold fast successes.
  await timers.advance(1_000);
  assert.equal(monitor.state('up1'), 'online');
  assert.throws(() => monitor.state('nope'), /link nope is not monitored/);
  monitor.stop();
});

test('passive signals while offline change nothing but are remembered as the last failure', async () => {
  const { timers, script, events, monitor } = setup();
  script.set('up1', SILENT);
  monitor.start();
  await timers.advanceUntil(() => monitor.state('up1') === 'offline', 5_000);
  const n = events.length;
  monitor.report('up1', { type: 'connect-failed', reason: 'stalled' });
  assert.equal(monitor.state('up1'), 'offline');
  assert.equal(events.length, n);
  assert.equal(monitor.status('up1').lastFailure?.reason, 'stalled');
  monitor.stop();
});

test('a failed round during which bytes arrived is not counted (busy link), unless disabled', async () => {
  for (const trafficCountsAsAlive of [true, false]) {
    const { timers, script, links, monitor } = setup({ trafficCountsAsAlive });
    const link = links[0]!;
    script.set('up1', SILENT);
    monitor.start();
    for (let t = 0; t < 5_000; t += 100) {
      link.bytesIn += 1_000; // downloads keep flowing while the probes time out
      await timers.advance(100);
    }
    assert.equal(
      monitor.state('up1'),
      trafficCountsAsAlive ? 'online' : 'offline',
      `${trafficCountsAsAlive}`,
    );
    monitor.stop();
  }
});

test('a given traffic counter with a floor: a busy uplink stays online, chatter under the floor does not hide a dead one', async () => {
  // The gateway's case: the interface's counter, and 32 kB/s during the round as the floor.
  for (const [perTick, expected] of [
    [4_000, 'online'], // 40 kB/s: the LAN's downloads
    [500, 'offline'], // 5 kB/s: ARP and broadcast on a dead uplink's segment
  ] as const) {
    let rx = 0;
    const { timers, script, monitor } = setup({
      traffic: { bytesIn: () => rx, min: (roundMs) => (32_000 * roundMs) / 1000 },
    });
    script.set('up1', SILENT);
    monitor.start();
    for (let t = 0; t < 5_000; t += 100) {
      rx += perTick;
      await timers.advance(100);
    }
    assert.equal(monitor.state('up1'), expected, `${perTick} bytes per 100 ms`);
    monitor.stop();
  }
});

test('a traffic counter that throws or has no value leaves the round counted', async () => {
  for (const bytesIn of [
    () => undefined,
    () => {
      throw new Error('device gone');
    },
  ]) {
    const { timers, script, monitor } = setup({ traffic: { bytesIn } });
    script.set('up1', SILENT);
    monitor.start();
    await timers.advance(5_000);
    assert.equal(monitor.state('up1'), 'offline');
    monitor.stop();
  }
});

test('stop() clears every timer, aborts probes in flight, is idempotent; start() resumes', async () => {
  const { timers, script, events, monitor } = setup({ links: ['up1', 'up2'] });
  script.set('up1', SILENT);
  monitor.start();
  monitor.start(); // no second schedule
  await timers.advance(100);
  assert.equal(script.inFlight(), 1);
  monitor.stop();
  assert.equal(script.inFlight(), 0, 'the silent probe was aborted');
  assert.equal(timers.pending, 0);
  monitor.stop();
  await timers.advance(10_000);
  assert.equal(script.starts.length, 2, 'no round after stop');
  assert.deepEqual(events, []);

  monitor.start();
  await timers.advance(1);
  assert.equal(script.starts.length, 4);
  monitor.stop();
  assert.equal(timers.pending, 0);
});

test('links can be added while running', async () => {
  const { timers, monitor } = setup();
  monitor.start();
  monitor.add(new FakeLink('up2'));
  assert.throws(() => monitor.add(new FakeLink('up2')), /already monitored/);
  await timers.advance(50);
  assert.deepEqual(
    monitor.statuses().map((s) => [s.link, s.state, s.successStreak]),
    [
      ['up1', 'online', 1],
      ['up2', 'online', 1],
    ],
  );
  monitor.stop();
  assert.equal(timers.pending, 0);
});

test('a throwing event listener is logged and the schedule goes on', async () => {
  const { timers, script, logs, monitor } = setup({
    onEvent: () => {
      throw new Error('listener bug');
    },
  });
  script.set('up1', SILENT);
  monitor.start();
  await timers.advanceUntil(() => monitor.state('up1') === 'offline', 5_000);
  assert.ok(logs.some((l) => l.includes('health event listener failed: listener bug')));
  monitor.stop();
});

test('no targets: no probes at all, passive signals only', async () => {
  const { timers, script, logs, monitor } = setup({ config: { targets: [] } });
  monitor.start();
  assert.equal(timers.pending, 0);
  await timers.advance(5_000);
  assert.equal(script.starts.length, 0);
  assert.ok(logs.some((l) => l.includes('no health probe targets')));
  monitor.report('up1', { type: 'connect-failed', reason: 'x' });
  assert.equal(monitor.state('up1'), 'degraded');
  assert.equal(timers.pending, 0, 'no round pulled forward without targets');
  monitor.stop();
});

test('real timers: a stopped monitor leaves nothing that keeps the process alive', async () => {
  const monitor = new HealthMonitor({
    links: [new FakeLink('up1')],
    config: withHealthDefaults({ intervalMs: 20, timeoutMs: 10, targets: [A] }),
    clock: systemClock,
    timers: systemTimers,
    probe: (_link, _target, { signal }) =>
      new Promise<ProbeOutcome>((resolve) =>
        signal.addEventListener('abort', () => resolve({ ok: false, reason: 'aborted' })),
      ),
  });
  monitor.start();
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(monitor.state('up1'), 'offline');
  monitor.stop();
  // If a timer survived, node --test would never see this file end (and time out).
});
