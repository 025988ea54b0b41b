// Traffic as evidence between probe rounds: an online link that keeps receiving
// bytes is not probed, the detection bound holds when it breaks mid-transfer,
// and a passive failure still forces a round. FakeClock, FakeTimers, a scripted prober.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, FakeLink, OK, SILENT, scriptedProber } from '../helpers/health-fakes.js';
import { HealthMonitor, detectionBoundMs } from '../../src/health/monitor.js';
import type { HealthMonitorOptions } from '../../src/health/monitor.js';
import { DEFAULT_HEALTH_CONFIG, withHealthDefaults } from '../../src/health/config.js';
import { lookAt, socketTraffic } from '../../src/health/traffic-evidence.js';
import { FakeTimers } from '../../src/health/timers.js';
import { FakeClock } from '../../src/util/clock.js';

function setup(opts: Partial<HealthMonitorOptions> = {}) {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const script = scriptedProber(timers, clock);
  const link = new FakeLink('up1');
  const monitor = new HealthMonitor({
    links: [link],
    config: withHealthDefaults({ targets: [A] }),
    clock,
    timers,
    probe: script.prober,
    ...opts,
  });
  /** `ms` of time, the link receiving `perTick` bytes every 50 ms. */
  const run = async (ms: number, perTick: number) => {
    for (let t = 0; t < ms; t += 50) {
      link.bytesIn += perTick;
      await timers.advance(50);
    }
  };
  return { clock, timers, script, link, monitor, run };
}

test('lookAt: traffic moves the proof to the start of the half interval; without it the round comes an interval after the proof', () => {
  assert.deepEqual(lookAt({ now: 1_500, intervalMs: 1_000, provenAt: 0, traffic: true }), {
    provenAt: 1_000,
    roundNow: false,
    nextAt: 2_000,
  });
  assert.deepEqual(lookAt({ now: 500, intervalMs: 1_000, provenAt: 0, traffic: false }), {
    provenAt: 0,
    roundNow: false,
    nextAt: 1_000,
  });
  assert.equal(lookAt({ now: 1_000, intervalMs: 1_000, provenAt: 0, traffic: false }).roundNow, true);
  // A proof never moves back.
  assert.equal(lookAt({ now: 1_200, intervalMs: 1_000, provenAt: 1_000, traffic: true }).provenAt, 1_000);
});

test('an online link that keeps receiving is not probed; the first round comes within an interval of the last byte', async () => {
  const { clock, script, monitor, run } = setup();
  script.set('up1', OK);
  monitor.start();
  await run(10_000, 1_000);
  assert.deepEqual(
    script.starts.map((s) => s.at),
    [0],
    'one round at start, none while bytes arrive',
  );
  const lastByte = clock.now();
  await run(2_000, 0);
  const after = script.starts.slice(1).map((s) => s.at);
  assert.ok(after.length >= 1, 'rounds again once idle');
  assert.ok(
    after[0]! - lastByte <= DEFAULT_HEALTH_CONFIG.intervalMs,
    `first round ${after[0]! - lastByte} ms after the last byte`,
  );
  assert.equal(monitor.state('up1'), 'online');
  monitor.stop();
});

test('a link that breaks mid-transfer (bytes stop, probes time out) is offline within the detection bound', async () => {
  for (const offset of [0, 120, 260, 390, 510, 740, 990]) {
    const { clock, timers, script, link, monitor, run } = setup();
    script.set('up1', OK);
    monitor.start();
    await run(5_000 + offset, 1_000);
    const brokeAt = clock.now();
    script.set('up1', SILENT);
    const offlineAt = await timers.advanceUntil(() => monitor.state('up1') === 'offline', 10_000);
    assert.ok(
      offlineAt - brokeAt <= detectionBoundMs(DEFAULT_HEALTH_CONFIG),
      `offset ${offset}: offline ${offlineAt - brokeAt} ms after the break (bytes ${link.bytesIn})`,
    );
    monitor.stop();
  }
});

test('a passive failure on a busy link forces a round; bytes under the floor are no traffic; without trafficCountsAsAlive every interval is probed', async () => {
  {
    const { clock, script, monitor, run } = setup();
    script.set('up1', OK);
    monitor.start();
    await run(3_000, 1_000);
    assert.equal(script.starts.length, 1);
    monitor.report('up1', { type: 'connect-failed', reason: 'timeout', kind: 'timeout' });
    const at = clock.now();
    await run(600, 1_000);
    assert.ok(script.starts.length >= 2 && script.starts[1]!.at - at <= 500, 'a round soon after the hint');
    monitor.stop();
  }
  {
    const { script, monitor, run } = setup({
      traffic: { bytesIn: (l) => l.stats().bytesIn, min: () => 10_000 },
    });
    script.set('up1', OK);
    monitor.start();
    await run(5_000, 100); // 1 kB per half interval: under the floor
    assert.ok(script.starts.length >= 5, `${script.starts.length} rounds`);
    monitor.stop();
  }
  {
    const { script, monitor, run } = setup({ trafficCountsAsAlive: false });
    script.set('up1', OK);
    monitor.start();
    await run(5_000, 1_000);
    assert.ok(script.starts.length >= 5, `${script.starts.length} rounds`);
    monitor.stop();
  }
});

test("the sockets' counter: a link's receivedBytes() when it has one (no stats() walk), else stats().bytesIn", () => {
  const plain = new FakeLink('up1');
  plain.bytesIn = 42;
  assert.equal(socketTraffic.bytesIn(plain), 42);
  const cheap = Object.assign(new FakeLink('up2'), {
    receivedBytes: () => 7,
    stats: () => {
      throw new Error('stats() walked');
    },
  });
  assert.equal(socketTraffic.bytesIn(cheap), 7);
});
