// DialAbort (util/dial-abort.ts), the light AbortController of the dial path: it behaves like
// Node's for everything linkmux's dial code and events.once use (listeners once each, in order,
// removable; none for a signal already aborted; onabort; reason; throwIfAborted), and it is
// garbage for the young generation, where Node 20's AbortSignal is promoted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import { DialAbort } from '../../src/util/dial-abort.js';

for (const [name, make] of [
  ['Node AbortController', () => new AbortController()],
  ['DialAbort', () => new DialAbort()],
] as const) {
  test(`${name}: the semantics the dial path relies on`, () => {
    const ctl = make();
    const { signal } = ctl;
    const calls: string[] = [];
    const a = () => calls.push(`a:${String(signal.reason)}`);
    const b = () => calls.push('b');
    const c = () => calls.push('c');
    signal.onabort = () => calls.push('onabort');
    signal.addEventListener('abort', a, { once: true });
    signal.addEventListener('abort', b);
    signal.addEventListener('abort', c);
    signal.addEventListener('abort', c); // the same listener twice runs once
    signal.removeEventListener('abort', b);
    assert.equal(signal.aborted, false);
    assert.doesNotThrow(() => signal.throwIfAborted());
    ctl.abort('why');
    ctl.abort('again');
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, 'why');
    assert.deepEqual(
      calls,
      ['onabort', 'a:why', 'c'],
      'each listener once, in order, removed one not at all',
    );
    assert.throws(
      () => signal.throwIfAborted(),
      (e) => e === 'why',
    );
    const late = () => calls.push('late');
    signal.addEventListener('abort', late);
    ctl.abort('third');
    assert.equal(calls.includes('late'), false, 'a listener added after the abort never runs');
  });

  test(`${name}: the default reason is an AbortError`, () => {
    const ctl = make();
    ctl.abort();
    assert.equal((ctl.signal.reason as Error).name, 'AbortError');
  });

  test(`${name}: events.once accepts the signal and rejects with an AbortError on abort`, async () => {
    const ctl = make();
    const ee = new EventEmitter();
    const ok = once(ee, 'x', { signal: ctl.signal });
    ee.emit('x', 1);
    assert.deepEqual(await ok, [1]);
    const waiting = once(ee, 'y', { signal: ctl.signal });
    ctl.abort(new Error('gone'));
    await assert.rejects(waiting, (e: Error) => e.name === 'AbortError');
    await assert.rejects(once(ee, 'z', { signal: ctl.signal }), (e: Error) => e.name === 'AbortError');
  });
}

test('DialAbort signals die young; Node 20 AbortSignals are promoted (why DialAbort exists)', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (o?: { type: 'minor' | 'major' }) => void;
  const oldSpace = () =>
    v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
  const grownAfter = (make: () => { signal: AbortSignal }) => {
    gc({ type: 'major' });
    const before = oldSpace();
    for (let i = 0; i < 5_000; i++) {
      const { signal } = make();
      const f = () => {};
      signal.addEventListener('abort', f, { once: true });
      signal.removeEventListener('abort', f);
    }
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    return oldSpace() - before;
  };
  const light = grownAfter(() => new DialAbort());
  assert.ok(light < 256 * 1024, `5,000 dropped DialAbort signals left ${light} bytes in old space`);
  const node = grownAfter(() => new AbortController());
  // Not a property of linkmux: if a later Node stops promoting its signals, only this comparison goes.
  if (process.versions.node.startsWith('20.')) {
    assert.ok(node > light, `Node's signals left ${node} bytes in old space, DialAbort's ${light}`);
  }
});
