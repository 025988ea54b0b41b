/**
 * resolv.conf (src/dns/resolv-conf.ts): parsing like libc, and the swap of
 * systemd-resolved's stub for its upstream servers, with an injected reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RESOLV_CONF,
  SYSTEMD_UPSTREAM_CONF,
  isResolvedStub,
  parseResolvConf,
  readResolvConf,
  type ResolvConf,
} from '../../src/dns/resolv-conf.js';

const cases: Array<[string, string, ResolvConf]> = [
  ['empty file: no servers, no search, ndots 1', '', { nameservers: [], search: [], ndots: 1 }],
  [
    'nameservers in order, duplicates once',
    'nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.1\n',
    { nameservers: ['192.0.2.1', '192.0.2.2'], search: [], ndots: 1 },
  ],
  [
    'comments (# and ;), whole-line and trailing, blank lines, tabs',
    '# generated\n; old style\n\nnameserver\t192.0.2.1  # the router\nnameserver 192.0.2.2;x\n#nameserver 192.0.2.9\n',
    { nameservers: ['192.0.2.1', '192.0.2.2'], search: [], ndots: 1 },
  ],
  [
    'IPv6 nameservers are kept; invalid ones and names are skipped',
    'nameserver 2001:db8::53\nnameserver 999.1.1.1\nnameserver dns.example\nnameserver\nnameserver ::1\n',
    { nameservers: ['2001:db8::53', '::1'], search: [], ndots: 1 },
  ],
  [
    'IPv6 with a zone id (link-local) is kept out',
    'nameserver fe80::1%eth0\nnameserver 192.0.2.1\n',
    { nameservers: ['192.0.2.1'], search: [], ndots: 1 },
  ],
  [
    'search: lower-cased, trailing dots dropped',
    'search Corp.Test. home.test\n',
    { nameservers: [], search: ['corp.test', 'home.test'], ndots: 1 },
  ],
  [
    'domain is a one-entry search list',
    'domain corp.test\n',
    { nameservers: [], search: ['corp.test'], ndots: 1 },
  ],
  [
    'the last of search/domain wins, as in libc',
    'search a.test b.test\ndomain c.test\n',
    { nameservers: [], search: ['c.test'], ndots: 1 },
  ],
  [
    'options ndots:N among other options',
    'options timeout:2 ndots:3 rotate\n',
    { nameservers: [], search: [], ndots: 3 },
  ],
  ['ndots is capped at 15', 'options ndots:40\n', { nameservers: [], search: [], ndots: 15 }],
  ['malformed ndots is ignored', 'options ndots:x ndots:-1\n', { nameservers: [], search: [], ndots: 1 }],
  [
    'unknown keywords are ignored; CRLF line ends work',
    'sortlist 10.0.0.0/8\r\nlookup file bind\r\nnameserver 192.0.2.1\r\n',
    { nameservers: ['192.0.2.1'], search: [], ndots: 1 },
  ],
];

for (const [name, text, want] of cases) {
  test(`parseResolvConf: ${name}`, () => {
    assert.deepEqual(parseResolvConf(text), want);
  });
}

test('isResolvedStub: 127.0.0.53 and 127.0.0.54 only', () => {
  assert.equal(isResolvedStub('127.0.0.53'), true);
  assert.equal(isResolvedStub('127.0.0.54'), true);
  assert.equal(isResolvedStub('127.0.0.1'), false);
  assert.equal(isResolvedStub('192.0.2.53'), false);
});

/** A reader over an in-memory file system; a missing path rejects like readFile (ENOENT). */
function reader(files: Record<string, string>): (path: string) => Promise<string> {
  return async (path) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return text;
  };
}

const STUB_CONF = 'nameserver 127.0.0.53\noptions edns0 trust-ad ndots:2\nsearch corp.test\n';

test('readResolvConf: the systemd stub is replaced by the upstream servers; search and ndots stay', async () => {
  const conf = await readResolvConf(
    reader({
      [RESOLV_CONF]: STUB_CONF,
      [SYSTEMD_UPSTREAM_CONF]: 'nameserver 192.0.2.1\nnameserver 2001:db8::1\nsearch other.test\n',
    }),
  );
  assert.deepEqual(conf, { nameservers: ['192.0.2.1', '2001:db8::1'], search: ['corp.test'], ndots: 2 });
});

test('readResolvConf: other servers beside the stub are kept after the upstreams', async () => {
  const conf = await readResolvConf(
    reader({
      [RESOLV_CONF]: 'nameserver 127.0.0.53\nnameserver 198.51.100.7\n',
      [SYSTEMD_UPSTREAM_CONF]: 'nameserver 192.0.2.1\n',
    }),
  );
  assert.deepEqual(conf.nameservers, ['192.0.2.1', '198.51.100.7']);
});

test('readResolvConf: without the upstream file the stub is kept (better than nothing)', async () => {
  const conf = await readResolvConf(reader({ [RESOLV_CONF]: STUB_CONF }));
  assert.deepEqual(conf, { nameservers: ['127.0.0.53'], search: ['corp.test'], ndots: 2 });
});

test('readResolvConf: an upstream file listing only loopback servers keeps the stub', async () => {
  const conf = await readResolvConf(
    reader({ [RESOLV_CONF]: STUB_CONF, [SYSTEMD_UPSTREAM_CONF]: 'nameserver 127.0.0.1\n' }),
  );
  assert.deepEqual(conf.nameservers, ['127.0.0.53']);
});

test('readResolvConf: no stub → the upstream file is not read', async () => {
  const read: string[] = [];
  const files = reader({
    [RESOLV_CONF]: 'nameserver 127.0.0.1\nnameserver 192.0.2.1\n',
    [SYSTEMD_UPSTREAM_CONF]: 'nameserver 198.51.100.1\n',
  });
  const conf = await readResolvConf((p) => {
    read.push(p);
    return files(p);
  });
  assert.deepEqual(conf.nameservers, ['127.0.0.1', '192.0.2.1']);
  assert.deepEqual(read, [RESOLV_CONF]);
});

test('readResolvConf: a missing /etc/resolv.conf gives no servers, not an error', async () => {
  assert.deepEqual(await readResolvConf(reader({})), { nameservers: [], search: [], ndots: 1 });
});
