import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalLink, chooseBindMode } from '../../src/links/local-link.js';
import type { BindModeRequest } from '../../src/links/local-link.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import { createLogger } from '../../src/util/logger.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import type { ErrorCode } from '../../src/util/errors.js';

const eth0: NetInterface = {
  name: 'eth0',
  up: true,
  loopback: false,
  addresses: [
    { address: '198.18.1.2', family: 4, prefixLength: 24 },
    { address: 'fe80::2', family: 6, prefixLength: 64 },
  ],
  gateway: '198.18.1.1',
  metric: 100,
};

type Want = { mode: 'device' | 'address'; warns: RegExp | undefined } | ErrorCode;
const modeCases: Array<[BindModeRequest, NodeJS.Platform, string | undefined, Want]> = [
  ['auto', 'linux', undefined, { mode: 'device', warns: undefined }],
  ['auto', 'linux', 'EPERM', { mode: 'address', warns: /EPERM.*run linkmux as root.*route setup --apply/ }],
  ['auto', 'linux', 'UNAVAILABLE', { mode: 'address', warns: /koffi.*route setup --apply/ }],
  ['auto', 'linux', 'ENODEV', { mode: 'device', warns: undefined }],
  [
    'auto',
    'win32',
    undefined,
    { mode: 'address', warns: /Windows picks the interface from the source address/ },
  ],
  ['auto', 'darwin', undefined, { mode: 'address', warns: /macOS/ }],
  ['device', 'linux', undefined, { mode: 'device', warns: undefined }],
  ['device', 'linux', 'EPERM', { mode: 'address', warns: /EPERM/ }],
  ['device', 'linux', 'UNAVAILABLE', 'LINKMUX_ERR_UNSUPPORTED_PLATFORM'],
  ['device', 'win32', undefined, 'LINKMUX_ERR_UNSUPPORTED_PLATFORM'],
  ['address', 'linux', 'EPERM', { mode: 'address', warns: undefined }],
  ['address', 'darwin', undefined, { mode: 'address', warns: undefined }],
];

for (const [requested, platform, probe, want] of modeCases) {
  test(`chooseBindMode: ${requested} on ${platform}, probe ${probe ?? 'ok'}`, () => {
    let probed = 0;
    const run = () =>
      chooseBindMode(requested, platform, 'eth0', () => {
        probed++;
        return probe;
      });
    if (typeof want === 'string') {
      assert.throws(run, (err) => isLinkmuxError(err, want) && err.message.includes('eth0'));
      return;
    }
    const got = run();
    assert.equal(got.mode, want.mode);
    if (want.warns) assert.match(got.warning ?? '', want.warns);
    else assert.equal(got.warning, undefined);
    if (platform !== 'linux' || requested === 'address') assert.equal(probed, 0, 'no FFI probe off Linux');
  });
}

test('non-Linux: one warning per logger however many links', () => {
  const lines: string[] = [];
  const logger = createLogger('info', (l) => lines.push(l));
  const a = new LocalLink(eth0, { platform: 'win32', logger });
  const b = new LocalLink({ ...eth0, name: 'wifi' }, { platform: 'win32', logger });
  assert.equal(a.mode, 'address');
  assert.equal(b.mode, 'address');
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /^linkmux: warn: on win32 links bind only their source address/);
});

test('description: addresses (link-local left out), gateway and how it binds', () => {
  const link = new LocalLink(eth0, { mode: 'address', platform: 'linux' });
  assert.equal(link.description, 'eth0 198.18.1.2 via 198.18.1.1 (source address)');
  const dev = new LocalLink(eth0, { mode: 'device', platform: 'linux', probeDevice: () => undefined });
  assert.equal(dev.description, 'eth0 198.18.1.2 via 198.18.1.1 (SO_BINDTODEVICE)');
});

test('connect with an already aborted signal rejects at once without counting a failure', async () => {
  const link = new LocalLink(eth0, { mode: 'address', platform: 'linux' });
  const ctl = new AbortController();
  ctl.abort();
  await assert.rejects(
    link.connect({ host: '198.18.1.1', port: 80 }, { signal: ctl.signal }),
    (err) => isLinkmuxError(err, 'LINKMUX_ERR_ABORTED') && /198\.18\.1\.1:80.*eth0/.test(err.message),
  );
  assert.equal(link.stats().connectFailures, 0);
});

test("a destination of a family the link lacks fails before any socket, and is not the link's failure", async () => {
  const link = new LocalLink(eth0, { mode: 'address', platform: 'linux' });
  await assert.rejects(
    link.connect({ host: '2001:db8::1', port: 443 }),
    (err) =>
      isLinkmuxError(err, 'LINKMUX_ERR_NO_ROUTE') &&
      /eth0 has no IPv6 address.*\[2001:db8::1\]:443/.test(err.message),
  );
  assert.equal(link.stats().connectFailures, 0);
});

test('DNS errors pass through with their code', async () => {
  const link = new LocalLink(eth0, {
    mode: 'address',
    platform: 'linux',
    resolve: async () => {
      const { LinkmuxError } = await import('../../src/util/errors.js');
      throw new LinkmuxError('LINKMUX_ERR_DNS', 'cannot resolve nosuch.example: no such host');
    },
  });
  await assert.rejects(link.connect({ host: 'nosuch.example', port: 80 }), (err) =>
    isLinkmuxError(err, 'LINKMUX_ERR_DNS'),
  );
});

test('a resolver that never answers still hits the timeout', async () => {
  const link = new LocalLink(eth0, {
    mode: 'address',
    platform: 'linux',
    resolve: () => new Promise(() => {}),
  });
  await assert.rejects(
    link.connect({ host: 'slow.example', port: 80 }, { timeoutMs: 30 }),
    (err) =>
      isLinkmuxError(err, 'LINKMUX_ERR_TIMEOUT') &&
      /slow\.example:80 through link eth0.*30 ms/.test(err.message),
  );
});

test('close() on an idle link resolves; later connects are refused', async () => {
  const link = new LocalLink(eth0, { mode: 'address', platform: 'linux' });
  await link.close();
  await assert.rejects(
    link.connect({ host: '198.18.1.1', port: 80 }),
    (err) => isLinkmuxError(err, 'LINKMUX_ERR_CONNECT') && /eth0 is shutting down/.test(err.message),
  );
});
