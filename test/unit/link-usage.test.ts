/**
 * LinkUsage (the PoolDialer's busy count per link) with an injected clock and
 * fake sockets (byte counters only): fresh connections count at once, a closed
 * one stops counting at once, idle ones stop after the window, bytes moving
 * make one busy again, and the scan of every socket runs at most once per
 * SCAN_EVERY_MS however many dials ask (the regression: a scan per dial cost
 * more than the rest of a connect with 2,000 tunnels open).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUSY_WINDOW_MS, FRESH_MS, LinkUsage, SCAN_EVERY_MS } from '../../src/proxy/link-usage.js';
import { FakeClock } from '../../src/util/clock.js';

/** A socket whose counters count how often they are read. */
function fakeSocket() {
  const s = {
    reads: 0,
    moved: 0,
    get bytesRead() {
      s.reads++;
      return s.moved;
    },
    bytesWritten: 0,
  };
  return s;
}

test('a burst counts at once; a close uncounts at once; idle ones stop counting after the window', () => {
  const clock = new FakeClock(1_000_000);
  const u = new LinkUsage(clock);
  assert.equal(u.busyOn('a'), 0);
  const held = Array.from({ length: 5 }, () => u.hold('a'));
  assert.equal(u.busyOn('a'), 5, 'fresh connections are busy before any scan sees them');
  assert.equal(u.connectionsOn('a'), 5);
  u.drop('a', held[0]!);
  u.drop('a', held[0]!); // twice: counted once
  assert.equal(u.busyOn('a'), 4);
  assert.equal(u.connectionsOn('a'), 4);
  clock.advance(FRESH_MS + 1);
  assert.equal(u.busyOn('a'), 0, 'nothing moved: idle');
  assert.equal(u.connectionsOn('a'), 4, 'still open');
  u.drop('a', held[1]!);
  assert.equal(u.busyOn('a'), 0, 'an idle one closing does not go below zero');
  assert.equal(u.busyOn('b'), 0);
});

test('bytes moving make a connection busy again, seen at the next scan', () => {
  const clock = new FakeClock(1_000_000);
  const u = new LinkUsage(clock);
  const t = u.hold('a');
  const socket = fakeSocket();
  t.socket = socket;
  clock.advance(FRESH_MS + 1);
  assert.equal(u.busyOn('a'), 0);
  socket.moved = 1000;
  assert.equal(u.busyOn('a'), 0, 'within SCAN_EVERY_MS the count is the last scan');
  clock.advance(SCAN_EVERY_MS);
  assert.equal(u.busyOn('a'), 1, 'the next scan sees the bytes');
  clock.advance(BUSY_WINDOW_MS + SCAN_EVERY_MS);
  assert.equal(u.busyOn('a'), 0, 'no bytes for a window: idle again');
  u.drop('a', t);
  assert.equal(u.busyOn('a'), 0);
});

test('the sockets are read at most once per SCAN_EVERY_MS, however many dials ask', () => {
  const clock = new FakeClock(1_000_000);
  const u = new LinkUsage(clock);
  const sockets = Array.from({ length: 2000 }, () => {
    const s = fakeSocket();
    u.hold('a').socket = s;
    return s;
  });
  for (let i = 0; i < 1000; i++) u.busyOn('a');
  assert.equal(
    sockets.reduce((n, s) => n + s.reads, 0),
    2000,
    'one scan for a thousand asks',
  );
  clock.advance(SCAN_EVERY_MS);
  u.busyOn('a');
  assert.equal(
    sockets.reduce((n, s) => n + s.reads, 0),
    4000,
  );
  // A clock that went back (a fake, or a stepped one) rescans rather than trusting the cache forever.
  clock.advance(-10 * SCAN_EVERY_MS);
  u.busyOn('a');
  assert.equal(
    sockets.reduce((n, s) => n + s.reads, 0),
    6000,
  );
});
