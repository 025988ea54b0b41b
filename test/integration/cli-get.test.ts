/**
 * The `linkmux get` CLI as a user runs it: a spawned process against a paced
 * server on loopback. kill -9 mid-download, then -c, must give a byte-identical
 * file without asking again for ranges the control file had; bad flags must
 * fail with a clear message and the right exit code.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startFileServer, type FileServer } from '../../src/testbed/file-server.js';
import { randomFile, sha256File, tempDir } from '../helpers/loopback.js';
import { cliPath } from '../helpers/netns.js';

const MiB = 1024 * 1024;
let root: { dir: string; cleanup: () => Promise<void> };
let server: FileServer;
let sum: string;

before(async () => {
  root = await tempDir('lmx-cli-');
  await mkdir(join(root.dir, 'srv'));
  sum = await randomFile(join(root.dir, 'srv'), 'f.bin', 4 * MiB);
  server = await startFileServer({ root: join(root.dir, 'srv') });
});

after(async () => {
  await server.close();
  await root.cleanup();
});

function cli(args: string[]) {
  const child = spawn(process.execPath, [cliPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const done = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal,
    stdout,
    stderr,
  }));
  return { child, done, out: () => stdout };
}

test('kill -9 mid-download, then -c: byte-identical, finished ranges not fetched again', async () => {
  const out = join(root.dir, 'killed.bin');
  server.setBehaviour({ rateBytesPerSec: 1_000_000 }); // 3 connections × 1 MB/s: about 1.4 s in all
  server.resetStats();
  const first = cli(['get', '--link', 'lo', '-x', '3', '--json', '-o', out, server.fileUrl('f.bin')]);
  // Kill once the control file records some bytes (bounded wait).
  let done: [number, number][] = [];
  for (let i = 0; i < 100 && done.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      const ctl = JSON.parse(await readFile(`${out}.linkmux`, 'utf8')) as { done: [number, number][] };
      if (ctl.done.reduce((s, [a, b]) => s + (b - a), 0) > 500_000) done = ctl.done;
    } catch {
      // not written yet (or mid-rename): look again
    }
  }
  first.child.kill('SIGKILL');
  const killed = await first.done;
  assert.equal(killed.signal, 'SIGKILL', 'the process was really killed mid-download');
  await stat(`${out}.part`);
  // Re-read after the kill: the file on disk is what counts.
  const ctl = JSON.parse(await readFile(`${out}.linkmux`, 'utf8')) as { done: [number, number][] };
  const doneBytes = ctl.done.reduce((s, [a, b]) => s + (b - a), 0);
  assert.ok(doneBytes > 0 && doneBytes < 4 * MiB, `control file records ${doneBytes} bytes`);

  server.setBehaviour({});
  server.resetStats();
  const second = await cli([
    'get',
    '--link',
    'lo',
    '-x',
    '3',
    '-c',
    '--quiet',
    '-o',
    out,
    server.fileUrl('f.bin'),
  ]).done;
  assert.equal(second.code, 0, second.stderr);
  assert.equal(await sha256File(out), sum);
  const [, ...ranged] = server.stats().log; // the first is the probe
  for (const r of ranged) {
    const m = /bytes=(\d+)-(\d+)/.exec(r.range ?? '');
    assert.ok(m, `unexpected request ${r.range}`);
    const [start, last] = [Number(m[1]), Number(m[2])];
    for (const [a, b] of ctl.done) assert.ok(last < a || start >= b, `refetched ${r.range}, done ${a}-${b}`);
  }
  await assert.rejects(stat(`${out}.linkmux`), /ENOENT/);
});

test('--json prints start, progress and a done summary with per-link bytes', async () => {
  server.setBehaviour({});
  const out = join(root.dir, 'json.bin');
  const r = await cli(['get', '--link', 'lo', '--json', '-o', out, server.fileUrl('f.bin')]).done;
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; links?: { id: string; bytes: number }[]; size?: number });
  assert.equal(events[0]?.event, 'start');
  const last = events[events.length - 1];
  assert.equal(last?.event, 'done');
  assert.equal(last?.size, 4 * MiB);
  assert.equal(last?.links?.[0]?.id, 'lo');
  assert.equal(last?.links?.[0]?.bytes, 4 * MiB);
});

test('a loopback URL with no --link goes direct at once, not over the uplinks (used to wait 20 s)', async () => {
  server.setBehaviour({});
  const out = join(root.dir, 'direct.bin');
  const started = Date.now();
  const r = await cli(['get', '--json', '-o', out, server.fileUrl('f.bin')]).done;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  assert.match(r.stderr, /fetched directly, not over the uplinks/);
  const done = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { links?: { id: string }[] };
  assert.deepEqual(
    done.links?.map((l) => l.id),
    ['direct'],
  );
  // Nothing listens: refused at once, with the way out in the message.
  const closed = await cli(['get', '-o', join(root.dir, 'none.bin'), 'http://127.0.0.1:1/x']).done;
  assert.equal(closed.code, 1, closed.stderr);
  assert.match(closed.stderr, /cannot connect directly to 127\.0\.0\.1:1: connection refused/);
});

test('bad flags and arguments fail with a clear message and exit code 2', async () => {
  const table: [string[], RegExp][] = [
    [['get', '-x', '0', 'http://127.0.0.1/x'], /--connections-per-link takes a whole number from 1 to 16/],
    [['get', '--retries', 'many', 'http://127.0.0.1/x'], /--retries takes a whole number/],
    [['get', '--stall-timeout', '-3', 'http://127.0.0.1/x'], /--stall-timeout takes seconds/],
    [['get', '--checksum', 'sha-256=zz', 'http://127.0.0.1/x'], /checksum/],
    [['get', '--bind', 'magic', 'http://127.0.0.1/x'], /--bind takes one of auto, device, address/],
    [['get', '--min-piece', '1', 'http://127.0.0.1/x'], /--min-piece/],
    [['get', 'not-a-url'], /"not-a-url" is not a URL/],
    [['get', '--link', 'lo', 'ftp://127.0.0.1/x'], /ftp URLs are not supported/],
    [['get', 'http://127.0.0.1/x', 'mirror-without-scheme'], /"mirror-without-scheme" is not a URL/],
    // commander's own refusals, reported like every other error.
    [['get'], /^linkmux: error: missing required argument 'url' \(see `linkmux get --help`\)/],
    [['get', '--bogus', 'http://127.0.0.1/x'], /^linkmux: error: unknown option '--bogus'/],
    [['get', '--connect-timeout'], /^linkmux: error: option '--connect-timeout <s>' argument missing/],
    [['links', 'a', 'b'], /^linkmux: error: too many arguments for 'links'/],
    [['frobnicate'], /^linkmux: error: unknown command 'frobnicate' \(see `linkmux --help`\)/],
    [['config'], /linkmux: error: linkmux config needs a sub-command/],
    [['node', '--listen', 'x:y:z'], /command line: node\.listen/],
  ];
  for (const [args, re] of table) {
    const r = await cli(args).done;
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.match(r.stderr, /\[LINKMUX_ERR_USAGE\]\n$/, `${args.join(' ')}: one line with the code`);
  }
});

test('help and --version exit 0 and print no error', async () => {
  for (const args of [['--version'], ['--help'], ['get', '--help'], ['help']]) {
    const r = await cli(args).done;
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /error/);
  }
});

test('runtime errors exit 1 with the code: an unknown link, a missing file', async () => {
  const table: [string[], RegExp][] = [
    [['get', '--link', 'nosuchif9', server.fileUrl('f.bin')], /LINKMUX_ERR_LINK_UNKNOWN/],
    [
      ['get', '--link', 'lo', '-o', join(root.dir, 'x'), server.fileUrl('missing.bin')],
      /404.*LINKMUX_ERR_HTTP_STATUS/,
    ],
  ];
  for (const [args, re] of table) {
    const r = await cli(args).done;
    assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/, 'no stack trace for a user error');
  }
});
