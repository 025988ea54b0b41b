/**
 * The aria2 JSON-RPC of linkmux against the real aria2c: the same sequence of
 * calls runs against `aria2c --enable-rpc` and against linkmux's RPC service,
 * both downloading from one file server on loopback, and every response must
 * have the same keys and the same JSON types (values may differ: GIDs, speeds).
 *
 * Deliberate differences, each checked in its own way below:
 *   - getOption / getGlobalOption: linkmux shows the options it supports, a
 *     subset of aria2's (no BitTorrent, FTP, …): checked as "a map of strings
 *     whose keys are all aria2 option names".
 *   - system.listMethods: linkmux lacks addTorrent, addMetalink, changeUri,
 *     shutdown, forceShutdown (HTTP(S) only; the daemon is stopped by its
 *     service manager): checked as "a subset of aria2's list".
 *   - getVersion: the version is linkmux's own and enabledFeatures lists what
 *     linkmux has: same keys and types.
 *   - error messages: codes and shapes equal; the texts of Unauthorized and
 *     "No such method" equal too (clients match on them), other texts free.
 * Needs aria2c (scripts/system-deps.sh installs it); skipped, naming it, without.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startFileServer, makeTestFile, type FileServer } from '../../src/testbed/file-server.js';
import { startRpcService, type RpcService } from '../../src/rpc/rpc-service.js';
import { silentLogger } from '../../src/util/logger.js';
import { loopbackLinks, tempDir, sha256 } from '../helpers/loopback.js';
import { jsonType, shapeDiff } from '../helpers/json-shape.js';

const SECRET = 'cmp-secret';
const KiB = 1024;
const hasAria2 = spawnSync('aria2c', ['--version']).status === 0;
const skip = hasAria2 ? false : 'aria2c is not installed (scripts/system-deps.sh installs it)';

interface Reply {
  id?: unknown;
  jsonrpc?: string;
  result?: unknown;
  error?: { code: number; message: string };
}

interface Target {
  name: string;
  url: string;
  dir: string;
  call(method: string, ...params: unknown[]): Promise<Reply>;
  raw(
    body: string,
    headers?: Record<string, string>,
  ): Promise<{ status: number; headers: Headers; text: string }>;
}

function target(name: string, base: string, dir: string): Target {
  const raw: Target['raw'] = async (body, headers = {}) => {
    const r = await fetch(`${base}/jsonrpc`, {
      method: 'POST',
      body,
      headers,
      signal: AbortSignal.timeout(5000),
    });
    return { status: r.status, headers: r.headers, text: await r.text() };
  };
  return {
    name,
    url: base,
    dir,
    raw,
    async call(method, ...params) {
      const p = method.startsWith('system.') ? params : [`token:${SECRET}`, ...params];
      const r = await raw(JSON.stringify({ jsonrpc: '2.0', id: 'q', method, params: p }));
      return JSON.parse(r.text) as Reply;
    },
  };
}

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  return port;
}

async function until<T>(
  what: string,
  ms: number,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
): Promise<T> {
  const end = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await probe();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms (last ${JSON.stringify(last)?.slice(0, 400)})`);
}

let work: Awaited<ReturnType<typeof tempDir>> | undefined;
let files: FileServer | undefined;
let aria: ChildProcess | undefined;
let lmx: RpcService | undefined;
let ariaT: Target;
let lmxT: Target;
let smallSha = '';

before(async () => {
  if (!hasAria2) return;
  work = await tempDir('lmx-rpc-cmp-');
  const root = join(work.dir, 'root');
  await makeTestFile(root, 'big.bin', 4 * 1024 * KiB, 'big');
  smallSha = await makeTestFile(root, 'small.bin', 300 * KiB, 'small');
  // Paced, so the big download stays active while the calls look at it.
  files = await startFileServer({ root, behaviour: { rateBytesPerSec: 256 * KiB } });
  const ariaDir = join(work.dir, 'aria');
  const lmxDir = join(work.dir, 'lmx');
  await mkdir(ariaDir);
  await mkdir(lmxDir);
  const port = await freePort();
  aria = spawn(
    'aria2c',
    [
      '--enable-rpc',
      `--rpc-listen-port=${port}`,
      '--rpc-listen-all=false',
      '--rpc-allow-origin-all',
      `--rpc-secret=${SECRET}`,
      '--no-conf',
      `--dir=${ariaDir}`,
      `--save-session=${join(work.dir, 'aria.session')}`,
      '--quiet',
    ],
    { stdio: 'ignore' },
  );
  ariaT = target('aria2c', `http://127.0.0.1:${port}`, ariaDir);
  lmx = await startRpcService({
    listen: '127.0.0.1:0',
    secret: SECRET,
    stateDir: join(work.dir, 'state'),
    dir: lmxDir,
    maxConcurrentDownloads: 5,
    connectionsPerLink: 1,
    links: () => loopbackLinks(2),
    logger: silentLogger,
  });
  lmxT = target('linkmux', `http://${lmx.address}`, lmxDir);
  await until(
    'aria2c answers',
    10_000,
    () => ariaT.call('aria2.getVersion').catch(() => ({}) as Reply),
    (r) => !!r.result,
  );
});

after(async () => {
  try {
    await lmx?.close();
  } finally {
    if (aria && aria.exitCode === null) {
      aria.kill('SIGKILL');
      await once(aria, 'exit');
    }
    await files?.close();
    await work?.cleanup();
  }
});

/** One step of the scenario: a label and the reply each side gave. */
type Step = { label: string; reply: Reply; compare?: 'shape' | 'stringMap' | 'subset' };

/** The scenario, run identically against one target; returns every reply. */
async function scenario(t: Target): Promise<Step[]> {
  const steps: Step[] = [];
  const rec = async (label: string, p: Promise<Reply>, compare: Step['compare'] = 'shape') => {
    const reply = await p;
    steps.push({ label, reply, compare });
    return reply;
  };
  const status = (gid: string) =>
    t.call('aria2.tellStatus', gid).then((r) => r.result as Record<string, string>);
  const big = files!.fileUrl('big.bin');
  const small = files!.fileUrl('small.bin');

  await rec('getVersion', t.call('aria2.getVersion'));
  await rec('getSessionInfo', t.call('aria2.getSessionInfo'));
  await rec('system.listMethods', t.call('system.listMethods'), 'subset');
  await rec('system.listNotifications', t.call('system.listNotifications'));
  const a = (
    await rec(
      'addUri (options)',
      t.call('aria2.addUri', [big], {
        out: 'big.bin',
        split: '2',
        'max-connection-per-server': '1',
        header: ['X-Test: 1'],
        referer: 'http://127.0.0.1/ref',
        'user-agent': 'cmp-test',
        'some-unknown-option': 'x',
      }),
    )
  ).result as string;
  const b = (
    await rec('addUri (pause)', t.call('aria2.addUri', [small], { out: 'small.bin', pause: 'true' }))
  ).result as string;
  const c = (await rec('addUri (404)', t.call('aria2.addUri', [files!.fileUrl('missing.bin')])))
    .result as string;
  await until(
    `${t.name}: big active with a size`,
    15_000,
    () => status(a),
    (s) => s.status === 'active' && s.totalLength !== '0',
  );
  await until(
    `${t.name}: 404 in error`,
    15_000,
    () => status(c),
    (s) => s.status === 'error',
  );

  await rec('tellStatus (active)', t.call('aria2.tellStatus', a));
  await rec(
    'tellStatus (keys)',
    t.call('aria2.tellStatus', a, ['gid', 'status', 'totalLength', 'no-such-key']),
  );
  await rec('tellActive', t.call('aria2.tellActive'));
  await rec('tellActive (keys)', t.call('aria2.tellActive', ['gid', 'completedLength']));
  await rec('tellWaiting', t.call('aria2.tellWaiting', 0, 10));
  await rec('tellWaiting (keys, negative offset)', t.call('aria2.tellWaiting', -1, 10, ['gid', 'status']));
  await rec('tellStopped (error)', t.call('aria2.tellStopped', 0, 10));
  await rec('getGlobalStat', t.call('aria2.getGlobalStat'));
  await rec('getFiles', t.call('aria2.getFiles', a));
  await rec('getUris', t.call('aria2.getUris', a));
  await rec('getServers', t.call('aria2.getServers', a));
  await rec('getServers (not active)', t.call('aria2.getServers', b));
  await rec('getPeers', t.call('aria2.getPeers', a));
  await rec('getOption', t.call('aria2.getOption', a), 'stringMap');
  await rec('changeOption (paused)', t.call('aria2.changeOption', b, { 'max-connection-per-server': '2' }));
  await rec('getGlobalOption', t.call('aria2.getGlobalOption'), 'stringMap');
  await rec(
    'changeGlobalOption',
    t.call('aria2.changeGlobalOption', {
      'max-concurrent-downloads': '4',
      'max-overall-download-limit': '0',
      dir: t.dir,
    }),
  );
  await rec('changePosition', t.call('aria2.changePosition', b, 0, 'POS_SET'));
  await rec('changePosition (bad how)', t.call('aria2.changePosition', b, 0, 'POS_NOPE'));

  await rec('pause', t.call('aria2.pause', a));
  await until(
    `${t.name}: big paused`,
    15_000,
    () => status(a),
    (s) => s.status === 'paused',
  );
  await rec('tellStatus (paused)', t.call('aria2.tellStatus', a));
  await rec('forcePause (already paused)', t.call('aria2.forcePause', b));
  await rec('unpause', t.call('aria2.unpause', a));
  await rec('unpause (not paused)', t.call('aria2.unpause', a));
  await rec('pauseAll', t.call('aria2.pauseAll'));
  await until(
    `${t.name}: all paused`,
    15_000,
    () => status(a),
    (s) => s.status === 'paused',
  );
  await rec('unpauseAll', t.call('aria2.unpauseAll'));
  await until(
    `${t.name}: small complete`,
    20_000,
    () => status(b),
    (s) => s.status === 'complete',
  );
  await rec('tellStatus (complete)', t.call('aria2.tellStatus', b));
  await until(
    `${t.name}: big active again`,
    15_000,
    () => status(a),
    (s) => s.status === 'active',
  );
  await rec('forcePause', t.call('aria2.forcePause', a));
  await until(
    `${t.name}: big paused again`,
    15_000,
    () => status(a),
    (s) => s.status === 'paused',
  );
  await rec('unpause (again)', t.call('aria2.unpause', a));
  await until(
    `${t.name}: big active once more`,
    15_000,
    () => status(a),
    (s) => s.status === 'active',
  );
  await rec('remove', t.call('aria2.remove', a));
  await until(
    `${t.name}: big removed`,
    15_000,
    () => status(a),
    (s) => s.status === 'removed',
  );
  await rec('tellStatus (removed)', t.call('aria2.tellStatus', a));
  await rec('forceRemove (stopped)', t.call('aria2.forceRemove', a));
  const p = (await rec('addUri (paused, then removed)', t.call('aria2.addUri', [small], { pause: 'true' })))
    .result as string;
  await rec('remove (paused)', t.call('aria2.remove', p));
  await new Promise((r) => setTimeout(r, 300));
  await rec('tellStatus (removed while paused: gone)', t.call('aria2.tellStatus', p));
  await rec('tellStopped', t.call('aria2.tellStopped', 0, 10));
  await rec('tellStopped (keys, negative offset)', t.call('aria2.tellStopped', -1, 2, ['gid', 'errorCode']));
  await rec('removeDownloadResult', t.call('aria2.removeDownloadResult', c));
  await rec('removeDownloadResult (unknown)', t.call('aria2.removeDownloadResult', c));
  await rec('getGlobalStat (after)', t.call('aria2.getGlobalStat'));
  await rec('saveSession', t.call('aria2.saveSession'));
  await rec('purgeDownloadResult', t.call('aria2.purgeDownloadResult'));
  await rec('tellStatus (unknown gid)', t.call('aria2.tellStatus', '0123456789abcdef'));
  await rec('tellStatus (invalid gid)', t.call('aria2.tellStatus', 'zz'));
  await rec('addUri (wrong type)', t.call('aria2.addUri', 'not-an-array'));
  await rec('unknown method', t.call('aria2.noSuchMethod'));
  const wrong = await t.raw(
    JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'aria2.getGlobalStat', params: ['token:wrong'] }),
  );
  steps.push({ label: 'wrong token', reply: JSON.parse(wrong.text) as Reply });
  const none = await t.raw(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'aria2.tellActive' }));
  steps.push({ label: 'no token', reply: JSON.parse(none.text) as Reply });
  await rec(
    'system.multicall',
    t.call('system.multicall', [
      { methodName: 'aria2.getGlobalStat', params: [`token:${SECRET}`] },
      { methodName: 'aria2.noSuchMethod', params: [`token:${SECRET}`] },
      { methodName: 'aria2.getGlobalStat', params: ['token:wrong'] },
    ]),
  );
  const batch = await t.raw(
    JSON.stringify([
      { jsonrpc: '2.0', id: 'a', method: 'aria2.getGlobalStat', params: [`token:${SECRET}`] },
      { jsonrpc: '2.0', id: 'b', method: 'aria2.getGlobalStat' },
    ]),
  );
  steps.push({ label: 'batch', reply: { result: JSON.parse(batch.text) as unknown } });
  const parse = await t.raw('{not json');
  steps.push({ label: 'parse error', reply: JSON.parse(parse.text) as Reply });
  return steps;
}

test('every listed method answers with aria2c’s keys and JSON types', { skip }, async () => {
  const [theirs, ours] = await Promise.all([scenario(ariaT), scenario(lmxT)]);
  assert.equal(ours.length, theirs.length);
  const problems: string[] = [];
  theirs.forEach((t, i) => {
    const o = ours[i]!;
    assert.equal(o.label, t.label);
    const where = `${t.label}:`;
    if ((t.reply.error === undefined) !== (o.reply.error === undefined)) {
      problems.push(
        `${where} aria2 ${JSON.stringify(t.reply).slice(0, 200)} vs linkmux ${JSON.stringify(o.reply).slice(0, 200)}`,
      );
      return;
    }
    if (t.reply.error) {
      problems.push(...shapeDiff(t.reply, o.reply).map((d) => `${where} ${d}`));
      assert.equal(o.reply.error?.code, t.reply.error.code, `${where} error code`);
      if (/^(Unauthorized|No such method)/.test(t.reply.error.message)) {
        assert.equal(o.reply.error?.message, t.reply.error.message, `${where} error message`);
      }
      return;
    }
    if (t.compare === 'stringMap') {
      const theirsMap = t.reply.result as Record<string, unknown>;
      const oursMap = o.reply.result as Record<string, unknown>;
      assert.equal(jsonType(oursMap), 'object', where);
      for (const [k, v] of Object.entries(oursMap)) {
        if (typeof v !== 'string')
          problems.push(`${where} ${k} is ${jsonType(v)}, aria2 options are strings`);
        if (!(k in theirsMap)) problems.push(`${where} ${k} is not an aria2 option`);
      }
      return;
    }
    if (t.compare === 'subset') {
      const theirsList = t.reply.result as string[];
      for (const m of o.reply.result as string[]) {
        if (!theirsList.includes(m)) problems.push(`${where} ${m} is not an aria2 method`);
      }
      return;
    }
    problems.push(...shapeDiff(t.reply, o.reply).map((d) => `${where} ${d}`));
  });
  assert.deepEqual(problems, []);

  // Every method of the list was called.
  const called = new Set(theirs.map((s) => s.label.split(' ')[0]));
  for (const m of [
    'addUri',
    'tellStatus',
    'tellActive',
    'tellWaiting',
    'tellStopped',
    'getGlobalStat',
    'getFiles',
    'getUris',
    'getServers',
    'getPeers',
    'pause',
    'forcePause',
    'pauseAll',
    'unpause',
    'unpauseAll',
    'remove',
    'forceRemove',
    'removeDownloadResult',
    'purgeDownloadResult',
    'changePosition',
    'getOption',
    'changeOption',
    'getGlobalOption',
    'changeGlobalOption',
    'getVersion',
    'getSessionInfo',
    'saveSession',
    'system.multicall',
    'system.listMethods',
    'system.listNotifications',
  ]) {
    assert.ok(called.has(m), `${m} is not covered`);
  }
  // The completed download landed intact where out said.
  assert.equal(sha256(await readFile(join(lmxT.dir, 'small.bin'))), smallSha);
});

test('HTTP framing and CORS as aria2c --rpc-allow-origin-all', { skip }, async () => {
  for (const t of [ariaT, lmxT]) {
    const ok = await t.raw(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'system.listNotifications' }), {
      origin: 'http://ariang.example',
    });
    assert.equal(ok.status, 200, t.name);
    assert.equal(ok.headers.get('access-control-allow-origin'), '*', t.name);
    assert.match(ok.headers.get('content-type') ?? '', /application\/json-rpc/, t.name);
    const bad = await t.raw(
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'aria2.nope', params: [`token:${SECRET}`] }),
    );
    assert.equal(bad.status, 400, t.name);
    const parse = await t.raw('{');
    assert.equal(parse.status, 500, t.name);
    const pre = await fetch(`${t.url}/jsonrpc`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://ariang.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    assert.equal(pre.status, 200, t.name);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*', t.name);
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/, t.name);
    assert.equal(pre.headers.get('access-control-allow-headers'), 'content-type', t.name);
  }
});

test('WebSocket: calls and aria2.onDownload* notifications have aria2c’s shape', { skip }, async () => {
  const collect = async (t: Target) => {
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/jsonrpc`);
    const frames: Record<string, unknown>[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d)) as Record<string, unknown>));
    try {
      await once(ws, 'open');
      ws.send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 'w1',
          method: 'aria2.addUri',
          params: [`token:${SECRET}`, [files!.fileUrl('small.bin')], { out: 'ws-small.bin' }],
        }),
      );
      await until(
        `${t.name}: complete notification`,
        20_000,
        async () => frames,
        (f) => f.some((x) => x.method === 'aria2.onDownloadComplete'),
      );
      return frames;
    } finally {
      ws.terminate();
    }
  };
  const [theirs, ours] = await Promise.all([collect(ariaT), collect(lmxT)]);
  for (const kind of ['w1', 'aria2.onDownloadStart', 'aria2.onDownloadComplete']) {
    const pick = (f: Record<string, unknown>[]) => f.find((x) => x.id === kind || x.method === kind);
    assert.ok(pick(theirs), `aria2c sent ${kind}`);
    assert.ok(pick(ours), `linkmux sent ${kind}`);
    assert.deepEqual(shapeDiff(pick(theirs), pick(ours)), [], kind);
  }
  assert.equal(sha256(await readFile(join(lmxT.dir, 'ws-small.bin'))), smallSha);
});
