// The monitor suspecting its probe targets rather than its links, and the
// passive rule taking out a link whose real connects time out while others
// connect, with its way back through learned targets. Scripted prober,
// FakeClock and FakeTimers: every bound is exact fake time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, B, FakeLink, OK, SILENT, scriptedProber } from '../helpers/health-fakes.js';
import { HealthMonitor, detectionBoundMs } from '../../src/health/monitor.js';
import type { HealthMonitorOptions } from '../../src/health/monitor.js';
import { DEFAULT_HEALTH_CONFIG, withHealthDefaults } from '../../src/health/config.js';
import type { HealthConfig, ProbeTarget } from '../../src/health/config.js';
import type { StateChangedEvent } from '../../src/health/state-machine.js';
import { FakeTimers } from '../../src/health/timers.js';
import { FakeClock } from '../../src/util/clock.js';
import { createLogger } from '../../src/util/logger.js';

type SetupOptions = Omit<Partial<HealthMonitorOptions>, 'links' | 'config'> & {
  links?: string[];
  config?: Partial<HealthConfig>;
};

function setup(opts: SetupOptions = {}) {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const script = scriptedProber(timers, clock);
  const links = (opts.links ?? ['up1', 'up2', 'up3']).map((id) => new FakeLink(id));
  const events: StateChangedEvent[] = [];
  const logs: string[] = [];
  const { config, links: _ids, ...rest } = opts;
  const monitor = new HealthMonitor({
    links,
    config: withHealthDefaults({ targets: [A, B], ...config }),
    clock,
    timers,
    probe: script.prober,
    logger: createLogger('debug', (l) => logs.push(l)),
    onEvent: (e) => events.push(e),
    ...rest,
  });
  const states = () => monitor.statuses().map((s) => s.state);
  const warnings = (re: RegExp) => logs.filter((l) => l.includes(': warn: ') && re.test(l));
  return { clock, timers, script, links, events, logs, monitor, states, warnings };
}

const WEB: ProbeTarget = { kind: 'tcp', host: '203.0.113.7', port: 443 };

test('every link failing its probes at once: unverified (in service), never offline, one warning', async () => {
  for (const ids of [
    ['up1', 'up2'],
    ['up1', 'up2', 'up3'],
  ]) {
    const { timers, script, events, monitor, states, warnings } = setup({ links: ids });
    for (const id of ids) script.set(id, SILENT);
    monitor.start();
    const at = await timers.advanceUntil(() => states().every((s) => s === 'unverified'), 10_000);
    assert.ok(at <= detectionBoundMs(DEFAULT_HEALTH_CONFIG), `unverified after ${at} ms`);
    await timers.advance(60_000); // a minute of failing rounds changes nothing
    assert.deepEqual(
      states(),
      ids.map(() => 'unverified'),
    );
    assert.ok(!events.some((e) => e.to === 'offline'), 'no link ever went offline');
    const status = monitor.status('up1');
    assert.equal(
      status.reason,
      'every link failed its probes to tcp://127.0.0.1:1, tcp://127.0.0.1:2: the probe targets look ' +
        'unreachable on this network (blocked?); set health.targets to hosts reachable from here',
    );
    assert.equal(warnings(/set health\.targets/).length, 1, 'one warning for the episode, not one per round');
    monitor.stop();
  }
});

test('one link failing while another succeeds: the failing one offline within the usual bound', async () => {
  const { timers, script, events, monitor, states, warnings } = setup();
  monitor.start();
  await timers.advance(3_000);
  const brokeAt = 3_001; // just after a successful round: the worst case
  await timers.advance(1);
  script.set('up2', SILENT);
  const offlineAt = await timers.advanceUntil(() => monitor.state('up2') === 'offline', 10_000);
  assert.ok(offlineAt - brokeAt <= detectionBoundMs(DEFAULT_HEALTH_CONFIG), `took ${offlineAt - brokeAt} ms`);
  assert.deepEqual(states(), ['online', 'offline', 'online']);
  assert.ok(!events.some((e) => e.to === 'unverified'));
  assert.equal(warnings(/health\.targets/).length, 0);
  monitor.stop();
});

test('targets trusted again: links that answer come online, links still failing go offline', async () => {
  const { timers, script, monitor, states, logs } = setup({ links: ['up1', 'up2'] });
  script.set('up1', SILENT);
  script.set('up2', SILENT);
  monitor.start();
  await timers.advanceUntil(() => states().every((s) => s === 'unverified'), 10_000);
  script.set('up2', OK); // the network lets the targets through again, but up1 really is dead
  await timers.advanceUntil(() => monitor.state('up1') === 'offline', 5_000);
  await timers.advanceUntil(() => monitor.state('up2') === 'online', 5_000);
  assert.ok(logs.some((l) => l.includes('the probe targets answer again')));
  // And a fresh episode warns again (once).
  script.set('up2', SILENT);
  await timers.advanceUntil(() => states().every((s) => s === 'unverified'), 10_000);
  assert.equal(logs.filter((l) => l.includes('set health.targets')).length, 2);
  monitor.stop();
});

test('a lone link failing its probes goes offline (indistinguishable from dead) with one hint', async () => {
  const { timers, script, monitor, warnings } = setup({ links: ['solo'] });
  script.set('solo', SILENT);
  monitor.start();
  await timers.advanceUntil(() => monitor.state('solo') === 'offline', 5_000);
  await timers.advance(10_000);
  assert.equal(monitor.state('solo'), 'offline');
  assert.equal(warnings(/only link .*set health\.targets/).length, 1);
});

/** Reports `n` passive connect failures of `kind` through `link`. */
function fail(monitor: HealthMonitor, link: string, n: number, kind: 'timeout' | 'unreachable' | 'other') {
  for (let i = 0; i < n; i++) monitor.report(link, { type: 'connect-failed', reason: 'timed out', kind });
}

const ok = (
  monitor: HealthMonitor,
  link: string,
  dst = { host: WEB.host, port: (WEB as { port: number }).port },
) => monitor.report(link, { type: 'connect-ok', dst });

test('passive rule table: who goes offline on connect failures', async () => {
  const table: Array<{
    name: string;
    run: (m: HealthMonitor, timers: FakeTimers) => Promise<void> | void;
    up1: string;
  }> = [
    {
      name: '3 timeouts through up1 while up2 connected: offline',
      run: (m) => (ok(m, 'up2'), fail(m, 'up1', 3, 'timeout')),
      up1: 'offline',
    },
    {
      name: '3 unreachables count like timeouts',
      run: (m) => (ok(m, 'up2'), fail(m, 'up1', 3, 'unreachable')),
      up1: 'offline',
    },
    {
      name: 'two are not enough',
      run: (m) => (ok(m, 'up2'), fail(m, 'up1', 2, 'timeout')),
      up1: 'unverified',
    },
    {
      name: 'no other link connected (a dead destination): stays',
      run: (m) => fail(m, 'up1', 5, 'timeout'),
      up1: 'unverified',
    },
    {
      name: 'other failures (reset, …) do not count',
      run: (m) => (ok(m, 'up2'), fail(m, 'up1', 5, 'other')),
      up1: 'unverified',
    },
    {
      name: 'a success through up1 restarts its count',
      run: (m) => (ok(m, 'up2'), fail(m, 'up1', 2, 'timeout'), ok(m, 'up1'), fail(m, 'up1', 2, 'timeout')),
      up1: 'unverified',
    },
    {
      name: "the other link's success is too old (over 30 s)",
      run: async (m, timers) => {
        ok(m, 'up2');
        await timers.advance(31_000);
        fail(m, 'up1', 3, 'timeout');
      },
      up1: 'unverified',
    },
  ];
  for (const row of table) {
    // Probes blocked everywhere: the links are unverified, and only connects can judge them.
    const { timers, script, monitor, events } = setup({ links: ['up1', 'up2'] });
    script.set('up1', SILENT);
    script.set('up2', SILENT);
    monitor.start();
    await timers.advanceUntil(() => monitor.statuses().every((s) => s.state === 'unverified'), 10_000);
    await row.run(monitor, timers);
    assert.equal(monitor.state('up1'), row.up1, row.name);
    assert.equal(monitor.state('up2'), 'unverified', row.name);
    if (row.up1 === 'offline') {
      assert.match(
        monitor.status('up1').reason ?? '',
        /3 connects in a row timed out or found no route .* while up2 connected 0 s ago/,
      );
      assert.equal(events.at(-1)?.to, 'offline');
    }
    monitor.stop();
  }
});

test('the passive rule also takes out an online link, with the probes answering', async () => {
  const { timers, monitor } = setup({ links: ['up1', 'up2'] });
  monitor.start();
  await timers.advance(2_000);
  ok(monitor, 'up2');
  fail(monitor, 'up1', 3, 'timeout');
  assert.equal(monitor.state('up1'), 'offline');
  // Its probes still answer: R rounds bring it back, as for any offline link.
  await timers.advanceUntil(() => monitor.state('up1') === 'online', 5_000);
  monitor.stop();
});

test('a link taken out by its connects comes back through learned targets while the configured ones stay blocked', async () => {
  const { timers, script, monitor, states } = setup({ links: ['up1', 'up2'] });
  script.set('up1', SILENT);
  script.set('up2', SILENT);
  monitor.start();
  await timers.advanceUntil(() => states().every((s) => s === 'unverified'), 10_000);
  ok(monitor, 'up2');
  fail(monitor, 'up1', 3, 'timeout');
  assert.equal(monitor.state('up1'), 'offline');
  const from = script.starts.length;
  // Suspect probes cannot re-admit it: a few rounds later it is still offline, not unverified.
  await timers.advance(5_000);
  assert.equal(monitor.state('up1'), 'offline');
  const probed = script.starts.slice(from);
  assert.ok(
    probed.some((p) => p.link === 'up1' && p.target === 'up1 443'),
    'up1 is probed at the learned target',
  );
  assert.ok(!probed.some((p) => p.link === 'up2' && p.target === 'up2 443'), 'links in service are not');
  // up1 recovers: the learned destination answers through it, the configured targets still do not.
  script.set('up1', OK, WEB);
  const backAt = await timers.advanceUntil(() => monitor.state('up1') === 'online', 5_000);
  assert.ok(backAt > 0);
  assert.equal(monitor.status('up1').reason, '2 consecutive probe successes');
  monitor.stop();
});

test('with no configured targets, a link taken out by its connects is probed at learned targets only', async () => {
  const { timers, script, monitor } = setup({ links: ['up1', 'up2'], config: { targets: [] } });
  monitor.start();
  assert.equal(timers.pending, 0, 'no probes without targets');
  ok(monitor, 'up2');
  fail(monitor, 'up1', 3, 'timeout');
  assert.equal(monitor.state('up1'), 'offline');
  script.set('up1', OK, WEB);
  await timers.advanceUntil(() => monitor.state('up1') === 'online', 5_000);
  assert.deepEqual(
    [...new Set(script.starts.map((s) => s.target))],
    ['up1 443'],
    'only up1, only the learned target',
  );
  await timers.advance(10_000);
  assert.equal(timers.pending, 0, 'back online: no more rounds');
  monitor.stop();
});
