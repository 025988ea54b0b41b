/* eslint-disable @typescript-eslint/no-explicit-any -- replies are read loosely here; their types are checked against aria2c in rpc-vs-aria2.test.ts */
/**
 * linkmux's aria2 JSON-RPC beyond the comparison with aria2c: a restarted
 * service lists finished results and resumes an unfinished job without
 * refetching its saved bytes; /jsonrpc on the control server; the origin
 * policy without a secret; `--rpc` beyond loopback needs a secret.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startFileServer, makeTestFile, type FileServer } from '../../src/testbed/file-server.js';
import { startRpcService, type RpcService } from '../../src/rpc/rpc-service.js';
import { startControlServer } from '../../src/control/control-server.js';
import { jsonRpcRoute } from '../../src/rpc/rpc-endpoint.js';
import { parseConfig } from '../../src/config/load.js';
import { redactConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/util/logger.js';
import { loopbackLinks, sha256, tempDir } from '../helpers/loopback.js';

const KiB = 1024;
let work: Awaited<ReturnType<typeof tempDir>>;
let files: FileServer;
let bigSha = '';
let smallSha = '';
const FILE_SIZE = 3 * 1024 * KiB;

before(async () => {
  work = await tempDir('lmx-rpc-svc-');
  bigSha = await makeTestFile(join(work.dir, 'root'), 'big.bin', FILE_SIZE, 'svc-big');
  smallSha = await makeTestFile(join(work.dir, 'root'), 'small.bin', 100 * KiB, 'svc-small');
  files = await startFileServer({ root: join(work.dir, 'root'), behaviour: { rateBytesPerSec: 512 * KiB } });
});

after(async () => {
  await files?.close();
  await work?.cleanup();
});

function service(listen: string | undefined, secret?: string): Promise<RpcService> {
  return startRpcService({
    listen,
    secret,
    stateDir: join(work.dir, 'state'),
    dir: join(work.dir, 'dl'),
    maxConcurrentDownloads: 2,
    connectionsPerLink: 1,
    links: () => loopbackLinks(2),
    logger: silentLogger,
  });
}

async function call(
  base: string,
  method: string,
  params: unknown[] = [],
  headers: Record<string, string> = {},
) {
  const r = await fetch(`${base}/jsonrpc`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(5000),
  });
  const text = await r.text();
  return {
    status: r.status,
    body: text.startsWith('{') ? (JSON.parse(text) as { result?: any; error?: any }) : text,
  };
}

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

test('a restarted service lists finished results and resumes without refetching saved bytes', async () => {
  let svc = await service('127.0.0.1:0');
  let base = `http://${svc.address}`;
  let gidBig = '';
  let savedBefore = 0;
  try {
    const small = await call(base, 'aria2.addUri', [[files.fileUrl('small.bin')], { out: 'small.bin' }]);
    const big = await call(base, 'aria2.addUri', [[files.fileUrl('big.bin')], { out: 'big.bin' }]);
    gidBig = (big.body as { result: string }).result;
    const gidSmall = (small.body as { result: string }).result;
    await until('small complete', 15_000, async () => {
      const s = await call(base, 'aria2.tellStatus', [gidSmall, ['status']]);
      return (s.body as any).result.status === 'complete';
    });
    // Let the big one save some bytes (the control file is written every second).
    await until('big 1 MiB in', 15_000, async () => {
      const s = await call(base, 'aria2.tellStatus', [gidBig, ['completedLength']]);
      return Number((s.body as any).result.completedLength) > 1024 * KiB;
    });
    await new Promise((r) => setTimeout(r, 1200));
  } finally {
    await svc.close();
  }
  files.resetStats();
  svc = await service('127.0.0.1:0');
  base = `http://${svc.address}`;
  try {
    const stopped = await call(base, 'aria2.tellStopped', [0, 10, ['status', 'files']]);
    assert.equal((stopped.body as any).result.length, 1, 'the finished result is listed after the restart');
    assert.equal((stopped.body as any).result[0].status, 'complete');
    const st = await call(base, 'aria2.tellStatus', [gidBig, ['status', 'completedLength']]);
    savedBefore = Number((st.body as any).result.completedLength);
    assert.ok(savedBefore > 0, 'the unfinished job kept its progress');
    await until('big complete after restart', 20_000, async () => {
      const s = await call(base, 'aria2.tellStatus', [gidBig, ['status']]);
      return (s.body as any).result.status === 'complete';
    });
    assert.equal(sha256(await readFile(join(work.dir, 'dl', 'big.bin'))), bigSha);
    assert.equal(sha256(await readFile(join(work.dir, 'dl', 'small.bin'))), smallSha);
    const refetched = files.stats().bodyBytes;
    assert.ok(
      refetched <= FILE_SIZE - savedBefore + 512 * KiB,
      `after the restart ${refetched} bytes were fetched, ${savedBefore} of ${FILE_SIZE} were saved`,
    );
  } finally {
    await svc.close();
  }
});

test('/jsonrpc on the control server, and the origin policy without a secret', async () => {
  const svc = await service(undefined);
  const control = await startControlServer({
    listen: '127.0.0.1:0',
    status: () => ({}) as never,
    logger: silentLogger,
    routes: [jsonRpcRoute(svc.endpoint)],
  });
  const base = `http://${control.address}`;
  try {
    const stat = await call(base, 'aria2.getGlobalStat');
    assert.equal(stat.status, 200);
    assert.equal(typeof (stat.body as any).result.numActive, 'string');
    // Same origin (the dashboard): allowed.
    const same = await call(base, 'aria2.getGlobalStat', [], { origin: base });
    assert.equal(same.status, 200);
    // Another origin without a secret: any web page could add downloads, so refused.
    const other = await call(base, 'aria2.getGlobalStat', [], { origin: 'http://evil.example' });
    assert.equal(other.status, 403);
    // DNS rebinding: a Host that is a foreign name.
    const port = Number(control.address.split(':').pop());
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/jsonrpc', method: 'POST', headers: { host: 'evil.example' } },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(status, 403);
  } finally {
    await control.close();
    await svc.close();
  }
});

test('with a secret: Unauthorized without it, CORS for other origins', async () => {
  const svc = await service('127.0.0.1:0', 's3cret');
  const base = `http://${svc.address}`;
  try {
    const no = await call(base, 'aria2.getGlobalStat', ['token:nope']);
    assert.deepEqual((no.body as any).error, { code: 1, message: 'Unauthorized' });
    const yes = await call(base, 'aria2.getGlobalStat', ['token:s3cret'], {
      origin: 'http://ariang.example',
    });
    assert.equal(yes.status, 200);
    assert.ok(!JSON.stringify(yes.body).includes('s3cret'));
  } finally {
    await svc.close();
  }
});

test('config: rpc beyond loopback needs a secret, and config show redacts it', () => {
  assert.throws(
    () => parseConfig({ rpc: { enabled: true, listen: '0.0.0.0:6800' } }, 't'),
    /rpc\.listen|rpc.secret/,
  );
  const c = parseConfig({ rpc: { enabled: true, listen: '0.0.0.0:6800', secret: 'hunter2' } }, 't');
  assert.equal(redactConfig(c).rpc.secret, '***');
  assert.ok(!JSON.stringify(redactConfig(c)).includes('hunter2'));
});
