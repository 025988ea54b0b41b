/**
 * The pure parts of issue 11: cap accounting, the EMFILE backoff, failed-login
 * aggregation, the caps derived from the descriptor limit, the own-host
 * guards and the host address list's re-reading, EMFILE as a process
 * condition in the prober.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionGate } from '../../src/proxy/connection-gate.js';
import { AcceptBackoff } from '../../src/proxy/accept-backoff.js';
import { LoginFailures } from '../../src/proxy/login-failures.js';
import { deriveCaps } from '../../src/net/fd-limit.js';
import { HostAddresses } from '../../src/net/host-addresses.js';
import { isLoopbackOrUnspecified, nodeHostGuard, proxyHostGuard } from '../../src/proxy/own-host-guard.js';
import { OUT_OF_DESCRIPTORS, failureReason } from '../../src/health/prober.js';
import { LinkmuxError, isDescriptorExhaustion } from '../../src/util/errors.js';
import { FakeClock } from '../../src/util/clock.js';

test('gate: global and per-client caps, mapped IPv4 counts as IPv4, double release counts once', () => {
  const g = new ConnectionGate({ maxConnections: 3, maxPerClient: 2 });
  const a1 = g.admit('198.18.0.5', 0);
  const a2 = g.admit('::ffff:198.18.0.5', 0);
  assert.ok(a1.ok && a2.ok);
  assert.deepEqual(g.admit('198.18.0.5', 0), { ok: false, reason: 'per-client' });
  const b1 = g.admit('198.18.0.6', 0);
  assert.ok(b1.ok);
  assert.deepEqual(g.admit('198.18.0.7', 0), { ok: false, reason: 'global' });
  a1.lease.release();
  a1.lease.release();
  assert.equal(g.openFrom('198.18.0.5'), 1);
  assert.equal(g.counters().open, 2);
  assert.ok(g.admit('198.18.0.7', 0).ok);
  assert.deepEqual(g.counters().shed, { global: 1, 'per-client': 1, pressure: 0 });
});

test('gate: during a descriptor pause everything is shed, then admitted again', () => {
  const g = new ConnectionGate({ maxConnections: 10, maxPerClient: 10 });
  g.backoff.fail(1_000);
  assert.deepEqual(g.admit('a', 1_050), { ok: false, reason: 'pressure' });
  assert.ok(g.admit('a', 1_100).ok);
});

test('backoff: 100 ms doubling to 1 s while failures continue; a quiet 5 s starts over', () => {
  const b = new AcceptBackoff();
  const pauses = [0, 150, 400, 900, 1_900, 3_000, 4_100].map((t) => b.fail(t));
  assert.deepEqual(pauses, [100, 200, 400, 800, 1_000, 1_000, 1_000]);
  assert.ok(b.paused(4_100 + 999) && !b.paused(4_100 + 1_000));
  assert.equal(b.fail(20_000), 100);
  assert.equal(b.failures, 8);
});

test('failed logins: first reported at once, then one summary line per address per interval', () => {
  const f = new LoginFailures(60_000);
  assert.match(f.record('198.18.100.5', 'socks5', 0)!, /^failed login from 198\.18\.100\.5 \(socks5\)/);
  assert.equal(f.record('198.18.100.5', 'socks5', 1_000), undefined);
  assert.equal(f.record('198.18.100.5', 'http', 2_000), undefined);
  assert.equal(f.record('198.18.100.5', 'socks5', 3_000), undefined);
  assert.ok(f.record('198.18.100.6', 'node', 3_000));
  assert.deepEqual(f.flush(60_000), ['3 failed logins from 198.18.100.5 in the last 60 s (socks5, http)']);
  // Reported at the flush: the next failure within an interval is counted, not logged.
  assert.equal(f.record('198.18.100.5', 'socks5', 61_000), undefined);
  assert.deepEqual(f.flush(120_000), ['1 failed login from 198.18.100.5 in the last 60 s (socks5)']);
  assert.deepEqual(f.flush(180_000), []);
  assert.ok(f.record('198.18.100.5', 'socks5', 181_000), 'quiet for an interval: reported at once again');
  assert.deepEqual(f.totals, { socks5: 5, http: 1, node: 1 });
});

test('failed logins: memory bounded; beyond it, new addresses are summed as "other addresses"', () => {
  const f = new LoginFailures(60_000, 2);
  assert.ok(f.record('a', 'http', 0));
  assert.ok(f.record('b', 'http', 0));
  assert.equal(f.record('c', 'http', 0), undefined);
  assert.equal(f.record('d', 'http', 0), undefined);
  assert.deepEqual(f.flush(1), ['2 failed logins from other addresses in the last 60 s (http)']);
});

test('caps: derived from the descriptor limit minus the reserve, two descriptors per connection', () => {
  assert.deepEqual(deriveCaps({ maxConnections: 0, maxPerClient: 0, reserve: 0 }, 1024), {
    maxConnections: 448,
    maxPerClient: 224,
    reserve: 128,
    limit: 1024,
  });
  assert.equal(deriveCaps({ maxConnections: 0, maxPerClient: 0, reserve: 0 }, 256).reserve, 64);
  assert.equal(deriveCaps({ maxConnections: 0, maxPerClient: 0, reserve: 0 }, 1_048_576).reserve, 4096);
  assert.deepEqual(deriveCaps({ maxConnections: 100, maxPerClient: 500, reserve: 10 }, 1024), {
    maxConnections: 100,
    maxPerClient: 100,
    reserve: 10,
    limit: 1024,
  });
  assert.equal(deriveCaps({ maxConnections: 0, maxPerClient: 0, reserve: 0 }, undefined).limit, 1024);
  assert.equal(deriveCaps({ maxConnections: 0, maxPerClient: 0, reserve: 0 }, Infinity).limit, 1024);
});

test('proxy guard: non-loopback clients cannot reach loopback, 0.0.0.0, :: or own addresses; rules and loopback clients can', () => {
  const own = (ip: string) => ip === '198.18.100.1';
  for (const dst of [
    '127.0.0.1',
    '127.9.9.9',
    '::1',
    '0.0.0.0',
    '::',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '198.18.100.1',
  ]) {
    assert.equal(proxyHostGuard(dst, '198.18.100.101', own, false).allowed, false, dst);
    assert.equal(proxyHostGuard(dst, '127.0.0.1', own, false).allowed, true, `${dst} from loopback`);
    assert.equal(
      proxyHostGuard(dst, '::ffff:127.0.0.1', own, false).allowed,
      true,
      `${dst} from mapped loopback`,
    );
    assert.equal(proxyHostGuard(dst, '198.18.100.101', own, true).allowed, true, `${dst} opened by a rule`);
  }
  assert.equal(proxyHostGuard('198.18.0.9', '198.18.100.101', own, false).allowed, true);
  assert.equal(proxyHostGuard('127.0.0.1', undefined, own, false).allowed, false, 'unknown client: closed');
  assert.ok(isLoopbackOrUnspecified('0.1.2.3') && !isLoopbackOrUnspecified('10.0.0.1'));
});

test('node guard: own addresses refused unless node.allow names them', () => {
  const own = (ip: string) => ip === '203.0.113.7';
  assert.equal(nodeHostGuard('203.0.113.7', own, () => false).allowed, false);
  assert.equal(nodeHostGuard('203.0.113.7', own, () => true).allowed, true);
  assert.equal(nodeHostGuard('203.0.113.8', own, () => false).allowed, true);
});

test('host addresses: canonical matching, re-read when stale and before letting a new address through', () => {
  const clock = new FakeClock(0);
  let list = ['127.0.0.1', '198.18.1.2', 'fe80::1%eth0'];
  let reads = 0;
  const h = new HostAddresses(() => (reads++, list), clock, 2_000, 250);
  assert.ok(h.has('::ffff:198.18.1.2'));
  assert.ok(h.has('fe80::1'));
  assert.equal(reads, 1);
  list = [...list, '198.18.9.9'];
  clock.advance(100);
  assert.equal(h.has('198.18.9.9'), false, 'a fresh list is trusted');
  clock.advance(200);
  assert.equal(h.has('198.18.9.9'), true, 'older than 250 ms: re-read before allowing');
  assert.equal(h.has('198.18.1.2'), true);
  assert.equal(reads, 2);
});

test('EMFILE is a process condition: its own code and probe reason, never "cannot bind to the link"', () => {
  const emfile = Object.assign(new Error('socket() failed: EMFILE'), { code: 'EMFILE' });
  const err = new LinkmuxError('LINKMUX_ERR_NO_DESCRIPTORS', 'out', { cause: emfile });
  assert.ok(isDescriptorExhaustion(err) && isDescriptorExhaustion(emfile));
  assert.ok(isDescriptorExhaustion(new LinkmuxError('LINKMUX_ERR_CONNECT', 'x', { cause: emfile })));
  assert.equal(failureReason(err), OUT_OF_DESCRIPTORS);
  assert.equal(failureReason(emfile), OUT_OF_DESCRIPTORS);
  assert.ok(!isDescriptorExhaustion(Object.assign(new Error('x'), { code: 'ECONNRESET' })));
});
