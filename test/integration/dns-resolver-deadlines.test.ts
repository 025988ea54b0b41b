/**
 * LinkResolver on loopback, the deadlines (issue 10's must-show items): a dead
 * nameserver or a dead link costs at most one per-try deadline, a link that
 * missed an answer is asked last next time, and a burst of unresolvable names
 * delays nothing else and leaves no socket open. Times are wall-clock and
 * printed in the assertion messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLinkmuxError } from '../../src/util/errors.js';
import { DnsResponder } from '../helpers/dns-responder.js';
import { FakeLink, V4, dnsFixture, timed } from '../helpers/dns-fixture.js';

/** Nothing here may hang CI. */
const T = { timeout: 15_000 };
const PER_TRY = 200;
const SLACK = 150;

test('a dead nameserver costs at most the per-try deadline', T, async (t) => {
  const dead = await DnsResponder.start();
  dead.fallback = { rcode: 'silent' };
  const f = await dnsFixture({
    servers: (live) => [
      { address: '127.0.0.1', port: dead.port },
      { address: '127.0.0.1', port: live.port },
    ],
    resolver: { perTryMs: PER_TRY, totalMs: 3_000 },
  });
  try {
    f.server.set('files.test', { a: ['192.0.2.10'] });
    const r = await timed(() => f.resolver.lookup('files.test', V4));
    assert.ok(r.ok, String(!r.ok && r.error));
    assert.deepEqual(r.value, [{ address: '192.0.2.10', family: 4 }]);
    t.diagnostic(`dead server then live: answered in ${r.ms.toFixed(1)} ms (perTryMs ${PER_TRY})`);
    assert.equal(dead.count('files.test'), 1, 'the dead server was asked first');
    assert.ok(r.ms >= PER_TRY - 10, `answered in ${r.ms.toFixed(0)} ms: before the per-try deadline?`);
    assert.ok(r.ms < PER_TRY + SLACK, `answered in ${r.ms.toFixed(0)} ms, want < ${PER_TRY + SLACK}`);
  } finally {
    await f.close();
    await dead.close();
  }
});

test(
  'a dead link costs at most the per-try deadline; the next lookup goes through the live link first',
  T,
  async (t) => {
    const dead = new FakeLink('dead', { dead: true });
    const live = new FakeLink('live');
    const f = await dnsFixture({ links: [dead, live], resolver: { perTryMs: PER_TRY, totalMs: 3_000 } });
    try {
      f.server.set('one.test', { a: ['192.0.2.1'] });
      f.server.set('two.test', { a: ['192.0.2.2'] });

      const first = await timed(() => f.resolver.lookup('one.test', V4));
      assert.ok(first.ok, String(!first.ok && first.error));
      assert.equal(dead.udpOpened, 1, 'the dead link was tried first');
      assert.ok(
        first.ms < PER_TRY + SLACK,
        `through a dead link first: ${first.ms.toFixed(0)} ms, want < ${PER_TRY + SLACK}`,
      );

      const second = await timed(() => f.resolver.lookup('two.test', V4));
      t.diagnostic(
        `dead link first: ${first.ms.toFixed(1)} ms; next name after the penalty: ${second.ms.toFixed(1)} ms`,
      );
      assert.ok(second.ok, String(!second.ok && second.error));
      assert.deepEqual(second.value, [{ address: '192.0.2.2', family: 4 }]);
      assert.ok(second.ms < 50, `after the penalty: ${second.ms.toFixed(0)} ms, want < 50`);
      assert.equal(dead.udpOpened, 1, 'the penalized dead link was not asked');
      assert.equal(dead.open.size + live.open.size, 0, 'every socket closed');
    } finally {
      await f.close();
    }
  },
);

test('every link dead: LINKMUX_ERR_DNS naming the links, by totalMs', T, async (t) => {
  const links = [new FakeLink('wan1', { dead: true }), new FakeLink('wan2', { dead: true })];
  const f = await dnsFixture({ links, resolver: { perTryMs: 100, totalMs: 400 } });
  try {
    f.server.set('files.test', { a: ['192.0.2.10'] });
    const r = await timed(() => f.resolver.lookup('files.test', V4));
    t.diagnostic(`every link dead: failed after ${r.ms.toFixed(1)} ms (totalMs 400)`);
    assert.ok(!r.ok);
    assert.ok(
      isLinkmuxError(r.error, 'LINKMUX_ERR_DNS') &&
        /no nameserver answered.*wan1, wan2/.test(r.error.message),
      String(r.error),
    );
    assert.ok(r.ms >= 390 && r.ms < 400 + SLACK, `failed after ${r.ms.toFixed(0)} ms, want ~400`);
    assert.equal(links[0]!.open.size + links[1]!.open.size, 0, 'every socket closed');
  } finally {
    await f.close();
  }
});

/** UDP handles open in this process (sockets of the links, the responder's own). */
function udpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWRAP').length;
}

test(
  '200 unresolvable names in flight delay no cached, resolvable or /etc/hosts name; all fail by totalMs; no socket left open',
  T,
  async (t) => {
    const TOTAL = 3_000;
    const link = new FakeLink('live');
    const f = await dnsFixture({
      links: [link],
      hostsText: '192.0.2.80 printer.lan\n',
      resolver: { perTryMs: PER_TRY, totalMs: TOTAL },
    });
    try {
      f.server.fallback = { rcode: 'silent' };
      f.server.set('cached.test', { a: ['192.0.2.81'], ttl: 3600 });
      f.server.set('fresh.test', { a: ['192.0.2.82'] });
      await f.resolver.lookup('cached.test', V4);
      await f.resolver.lookup('printer.lan', V4);
      const before = udpHandles();

      const start = performance.now();
      const burst = Array.from({ length: 200 }, (_, i) =>
        f.resolver.lookup(`nope-${i}.test`, V4).then(
          () => ({ ok: true as const, ms: performance.now() - start }),
          (error: unknown) => ({ ok: false as const, error, ms: performance.now() - start }),
        ),
      );
      await f.server.waitForQueries(f.server.asked.length + 200);
      assert.equal(link.open.size, 200, 'the 200 queries are in flight, one socket each');

      const cached = await timed(() => f.resolver.lookup('cached.test', V4));
      const fresh = await timed(() => f.resolver.lookup('fresh.test', V4));
      const hosts = await timed(() => f.resolver.lookup('printer.lan', V4));
      const times = `cached ${cached.ms.toFixed(1)} ms, resolvable ${fresh.ms.toFixed(1)} ms, /etc/hosts ${hosts.ms.toFixed(1)} ms`;
      t.diagnostic(`with 200 in flight: ${times}`);
      assert.ok(cached.ok && fresh.ok && hosts.ok, times);
      assert.deepEqual(cached.value, [{ address: '192.0.2.81', family: 4 }]);
      assert.deepEqual(fresh.value, [{ address: '192.0.2.82', family: 4 }]);
      assert.deepEqual(hosts.value, [{ address: '192.0.2.80', family: 4 }]);
      assert.ok(cached.ms < 100 && fresh.ms < 100 && hosts.ms < 100, `with 200 in flight: ${times}`);
      assert.ok(
        performance.now() - start < TOTAL,
        'the three lookups ran while the burst was still in flight',
      );

      const outcomes = await Promise.all(burst);
      const slowest = Math.max(...outcomes.map((o) => o.ms));
      const fastest = Math.min(...outcomes.map((o) => o.ms));
      t.diagnostic(
        `the 200 failed between ${fastest.toFixed(0)} and ${slowest.toFixed(0)} ms (totalMs ${TOTAL})`,
      );
      const bad = outcomes.filter((o) => o.ok || !isLinkmuxError(o.error, 'LINKMUX_ERR_DNS'));
      assert.equal(bad.length, 0, `not LINKMUX_ERR_DNS: ${JSON.stringify(bad.slice(0, 3))}`);
      assert.ok(
        fastest >= TOTAL - 50 && slowest < TOTAL + 500,
        `the 200 failed between ${fastest.toFixed(0)} and ${slowest.toFixed(0)} ms, want ~${TOTAL}`,
      );
      assert.equal(
        f.server.count('nope-0.test'),
        1,
        'each unresolvable name asked once (one link, one server)',
      );

      await new Promise((r) => setImmediate(r));
      assert.equal(link.open.size, 0, 'the link has no socket left open');
      assert.equal(udpHandles(), before, 'no UDP handle left in the process');
    } finally {
      await f.close();
    }
  },
);
