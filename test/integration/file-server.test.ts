// The test file server over real HTTP on 127.0.0.1: Range semantics, and every bad-server switch.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  makeTestFile,
  startFileServer,
  type Behaviour,
  type FileServer,
} from '../../src/testbed/file-server.js';
import { makeSelfSignedCert } from '../../src/testbed/self-signed-cert.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body ended early (socket destroyed). */
  aborted: boolean;
  /** No byte arrived for `idleMs` while the body was incomplete. */
  stalled: boolean;
  reusedSocket: boolean;
}

interface RequestOpts {
  method?: string;
  headers?: Record<string, string>;
  agent?: http.Agent;
  idleMs?: number;
  ca?: string;
  /** Sent verbatim as the request target (a URL string would normalise `..` away). */
  rawPath?: string;
}

/** One request with Node's own client, so tests see exactly what the server sent. */
function request(url: string, opts: RequestOpts = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    let answered = false;
    const req = mod.request(
      {
        host: u.hostname,
        port: u.port,
        path: opts.rawPath ?? `${u.pathname}${u.search}`,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: opts.agent ?? false,
        ca: opts.ca,
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let stalled = false;
        let timer: NodeJS.Timeout | undefined;
        const arm = () => {
          if (opts.idleMs === undefined) return;
          clearTimeout(timer);
          timer = setTimeout(() => {
            stalled = true;
            req.destroy();
          }, opts.idleMs);
        };
        arm();
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          arm();
        });
        res.on('error', () => {}); // an early close is reported through `aborted`
        res.on('close', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            aborted: !res.complete && !stalled,
            stalled,
            reusedSocket: req.reusedSocket,
          });
        });
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.end();
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('file server', { timeout: 60_000 }, () => {
  let dir: string;
  let root: string;
  let small: Buffer;
  let smallSha: string;
  let bigSha: string;
  const SMALL = 100_000;
  const BIG = 32 * 1024 * 1024;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lmx-fs-test-'));
    root = path.join(dir, 'root');
    smallSha = await makeTestFile(root, 'small.bin', SMALL, 1);
    bigSha = await makeTestFile(root, 'big.bin', BIG, 2);
    await makeTestFile(path.join(root, 'sub'), 'nested.bin', 10, 3);
    small = await readFile(path.join(root, 'small.bin'));
    await writeFile(path.join(dir, 'secret.txt'), 'top secret\n');
    await symlink(path.join(dir, 'secret.txt'), path.join(root, 'link.bin'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function withServer(behaviour: Behaviour, fn: (s: FileServer) => Promise<void>): Promise<void> {
    const s = await startFileServer({ root, behaviour });
    try {
      await fn(s);
    } finally {
      await s.close();
    }
  }

  describe('plain', () => {
    let s: FileServer;
    let url: string;
    before(async () => {
      s = await startFileServer({ root });
      url = s.fileUrl('small.bin');
    });
    after(() => s.close());

    it('serves the whole file with validators', async () => {
      const r = await request(url);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], String(SMALL));
      assert.equal(r.headers['accept-ranges'], 'bytes');
      assert.match(r.headers.etag ?? '', /^"[0-9a-f]+-[0-9a-f]+"$/, 'strong ETag');
      assert.ok(!Number.isNaN(Date.parse(r.headers['last-modified'] ?? '')));
      assert.equal(sha(r.body), smallSha);
      assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    });

    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      ['bytes=1000-1999', 1000, 1999],
      ['bytes=99000-', 99000, SMALL - 1],
      ['bytes=-500', SMALL - 500, SMALL - 1],
      ['bytes=-999999', 0, SMALL - 1],
      ['bytes=99990-200000', 99990, SMALL - 1],
      ['bytes=5-5', 5, 5],
    ];
    for (const [range, start, end] of cases) {
      it(`answers ${range} with 206 ${start}-${end}`, async () => {
        const r = await request(url, { headers: { range } });
        assert.equal(r.status, 206);
        assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${SMALL}`);
        assert.equal(r.headers['content-length'], String(end - start + 1));
        assert.deepEqual(r.body, small.subarray(start, end + 1));
      });
    }

    for (const range of [`bytes=${SMALL}-`, `bytes=${SMALL + 5}-${SMALL + 10}`, 'bytes=-0']) {
      it(`answers unsatisfiable ${range} with 416`, async () => {
        const r = await request(url, { headers: { range } });
        assert.equal(r.status, 416);
        assert.equal(r.headers['content-range'], `bytes */${SMALL}`);
      });
    }

    for (const range of ['bytes=0-1,5-6', 'bytes=9-3', 'items=0-5', 'bytes=abc']) {
      it(`ignores malformed or multiple range ${range} (200, full body)`, async () => {
        const r = await request(url, { headers: { range } });
        assert.equal(r.status, 200);
        assert.equal(r.body.length, SMALL);
      });
    }

    it('honours If-Range: matching ETag or date → 206, anything else → 200 full', async () => {
      const head = await request(url, { method: 'HEAD' });
      const etag = head.headers.etag ?? '';
      const lm = head.headers['last-modified'] ?? '';
      const ranged = (ifRange: string) =>
        request(url, { headers: { range: 'bytes=10-19', 'if-range': ifRange } });
      assert.equal((await ranged(etag)).status, 206);
      assert.equal((await ranged(lm)).status, 206);
      const stale = await ranged('"0-0"');
      assert.equal(stale.status, 200);
      assert.equal(stale.body.length, SMALL);
      assert.equal((await ranged(`W/${etag}`)).status, 200, 'a weak tag never matches');
      assert.equal((await ranged(new Date(Date.parse(lm) - 60_000).toUTCString())).status, 200);
    });

    it('answers HEAD with the headers of GET and no body', async () => {
      const r = await request(url, { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], String(SMALL));
      assert.equal(r.body.length, 0);
      const rr = await request(url, { method: 'HEAD', headers: { range: 'bytes=0-9' } });
      assert.equal(rr.status, 206);
      assert.equal(rr.headers['content-range'], `bytes 0-9/${SMALL}`);
    });

    it('keeps the connection alive between requests', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const a = await request(url, { agent, headers: { range: 'bytes=0-9' } });
        const b = await request(url, { agent, headers: { range: 'bytes=10-19' } });
        assert.equal(a.reusedSocket, false);
        assert.equal(b.reusedSocket, true);
        assert.equal(b.headers.connection, 'keep-alive');
      } finally {
        agent.destroy();
      }
    });

    it('answers 404 for missing files and 405 for other methods', async () => {
      assert.equal((await request(s.fileUrl('nope.bin'))).status, 404);
      assert.equal((await request(`${s.url}/other`)).status, 404);
      assert.equal((await request(`${s.url}/files/sub`)).status, 404, 'a directory is not a file');
      assert.equal((await request(url, { method: 'POST' })).status, 405);
      assert.equal((await request(`${s.url}/files/sub/nested.bin`)).status, 200);
    });

    for (const p of [
      '/files/../secret.txt',
      '/files/%2e%2e/secret.txt',
      '/files/..%2fsecret.txt',
      '/files/link.bin',
      '/files/sub/..%2F..%2Fsecret.txt',
      '/files/%00',
    ]) {
      it(`refuses path traversal ${p}`, async () => {
        const r = await request(s.url, { rawPath: p });
        assert.equal(r.status, 403);
        assert.doesNotMatch(r.body.toString(), /secret/);
      });
    }

    it('streams a big file intact', async () => {
      const r = await request(s.fileUrl('big.bin'));
      assert.equal(r.status, 200);
      assert.equal(sha(r.body), bigSha);
    });

    it('stops reading the file while the client does not read (backpressure)', async () => {
      s.resetStats();
      await new Promise<void>((resolve, reject) => {
        const req = http.get(s.fileUrl('big.bin'), { agent: false }, (res) => {
          res.pause();
          setTimeout(() => {
            const sent = s.stats().log[0]?.bodyBytes ?? -1;
            req.destroy();
            try {
              assert.ok(sent > 0 && sent < BIG / 2, `server wrote ${sent} bytes to a paused client`);
              resolve();
            } catch (err) {
              reject(err as Error);
            }
          }, 400);
        });
        req.on('error', () => {});
      });
    });

    it('counts requests and body bytes per request', async () => {
      s.resetStats();
      await request(url, { headers: { range: 'bytes=0-99' } });
      await request(url, { method: 'HEAD' });
      await request(url);
      const st = s.stats();
      assert.equal(st.requests, 3);
      assert.equal(st.bodyBytes, 100 + SMALL);
      assert.deepEqual(
        st.log.map((r) => [r.seq > 0, r.method, r.path, r.range, r.status, r.bodyBytes, r.complete]),
        [
          [true, 'GET', '/files/small.bin', 'bytes=0-99', 206, 100, true],
          [true, 'HEAD', '/files/small.bin', undefined, 200, 0, true],
          [true, 'GET', '/files/small.bin', undefined, 200, SMALL, true],
        ],
      );
    });
  });

  describe('behaviours', () => {
    it('noRange: ignores Range and sends 200 with the whole body', () =>
      withServer({ noRange: true }, async (s) => {
        const r = await request(s.fileUrl('small.bin'), { headers: { range: 'bytes=0-9' } });
        assert.equal(r.status, 200);
        assert.equal(r.headers['accept-ranges'], undefined);
        assert.equal(r.headers['content-range'], undefined);
        assert.equal(r.body.length, SMALL);
      }));

    it('redirect: /redirect/3/<name> takes 3 hops to /files/<name>; /redirect-loop loops', () =>
      withServer({ redirect: true }, async (s) => {
        let where = '/redirect/3/small.bin';
        const hops: string[] = [];
        for (let i = 0; i < 10 && !where.startsWith('/files/'); i++) {
          const r = await request(`${s.url}${where}`);
          assert.equal(r.status, 302);
          where = r.headers.location ?? '';
          hops.push(where);
        }
        assert.deepEqual(hops, ['/redirect/2/small.bin', '/redirect/1/small.bin', '/files/small.bin']);
        const loop = await request(`${s.url}/redirect-loop`);
        assert.equal(loop.status, 302);
        assert.equal(loop.headers.location, '/redirect-loop');
      }));

    it('redirect paths are 404 unless the switch is on', () =>
      withServer({}, async (s) => {
        assert.equal((await request(`${s.url}/redirect/1/small.bin`)).status, 404);
      }));

    it('dropAfterBytes: cuts the first `times` bodies after exactly `bytes`, then behaves', () =>
      withServer({ dropAfterBytes: { bytes: 1000, times: 2 } }, async (s) => {
        for (let i = 0; i < 2; i++) {
          const r = await request(s.fileUrl('small.bin'));
          assert.equal(r.status, 200);
          assert.equal(r.aborted, true);
          assert.deepEqual(r.body, small.subarray(0, 1000));
        }
        const ok = await request(s.fileUrl('small.bin'));
        assert.equal(ok.aborted, false);
        assert.equal(ok.body.length, SMALL);
        assert.deepEqual(
          s.stats().log.map((r) => [r.bodyBytes, r.complete]),
          [
            [1000, false],
            [1000, false],
            [SMALL, true],
          ],
        );
      }));

    it('dropAfterBytes: ranged bodies shorter than `bytes` are not cut and do not count', () =>
      withServer({ dropAfterBytes: { bytes: 1000, times: 1 } }, async (s) => {
        const short = await request(s.fileUrl('small.bin'), { headers: { range: 'bytes=0-99' } });
        assert.equal(short.aborted, false);
        const cut = await request(s.fileUrl('small.bin'), { headers: { range: 'bytes=5000-' } });
        assert.equal(cut.status, 206);
        assert.equal(cut.aborted, true);
        assert.deepEqual(cut.body, small.subarray(5000, 6000));
      }));

    it('lieContentRange: answers 206 for a different range than asked, body matching the lie', () =>
      withServer({ lieContentRange: true }, async (s) => {
        const r = await request(s.fileUrl('small.bin'), { headers: { range: 'bytes=100-199' } });
        assert.equal(r.status, 206);
        assert.equal(r.headers['content-range'], `bytes 99-198/${SMALL}`);
        assert.deepEqual(r.body, small.subarray(99, 199));
        const z = await request(s.fileUrl('small.bin'), { headers: { range: 'bytes=0-99' } });
        assert.equal(z.headers['content-range'], `bytes 1-100/${SMALL}`);
        const full = await request(s.fileUrl('small.bin'));
        assert.equal(full.status, 200, 'requests without Range are answered honestly');
      }));

    it('changeAfterRequests: after n requests the validators and every byte change', () =>
      withServer({ changeAfterRequests: 2 }, async (s) => {
        const a = await request(s.fileUrl('small.bin'));
        const b = await request(s.fileUrl('small.bin'), { method: 'HEAD' });
        assert.equal(b.headers.etag, a.headers.etag);
        assert.equal(sha(a.body), smallSha);
        const c = await request(s.fileUrl('small.bin'), {
          headers: { range: 'bytes=0-9', 'if-range': a.headers.etag ?? '' },
        });
        assert.equal(c.status, 200, 'If-Range with the old ETag gets the whole new file');
        assert.notEqual(c.headers.etag, a.headers.etag);
        assert.notEqual(c.headers['last-modified'], a.headers['last-modified']);
        assert.equal(c.body.length, SMALL);
        assert.deepEqual(c.body, Buffer.from(small.map((x) => x ^ 0xff)));
        const d = await request(s.fileUrl('small.bin'), { headers: { range: 'bytes=10-19' } });
        assert.deepEqual(d.body, Buffer.from(small.subarray(10, 20).map((x) => x ^ 0xff)));
      }));

    it('status: answers the first `times` requests with the code, then serves', () =>
      withServer({ status: { code: 503, times: 2 } }, async (s) => {
        assert.equal((await request(s.fileUrl('small.bin'))).status, 503);
        assert.equal((await request(s.fileUrl('small.bin'), { method: 'HEAD' })).status, 503);
        assert.equal((await request(s.fileUrl('small.bin'))).status, 200);
      }));

    it('status without times: every request', () =>
      withServer({ status: { code: 500 } }, async (s) => {
        for (let i = 0; i < 3; i++) assert.equal((await request(s.fileUrl('small.bin'))).status, 500);
      }));

    it('stallAfterBytes: sends some bytes, then nothing, keeping the socket open; close() still ends it', () =>
      withServer({ stallAfterBytes: 5000 }, async (s) => {
        const r = await request(s.fileUrl('small.bin'), { idleMs: 300 });
        assert.equal(r.status, 200);
        assert.equal(r.stalled, true);
        assert.equal(r.aborted, false);
        assert.deepEqual(r.body, small.subarray(0, 5000));
        // A stalled request the client does not give up on must not keep close() waiting.
        const pending = request(s.fileUrl('small.bin'));
        await new Promise((res) => setTimeout(res, 100));
        const t = Date.now();
        await s.close();
        assert.ok(Date.now() - t < 1000);
        const late = await pending;
        assert.equal(late.aborted, true);
        assert.equal(late.body.length, 5000);
      }));

    it('setBehaviour switches at run time and resets the switch counters', () =>
      withServer({ status: { code: 500, times: 1 } }, async (s) => {
        assert.equal((await request(s.fileUrl('small.bin'))).status, 500);
        assert.equal((await request(s.fileUrl('small.bin'))).status, 200);
        s.setBehaviour({ status: { code: 429, times: 1 } });
        assert.equal((await request(s.fileUrl('small.bin'))).status, 429);
        assert.equal((await request(s.fileUrl('small.bin'))).status, 200);
      }));
  });

  it('serves HTTPS with the given key and certificate', async () => {
    const { key, cert } = await makeSelfSignedCert(dir);
    const s = await startFileServer({ root, tls: { key, cert } });
    try {
      assert.match(s.url, /^https:\/\//);
      const r = await request(s.fileUrl('small.bin'), { ca: cert, headers: { range: 'bytes=-10' } });
      assert.equal(r.status, 206);
      assert.deepEqual(r.body, small.subarray(SMALL - 10));
    } finally {
      await s.close();
    }
  });

  it('makeTestFile is deterministic per seed', async () => {
    const d = path.join(dir, 'det');
    const a = await makeTestFile(d, 'a', 3 * 1024 * 1024 + 7, 42);
    const b = await makeTestFile(d, 'b', 3 * 1024 * 1024 + 7, 42);
    const c = await makeTestFile(d, 'c', 3 * 1024 * 1024 + 7, 43);
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.equal(sha(await readFile(path.join(d, 'a'))), a);
    assert.equal(await makeTestFile(d, 'empty', 0), sha(Buffer.alloc(0)));
  });
});
