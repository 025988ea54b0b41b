// The aria2 JSON-RPC's pure parts: framing and tokens, paging, the queue's decisions, values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDispatcher } from '../../src/rpc/json-rpc.js';
import { bitfield, gidParam, num, page, parseSizeOption } from '../../src/rpc/aria2-values.js';
import { DownloadQueue, type JobRecord } from '../../src/rpc/queue.js';
import { jobOptions } from '../../src/rpc/job-options.js';

const rec = (gid: string, status: JobRecord['status']): JobRecord => ({
  gid,
  uris: ['http://127.0.0.1/x'],
  options: { dir: '/tmp', connectionsPerLink: 1, headers: {}, raw: {} },
  status,
  totalLength: 0,
  completedLength: 0,
});

test('dispatcher: token first for aria2.*, none for system.*, aria2 error shapes', async () => {
  const d = createDispatcher({ 'aria2.echo': (p) => p }, 'sekret');
  const ok = await d.dispatch({ jsonrpc: '2.0', id: 3, method: 'aria2.echo', params: ['token:sekret', 1] });
  assert.deepEqual(ok, { body: { id: 3, jsonrpc: '2.0', result: [1] }, status: 200 });
  const bad = await d.dispatch({ jsonrpc: '2.0', id: 'x', method: 'aria2.echo', params: ['token:no'] });
  assert.deepEqual(bad.body, { id: 'x', jsonrpc: '2.0', error: { code: 1, message: 'Unauthorized' } });
  assert.equal(bad.status, 400);
  const unknownNoToken = await d.dispatch({ jsonrpc: '2.0', id: 1, method: 'aria2.nope' });
  assert.equal((unknownNoToken.body as { error: { message: string } }).error.message, 'Unauthorized');
  const unknown = await d.dispatch({ jsonrpc: '2.0', id: 1, method: 'aria2.nope', params: ['token:sekret'] });
  assert.equal((unknown.body as { error: { message: string } }).error.message, 'No such method: aria2.nope');
  const parse = await d.dispatchText('{');
  assert.deepEqual(parse, {
    body: { id: null, jsonrpc: '2.0', error: { code: -32700, message: 'Parse error.' } },
    status: 500,
  });
  const list = await d.dispatch({ jsonrpc: '2.0', id: 1, method: 'system.listMethods' });
  assert.ok((list.body as { result: string[] }).result.includes('aria2.echo'));
  const proto = await d.dispatch({
    jsonrpc: '2.0',
    id: 1,
    method: 'aria2.toString',
    params: ['token:sekret'],
  });
  assert.equal(
    (proto.body as { error: { message: string } }).error.message,
    'No such method: aria2.toString',
  );
});

test('dispatcher: without a secret a token parameter is still stripped', async () => {
  const d = createDispatcher({ 'aria2.echo': (p) => p }, undefined);
  const r = await d.dispatch({ jsonrpc: '2.0', id: 1, method: 'aria2.echo', params: ['token:any', 'a'] });
  assert.deepEqual((r.body as { result: unknown }).result, ['a']);
});

test('page: aria2 offsets (negative = from the end, reversed)', () => {
  const xs = [0, 1, 2, 3, 4];
  const table: [number, number, number[]][] = [
    [0, 2, [0, 1]],
    [3, 10, [3, 4]],
    [-1, 2, [4, 3]],
    [-2, 10, [3, 2, 1, 0]],
    [-9, 3, []],
    [0, 0, []],
  ];
  for (const [o, n, want] of table) assert.deepEqual(page(xs, o, n), want, `${o},${n}`);
});

test('queue: toStart honours the limit and pauses; move; stopped trimming', () => {
  const q = new DownloadQueue();
  for (const [g, s] of [
    ['a', 'waiting'],
    ['b', 'paused'],
    ['c', 'waiting'],
    ['d', 'waiting'],
  ] as const)
    q.add(rec(g, s));
  assert.deepEqual(
    q.toStart(2).map((r) => r.gid),
    ['a', 'c'],
  );
  q.setStatus('a', 'active');
  assert.deepEqual(
    q.toStart(2).map((r) => r.gid),
    ['c'],
  );
  assert.equal(q.move('d', 0, 'POS_SET'), 0);
  assert.deepEqual(
    q.waitingList().map((r) => r.gid),
    ['d', 'b', 'c'],
  );
  assert.equal(q.move('d', 1, 'POS_CUR'), 1);
  assert.equal(q.move('d', -5, 'POS_END'), 0);
  q.setStatus('a', 'complete');
  q.setStatus('c', 'active');
  q.setStatus('c', 'error');
  assert.equal(q.stoppedTotal, 2);
  q.trimStopped(1);
  assert.deepEqual(
    q.stoppedList().map((r) => r.gid),
    ['c'],
  );
  assert.throws(() => q.removeResult('d'), /Could not remove/);
  q.drop('b');
  assert.equal(q.has('b'), false);
});

test('values: numbers as strings, gids, sizes, bitfield', () => {
  assert.equal(num(12.9), '12');
  assert.equal(gidParam('ABCDEF0123456789'), 'abcdef0123456789');
  assert.throws(() => gidParam('zz'), /Invalid GID zz/);
  assert.equal(parseSizeOption('1M'), 1024 * 1024);
  assert.equal(parseSizeOption('500K'), 500 * 1024);
  assert.equal(parseSizeOption('x'), undefined);
  assert.equal(bitfield([{ start: 0, end: 2 * 1048576 }], 3 * 1048576, 1048576), 'c0');
  assert.equal(bitfield([], 9 * 1048576, 1048576), '0000');
});

test('options: headers, reserved headers dropped, connections per link, unknown ignored', () => {
  const o = jobOptions(
    {
      header: ['Cookie: a=b', 'Range: bytes=0-1'],
      referer: 'http://r/',
      'max-connection-per-server': '4',
      'bt-whatever': 'x',
    },
    { dir: '/d', connectionsPerLink: 1 },
  );
  assert.deepEqual(o.headers, { cookie: 'a=b', referer: 'http://r/' });
  assert.equal(o.connectionsPerLink, 4);
  assert.equal(o.raw['bt-whatever'], undefined);
  assert.throws(() => jobOptions({ header: ['bad\r\nx: y'] }, { dir: '/d', connectionsPerLink: 1 }));
  assert.throws(() => jobOptions({ split: '0' }, { dir: '/d', connectionsPerLink: 1 }));
});
