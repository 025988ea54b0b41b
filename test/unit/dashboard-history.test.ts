/**
 * The dashboard's chart history (src/dashboard/web/status-feed.js, a browser
 * module without DOM dependencies, loaded here as it is shipped): five minutes
 * on one time axis, links that appear later padded with nulls, links that
 * vanish padded too, and a new history when the daemon restarts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DaemonStatus } from '../../src/control/status-types.js';
import { threeLinkStatus } from '../helpers/daemon-status.js';

interface RateHistory {
  times: number[];
  push(status: DaemonStatus, now?: number): void;
  series(id: string): [number[], (number | null)[], (number | null)[]];
}

async function load(): Promise<{ RateHistory: new () => RateHistory; HISTORY_SECONDS: number }> {
  const url = new URL('../../../src/dashboard/web/status-feed.js', import.meta.url);
  return (await import(url.href)) as { RateHistory: new () => RateHistory; HISTORY_SECONDS: number };
}

function status(links: string[], rateIn = 1000, startedAt = 'a'): DaemonStatus {
  const s = threeLinkStatus();
  const proto = s.links[0];
  assert.ok(proto);
  return {
    ...s,
    startedAt,
    links: links.map((id) => ({ ...proto, id, rateIn, rateOut: rateIn / 10 })),
  };
}

test('rates in bits per second on one axis; late and vanished links padded with nulls', async () => {
  const { RateHistory } = await load();
  const h = new RateHistory();
  h.push(status(['up0']), 100);
  h.push(status(['up0', 'up1']), 101);
  h.push(status(['up1']), 102);
  assert.deepEqual(h.series('up0'), [
    [100, 101, 102],
    [8000, 8000, null],
    [800, 800, null],
  ]);
  assert.deepEqual(h.series('up1')[1], [null, 8000, 8000]);
  assert.deepEqual(h.series('nope'), [[], [], []]);
});

test('keeps HISTORY_SECONDS and drops older frames from every column', async () => {
  const { RateHistory, HISTORY_SECONDS } = await load();
  assert.equal(HISTORY_SECONDS, 300);
  const h = new RateHistory();
  for (let t = 0; t <= 400; t++) h.push(status(['up0', 'up1'], t), t);
  const [times, rin] = h.series('up1');
  assert.equal(times[0], 100);
  assert.equal(times.length, 301);
  assert.equal(rin.length, 301);
  assert.equal(rin[0], 800);
});

test('a daemon restart (new startedAt) starts a new history', async () => {
  const { RateHistory } = await load();
  const h = new RateHistory();
  h.push(status(['up0'], 1000, 'first'), 1);
  h.push(status(['up0'], 1000, 'first'), 2);
  h.push(status(['eth0'], 5000, 'second'), 3);
  assert.deepEqual(h.series('up0'), [[], [], []]);
  assert.deepEqual(h.series('eth0'), [[3], [40000], [4000]]);
});
