// prepareNode in a temp state dir with hand-made interfaces: the token carries
// the listen or advertised address, the identity's fingerprint and secret, no
// links for one lent uplink and each of them for several; a second call gives
// the same token (the identity is kept), --rotate a new one; nothing is written
// when there is nothing to lend or nowhere to listen. defaultNodeName cleans
// host names into token names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RuntimeNode } from '../../src/config/runtime.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import { decodeJoinToken } from '../../src/links/join-token.js';
import { defaultNodeName, prepareNode } from '../../src/relay/node-setup.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import type { ErrorCode } from '../../src/util/errors.js';

async function withStateDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'linkmux-node-setup-'));
  try {
    await fn(join(root, 'state'));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const lo: NetInterface = {
  name: 'lo',
  up: true,
  loopback: true,
  addresses: [{ address: '127.0.0.1', family: 4, prefixLength: 8 }],
};
const eth0: NetInterface = {
  name: 'eth0',
  up: true,
  loopback: false,
  addresses: [
    { address: '203.0.113.7', family: 4, prefixLength: 24 },
    { address: '192.168.1.20', family: 4, prefixLength: 24 },
  ],
  gateway: '192.168.1.1',
  metric: 100,
};
const wlan0: NetInterface = {
  name: 'wlan0',
  up: true,
  loopback: false,
  addresses: [{ address: '10.1.2.3', family: 4, prefixLength: 16 }],
};
const interfaces = [lo, eth0, wlan0];

function node(stateDir: string, over: Partial<RuntimeNode> = {}): RuntimeNode {
  return {
    enabled: true,
    listen: { kind: 'lan', port: 7443 },
    advertise: undefined,
    name: 'box1',
    allow: [],
    stateDir,
    ...over,
  };
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<string> {
  const err = await p.then(
    () => assert.fail(`expected ${code}, it succeeded`),
    (e: unknown) => e,
  );
  assert.ok(isLinkmuxError(err, code), `expected ${code}, got ${String(err)}`);
  return err.message;
}

test('lan listen: every private address, the token carries the first; one lent link → token.links empty', async () => {
  await withStateDir(async (dir) => {
    const p = await prepareNode(node(dir), interfaces, ['eth0']);
    assert.deepEqual(p.listen, [
      { host: '192.168.1.20', port: 7443 },
      { host: '10.1.2.3', port: 7443 },
    ]);
    assert.deepEqual(p.lend, ['eth0']);
    assert.equal(p.token.name, 'box1');
    assert.equal(p.token.host, '192.168.1.20');
    assert.equal(p.token.port, 7443);
    assert.deepEqual(p.token.links, [], 'one lent link: the node picks');
    assert.equal(p.token.secret, p.identity.secret);
    assert.equal(p.token.fingerprint, p.identity.fingerprint);
    assert.equal(p.identity.created, true);
    assert.equal(p.identity.dir, dir);
    // The text is the token, encoded.
    assert.deepEqual(decodeJoinToken(p.tokenText), p.token);
  });
});

test('several lent links are listed in the token, in order; the result does not alias the input', async () => {
  await withStateDir(async (dir) => {
    const lend = ['wlan0', 'eth0', 'usb0'];
    const p = await prepareNode(node(dir), interfaces, lend);
    assert.deepEqual(p.token.links, ['wlan0', 'eth0', 'usb0']);
    assert.deepEqual(decodeJoinToken(p.tokenText).links, ['wlan0', 'eth0', 'usb0']);
    lend.push('late0');
    assert.deepEqual(p.lend, ['wlan0', 'eth0', 'usb0']);
    assert.deepEqual(p.token.links, ['wlan0', 'eth0', 'usb0']);
  });
});

test('tcp listen and --advertise decide the token address', async () => {
  await withStateDir(async (dir) => {
    const tcp = await prepareNode(
      node(dir, { listen: { kind: 'tcp', host: '10.1.2.3', port: 9000 } }),
      interfaces,
      ['eth0'],
    );
    assert.deepEqual(tcp.listen, [{ host: '10.1.2.3', port: 9000 }]);
    assert.deepEqual([tcp.token.host, tcp.token.port], ['10.1.2.3', 9000]);

    const host = await prepareNode(node(dir, { advertise: 'node.example.org' }), interfaces, ['eth0']);
    assert.deepEqual([host.token.host, host.token.port], ['node.example.org', 7443]);

    const hostPort = await prepareNode(
      node(dir, { listen: { kind: 'tcp', host: '0.0.0.0', port: 9000 }, advertise: '[fd00::20]:443' }),
      interfaces,
      ['eth0'],
    );
    assert.deepEqual(hostPort.listen, [{ host: '0.0.0.0', port: 9000 }]);
    assert.deepEqual([hostPort.token.host, hostPort.token.port], ['fd00::20', 443]);
    assert.deepEqual(decodeJoinToken(hostPort.tokenText), hostPort.token);
  });
});

test('a second call keeps the identity and gives the same token; rotate gives a new one', async () => {
  await withStateDir(async (dir) => {
    const first = await prepareNode(node(dir), interfaces, ['eth0', 'wlan0']);
    const second = await prepareNode(node(dir), interfaces, ['eth0', 'wlan0']);
    assert.equal(second.identity.created, false);
    assert.equal(second.tokenText, first.tokenText);
    assert.deepEqual(second.token, first.token);

    const rotated = await prepareNode(node(dir), interfaces, ['eth0', 'wlan0'], { rotate: true });
    assert.equal(rotated.identity.created, true);
    assert.notEqual(rotated.token.secret, first.token.secret);
    assert.notEqual(rotated.token.fingerprint, first.token.fingerprint);
    assert.notEqual(rotated.tokenText, first.tokenText);
    assert.equal(rotated.token.secret, rotated.identity.secret);
  });
});

test('no name in the config: the token is named after this machine', async () => {
  await withStateDir(async (dir) => {
    const p = await prepareNode(node(dir, { name: undefined }), interfaces, ['eth0']);
    assert.equal(p.token.name, defaultNodeName());
  });
});

test('nothing to lend: LINKMUX_ERR_NO_LINKS, and no identity is written', async () => {
  await withStateDir(async (dir) => {
    const msg = await rejectsWith(prepareNode(node(dir), interfaces, []), 'LINKMUX_ERR_NO_LINKS');
    assert.match(msg, /--link/);
    await assert.rejects(readdir(dir), { code: 'ENOENT' });
  });
});

test('nowhere to listen, or a wildcard without --advertise: LINKMUX_ERR_USAGE, and no identity is written', async () => {
  await withStateDir(async (dir) => {
    assert.match(await rejectsWith(prepareNode(node(dir), [lo], ['eth0']), 'LINKMUX_ERR_USAGE'), /--listen/);
    assert.match(
      await rejectsWith(
        prepareNode(node(dir, { listen: { kind: 'tcp', host: '::', port: 1 } }), interfaces, ['eth0']),
        'LINKMUX_ERR_USAGE',
      ),
      /--advertise/,
    );
    await assert.rejects(readdir(dir), { code: 'ENOENT' });
  });
});

test('defaultNodeName: the first label, cut to 32 characters of [A-Za-z0-9._-]', () => {
  const cases: Array<[string, string]> = [
    ['box1', 'box1'],
    ['box1.lan', 'box1'],
    ['office-pc.example.org', 'office-pc'],
    ["Alice's MacBook Pro.local", 'Alice-s-MacBook-Pro'],
    ['héllo_wörld', 'h-llo_w-rld'],
    ['a'.repeat(40), 'a'.repeat(32)],
    ['', 'node'],
    ['.local', 'node'],
  ];
  for (const [hostname, want] of cases) {
    const got = defaultNodeName(hostname);
    assert.equal(got, want, JSON.stringify(hostname));
    assert.match(got, /^[A-Za-z0-9._-]{1,32}$/, 'a valid token name');
  }
  assert.match(defaultNodeName(), /^[A-Za-z0-9._-]{1,32}$/, "this machine's own host name");
});
