/**
 * /etc/hosts (src/dns/hosts-file.ts): parsing, and re-reading a real temp file
 * only when `recheckMs` has passed on the injected clock and its mtime moved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utimes, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HostsFile, normalizeName, parseHosts } from '../../src/dns/hosts-file.js';
import { FakeClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/loopback.js';

const TEXT = `
# The following lines are desirable for IPv6 capable hosts
127.0.0.1\tlocalhost
::1 localhost ip6-localhost
192.0.2.10   Files.Test files   # the file server
192.0.2.11 files.test
192.0.2.10 files.test
fe80::1%eth0 router.lan
2001:db8::10 files.test
not-an-ip bogus.test
192.0.2.99
300.1.1.1 broken.test
`;

test('parseHosts: addresses per name, both families, case-insensitive, malformed lines skipped', () => {
  const table = parseHosts(TEXT);
  assert.deepEqual(table.get('files.test'), [
    { address: '192.0.2.10', family: 4 },
    { address: '192.0.2.11', family: 4 },
    { address: '2001:db8::10', family: 6 },
  ]);
  assert.deepEqual(table.get('files'), [{ address: '192.0.2.10', family: 4 }]);
  assert.deepEqual(table.get('localhost'), [
    { address: '127.0.0.1', family: 4 },
    { address: '::1', family: 6 },
  ]);
  assert.deepEqual(table.get('ip6-localhost'), [{ address: '::1', family: 6 }]);
  assert.deepEqual(table.get('router.lan'), [{ address: 'fe80::1', family: 6 }], 'zone id dropped');
  assert.equal(table.get('bogus.test'), undefined);
  assert.equal(table.get('broken.test'), undefined);
  assert.equal(table.get('#'), undefined, 'comments are not names');
  assert.equal(table.get('the'), undefined, 'trailing comments are not names');
  assert.deepEqual([...table.keys()].sort(), [
    'files',
    'files.test',
    'ip6-localhost',
    'localhost',
    'router.lan',
  ]);
});

test('parseHosts: empty text and CRLF line ends', () => {
  assert.equal(parseHosts('').size, 0);
  assert.deepEqual(parseHosts('192.0.2.1 a.test\r\n').get('a.test'), [{ address: '192.0.2.1', family: 4 }]);
});

test('normalizeName: lower case, trailing dot dropped', () => {
  assert.equal(normalizeName('Files.Test.'), 'files.test');
  assert.equal(normalizeName('files'), 'files');
});

test('HostsFile: re-reads after an mtime change only once recheckMs has passed', async () => {
  const { dir, cleanup } = await tempDir('lmx-hosts-');
  try {
    const path = join(dir, 'hosts');
    await writeFile(path, '192.0.2.1 files.test\n');
    await utimes(path, 1_000, 1_000);
    const clock = new FakeClock(1_000_000);
    const hosts = new HostsFile({ path, clock, recheckMs: 5_000 });

    assert.deepEqual(await hosts.lookup('FILES.test.'), [{ address: '192.0.2.1', family: 4 }]);

    await writeFile(path, '192.0.2.2 files.test\n192.0.2.3 new.test\n');
    await utimes(path, 2_000, 2_000);
    clock.advance(4_999);
    assert.deepEqual(
      await hosts.lookup('files.test'),
      [{ address: '192.0.2.1', family: 4 }],
      'within recheckMs the old table is served',
    );
    assert.equal(await hosts.lookup('new.test'), undefined);

    clock.advance(1);
    assert.deepEqual(await hosts.lookup('files.test'), [{ address: '192.0.2.2', family: 4 }]);
    assert.deepEqual(await hosts.lookup('new.test'), [{ address: '192.0.2.3', family: 4 }]);

    // Same mtime: the content is not re-read even after recheckMs (a stat only).
    await writeFile(path, '192.0.2.4 files.test\n');
    await utimes(path, 2_000, 2_000);
    clock.advance(5_000);
    assert.deepEqual(await hosts.lookup('files.test'), [{ address: '192.0.2.2', family: 4 }]);

    // The file goes away: empty table, not an error.
    await rm(path);
    clock.advance(5_000);
    assert.equal(await hosts.lookup('files.test'), undefined);
  } finally {
    await cleanup();
  }
});

test('HostsFile: a missing file is an empty table', async () => {
  const hosts = new HostsFile({ path: '/nonexistent/linkmux/hosts', clock: new FakeClock() });
  assert.equal(await hosts.lookup('files.test'), undefined);
});

test('HostsFile: concurrent lookups share one read', async () => {
  const { dir, cleanup } = await tempDir('lmx-hosts-');
  try {
    const path = join(dir, 'hosts');
    await writeFile(path, '192.0.2.1 files.test\n');
    const hosts = new HostsFile({ path, clock: new FakeClock() });
    const all = await Promise.all(Array.from({ length: 50 }, () => hosts.lookup('files.test')));
    for (const got of all) assert.deepEqual(got, [{ address: '192.0.2.1', family: 4 }]);
  } finally {
    await cleanup();
  }
});
