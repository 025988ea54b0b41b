/**
 * Bad servers and bad disks the main download tests do not cover: a server that
 * stops honouring Range after the probe, and a disk that fills up mid-download.
 * Both must stop with a clear code and leave a resumable partial download.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { download } from '../../src/download/downloader.js';
import { nullProgress } from '../../src/download/progress.js';
import { startFileServer, type FileServer } from '../../src/testbed/file-server.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { loopbackLinks, randomFile, tempDir } from '../helpers/loopback.js';
import { cliPath, isRoot } from '../helpers/netns.js';

const MiB = 1024 * 1024;
let root: { dir: string; cleanup: () => Promise<void> };
let server: FileServer;

before(async () => {
  root = await tempDir('lmx-bad-');
  await mkdir(join(root.dir, 'srv'));
  await randomFile(join(root.dir, 'srv'), 'f.bin', 4 * MiB);
  server = await startFileServer({ root: join(root.dir, 'srv') });
});

after(async () => {
  await server.close();
  await root.cleanup();
});

test('a server that stops honouring Range after the probe: LINKMUX_ERR_RANGE_IGNORED, resumable', async () => {
  server.setBehaviour({});
  const out = join(root.dir, 'ignored');
  await mkdir(out);
  await assert.rejects(
    download({
      urls: [server.fileUrl('f.bin')],
      links: loopbackLinks(2),
      dir: out,
      backoff: { baseMs: 10, capMs: 50 },
      // start() runs after the probe and before the range requests: flip the server there.
      progress: { ...nullProgress, start: () => server.setBehaviour({ noRange: true }) },
    }),
    (err) => isLinkmuxError(err, 'LINKMUX_ERR_RANGE_IGNORED') && /-c/.test(err.message),
  );
  await stat(join(out, 'f.bin.part'));
  const control = JSON.parse(await readFile(join(out, 'f.bin.linkmux'), 'utf8')) as { size: number };
  assert.equal(control.size, 4 * MiB, 'the control file is intact and resumable');
});

test(
  'disk full mid-download: LINKMUX_ERR_DISK_FULL, and the partial download stays resumable',
  { skip: isRoot() ? false : 'needs root to mount a small tmpfs in a private mount namespace' },
  async () => {
    server.setBehaviour({});
    // A 1 MiB tmpfs in a mount namespace of its own: nothing outside this command sees it.
    const script = [
      'set -u',
      'd=$(mktemp -d)',
      'mount -t tmpfs -o size=1m tmpfs "$d"',
      `"${process.execPath}" "${cliPath()}" get --link lo --quiet -o "$d/f.bin" "${server.fileUrl('f.bin')}"`,
      'echo "exit=$?"',
      'ls "$d"',
      'cat "$d/f.bin.linkmux"',
    ].join('\n');
    const { stdout, stderr } = await promisify(execFile)(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', script],
      {
        timeout: 60_000,
      },
    ).catch((e: { stdout: string; stderr: string }) => e);
    assert.match(stdout, /exit=1/, stderr);
    assert.match(stderr, /no space left.*-c to continue.*\[LINKMUX_ERR_DISK_FULL\]/);
    assert.match(stdout, /f\.bin\.part/);
    assert.match(
      stdout,
      /"format":"linkmux-download"/,
      'the control file was written before the disk filled',
    );
  },
);
