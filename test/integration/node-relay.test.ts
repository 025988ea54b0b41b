/**
 * `linkmux node` on loopback: a Daemon with the node front end (TLS + SOCKS5)
 * lending two loopback links (bound to 127.0.0.2 and .3), and clients that are
 * the real Socks5Link built from a join token, plus hand-made bad clients.
 * Checks: bytes relayed intact both ways through the token's link and through
 * each per-uplink link (the lent link's byte counter grows); no relaying
 * without the secret, with a wrong secret, a wrong pinned fingerprint or no
 * authentication at all; private destinations refused unless allowed; garbage,
 * plain SOCKS5 and half handshakes on the node port leave it serving; UDP
 * ASSOCIATE refused. Nothing leaves the machine.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { Daemon } from '../../src/daemon/daemon.js';
import type { DaemonNodeOptions } from '../../src/daemon/daemon.js';
import { runtimeDefaults } from '../../src/config/runtime.js';
import { tcpAt } from '../helpers/runtime-config.js';
import { Socks5Link } from '../../src/links/socks5-link.js';
import type { Link } from '../../src/links/link.js';
import { nodeLinkOptions, parseSocks5Link } from '../../src/links/remote-links.js';
import type { JoinToken } from '../../src/links/join-token.js';
import { decodeJoinToken, encodeJoinToken } from '../../src/links/join-token.js';
import { loadOrCreateIdentity } from '../../src/relay/node-identity.js';
import type { NodeIdentity } from '../../src/relay/node-identity.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { loopbackLinks, sha256, tempDir, within } from '../helpers/loopback.js';
import { eventually } from '../helpers/http-proxy-fixtures.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

let identity: NodeIdentity;
let echoPort: number;
let probePort: number;

before(async () => {
  const tmp = await tempDir('lmx-node-');
  cleanups.push(tmp.cleanup);
  identity = await loadOrCreateIdentity(tmp.dir, { name: 'test' });
  // The destination: echoes everything, and greets first so server-speaks-first data is checked too.
  const echo = net.createServer((s) => {
    s.write('hello\n');
    s.pipe(s);
    s.on('error', () => s.destroy());
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  echoPort = (echo.address() as AddressInfo).port;
  const probe = net.createServer((s) => s.destroy());
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  probePort = (probe.address() as AddressInfo).port;
  cleanups.push(() => {
    echo.close();
    probe.close();
  });
});

/** `allow`: node.allow of the config (CIDRs the node relays to anyway); default 127.0.0.0/8. */
async function startNode(
  node: Partial<DaemonNodeOptions> & { allow?: string[] } = {},
  more: { extraLinks?: Link[]; socks?: boolean } = {},
): Promise<{ daemon: Daemon; token: JoinToken }> {
  const links = loopbackLinks(2);
  const { allow = ['127.0.0.0/8'], ...identityOver } = node;
  const defaults = runtimeDefaults();
  const daemon = new Daemon({
    links: [...links, ...(more.extraLinks ?? [])],
    config: runtimeDefaults({
      listen: { socks: more.socks ? tcpAt('127.0.0.1:0') : undefined, http: undefined, control: undefined },
      connectTimeoutMs: 2_000,
      failover: { ...defaults.failover, attempts: 2 },
      health: {
        intervalMs: 200,
        timeoutMs: 500,
        failThreshold: 3,
        riseThreshold: 1,
        slowRttMs: 500,
        targets: [{ kind: 'tcp', host: '127.0.0.1', port: probePort }],
      },
      privateDirect: false,
      node: { ...defaults.node, allow },
    }),
    logger: silentLogger,
    node: {
      listen: [{ host: '127.0.0.1', port: 0 }],
      certPem: identity.certPem,
      keyPem: identity.keyPem,
      fingerprint: identity.fingerprint,
      secret: identity.secret,
      lend: links.map((l) => l.id),
      ...identityOver,
    },
  });
  await daemon.start();
  cleanups.push(() => daemon.stop(0));
  const [host, port] = splitHostPort(daemon.addresses.node?.[0] ?? '');
  const token: JoinToken = {
    name: 'test',
    host,
    port,
    fingerprint: identity.fingerprint,
    secret: identity.secret,
    links: [],
  };
  // The token goes through its text form, as users carry it.
  return { daemon, token: decodeJoinToken(encodeJoinToken(token)) };
}

function splitHostPort(text: string): [string, number] {
  const i = text.lastIndexOf(':');
  return [text.slice(0, i), Number(text.slice(i + 1))];
}

/** Sends `size` random bytes through the socket to the echo server and checks they come back intact. */
async function roundTrip(socket: net.Socket, size: number): Promise<void> {
  const data = randomBytes(size);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.end(data);
  await within(once(socket, 'end'), `the echo of ${size} bytes`, 20_000);
  socket.destroy();
  const got = Buffer.concat(chunks);
  assert.equal(got.subarray(0, 6).toString(), 'hello\n');
  assert.equal(sha256(got.subarray(6)), sha256(data));
}

async function expectCode(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(isLinkmuxError(err), `expected a LinkmuxError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

test('a node relays with the token: bytes intact both ways, through the lent links', async () => {
  const { daemon, token } = await startNode();
  const [opts] = nodeLinkOptions(token);
  const link = new Socks5Link(opts!);
  cleanups.push(() => link.destroy());
  const before = daemon.status().links.reduce((n, l) => n + l.bytesIn, 0);
  await Promise.all(
    Array.from({ length: 4 }, async () =>
      roundTrip(await link.connect({ host: '127.0.0.1', port: echoPort }), 512 * 1024),
    ),
  );
  await eventually(
    () => {
      const st = daemon.status();
      const lent = st.links.reduce((n, l) => n + l.bytesIn, 0) - before;
      return lent >= 4 * 512 * 1024 && st.node?.relayed.total === 4;
    },
    5_000,
    'the lent links carried the relayed bytes',
  );
  assert.ok(link.stats().bytesIn >= 4 * 512 * 1024);
});

test('a token listing uplinks gives one link each, and each uses its own uplink', async () => {
  const { daemon, token } = await startNode();
  const links = nodeLinkOptions({ ...token, links: ['lo0', 'lo1'] }).map((o) => new Socks5Link(o));
  assert.deepEqual(
    links.map((l) => l.id),
    ['test/lo0', 'test/lo1'],
  );
  for (const link of links) {
    cleanups.push(() => link.destroy());
    const lent = link.id.slice('test/'.length);
    const before = daemon.status().links.find((l) => l.id === lent)!.bytesIn;
    await roundTrip(await link.connect({ host: '127.0.0.1', port: echoPort }), 256 * 1024);
    await eventually(
      () => daemon.status().links.find((l) => l.id === lent)!.bytesIn - before >= 256 * 1024,
      5_000,
      `${lent} carried ${link.id}'s bytes`,
    );
  }
  // A link the node does not have is refused at authentication, not silently rerouted.
  const ghost = new Socks5Link(nodeLinkOptions({ ...token, links: ['eth9'] })[0]!);
  await expectCode(ghost.connect({ host: '127.0.0.1', port: echoPort }), 'LINKMUX_ERR_NODE_AUTH');
});

test('nothing is relayed with a wrong secret, a wrong fingerprint, or without credentials', async () => {
  const { daemon, token } = await startNode();
  const wrongSecret = new Socks5Link(nodeLinkOptions({ ...token, secret: 'x'.repeat(43) })[0]!);
  const err = await expectCode(
    wrongSecret.connect({ host: '127.0.0.1', port: echoPort }),
    'LINKMUX_ERR_NODE_AUTH',
  );
  assert.ok(
    !err.message.includes(token.secret) && !err.message.includes('x'.repeat(43)),
    'no secret in messages',
  );

  const wrongPin = new Socks5Link(nodeLinkOptions({ ...token, fingerprint: 'ab'.repeat(32) })[0]!);
  const authBefore = daemon.status().node!.authFailures;
  const pinErr = await expectCode(
    wrongPin.connect({ host: '127.0.0.1', port: echoPort }),
    'LINKMUX_ERR_NODE_AUTH',
  );
  assert.match(pinErr.message, /pins/);
  // The pin check happens before SOCKS5: the node saw no credentials at all.
  assert.equal(daemon.status().node!.authFailures, authBefore);

  const noAuth = new Socks5Link({ ...nodeLinkOptions(token)[0]!, auth: undefined });
  await expectCode(noAuth.connect({ host: '127.0.0.1', port: echoPort }), 'LINKMUX_ERR_NODE_AUTH');
  assert.equal(daemon.status().node!.relayed.total, 0, 'not one connection was relayed');
});

test('private destinations are refused by default, and an allow-list opens them', async () => {
  const { daemon, token } = await startNode({ allow: [] });
  const link = new Socks5Link(nodeLinkOptions(token)[0]!);
  cleanups.push(() => link.destroy());
  const err = await expectCode(link.connect({ host: '127.0.0.1', port: echoPort }), 'LINKMUX_ERR_DENIED');
  assert.match(err.message, /node\.allow/);
  // A name that resolves to loopback is refused too: the node checks the address, not the name.
  await expectCode(link.connect({ host: 'localhost', port: echoPort }), 'LINKMUX_ERR_DENIED');
  // A refusal is the node's policy, not a failure of its uplink.
  assert.ok(daemon.status().links.every((l) => l.connectFailures === 0));

  const open = await startNode({ allow: ['127.0.0.1/32'] });
  const ok = new Socks5Link(nodeLinkOptions(open.token)[0]!);
  cleanups.push(() => ok.destroy());
  await roundTrip(await ok.connect({ host: '127.0.0.1', port: echoPort }), 1024);
});

test('garbage, plain SOCKS5 and stalled handshakes on the node port leave it serving', async () => {
  const { daemon, token } = await startNode();
  const { host, port } = token;
  // Garbage instead of a TLS ClientHello: text (no answer), a record too long (the node answers with an
  // alert, which the client must read to see the close), and random bytes (either, or a partial record
  // that the node's 10 s handshake timeout ends).
  const garbage: Array<[string, Buffer]> = [
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: node\r\n\r\n')],
    ['a TLS record too long', Buffer.from([0x16, 3, 1, 0xff, 0xff, 1, 0, 0, 0])],
    ['random bytes', randomBytes(2048)],
  ];
  await Promise.all(
    garbage.map(([what, bytes]) => {
      const junk = net.connect(port, host);
      junk.on('error', () => {});
      junk.resume();
      junk.write(bytes);
      return within(once(junk, 'close'), `the node closing a connection that sent ${what}`, 20_000);
    }),
  );
  // Plain SOCKS5 (no TLS).
  const plain = new Socks5Link({
    ...parseSocks5Link(`socks5://linkmux:${token.secret}@${host}:${port}`),
  });
  await assert.rejects(plain.connect({ host: '127.0.0.1', port: echoPort }, { timeoutMs: 1_000 }));
  // TLS, then silence: the node must not wait forever (its handshake timeout ends it), and others are served meanwhile.
  const stalled = tls.connect({ host, port, rejectUnauthorized: false });
  stalled.on('error', () => {});
  await within(once(stalled, 'secureConnect'), 'the TLS handshake of the stalled client', 10_000);
  // A UDP ASSOCIATE is not served (it would bypass TLS).
  const udp = tls.connect({ host, port, rejectUnauthorized: false });
  udp.on('error', () => {});
  await within(once(udp, 'secureConnect'), 'the TLS handshake of the UDP ASSOCIATE client', 10_000);
  const secret = Buffer.from(token.secret);
  udp.write(Buffer.from([5, 1, 2]));
  udp.write(
    Buffer.concat([Buffer.from([1, 7]), Buffer.from('linkmux'), Buffer.from([secret.length]), secret]),
  );
  udp.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
  const answer: Buffer[] = [];
  udp.on('data', (c: Buffer) => answer.push(c));
  await within(once(udp, 'close'), 'the node closing the refused UDP ASSOCIATE', 10_000);
  assert.equal(Buffer.concat(answer).subarray(4, 6).toString('hex'), '0507', 'method, auth ok, then 0x07');

  const link = new Socks5Link(nodeLinkOptions(token)[0]!);
  cleanups.push(() => link.destroy());
  await roundTrip(await link.connect({ host: '127.0.0.1', port: echoPort }), 64 * 1024);
  await eventually(() => daemon.status().node!.tlsFailures >= 2, 5_000, 'garbage counted as TLS failures');
  stalled.destroy();
});

test('a token replayed after the node rotated its identity is refused, with what to do', async () => {
  const tmp = await tempDir('lmx-node-rot-');
  cleanups.push(tmp.cleanup);
  const old = await loadOrCreateIdentity(tmp.dir, { name: 'test' });
  const rotated = await loadOrCreateIdentity(tmp.dir, { name: 'test', rotate: true });
  assert.notEqual(old.fingerprint, rotated.fingerprint);
  const { token } = await startNode({
    certPem: rotated.certPem,
    keyPem: rotated.keyPem,
    fingerprint: rotated.fingerprint,
    secret: rotated.secret,
  });
  const replayed = new Socks5Link(
    nodeLinkOptions({ ...token, fingerprint: old.fingerprint, secret: old.secret })[0]!,
  );
  const err = await expectCode(
    replayed.connect({ host: '127.0.0.1', port: echoPort }),
    'LINKMUX_ERR_NODE_AUTH',
  );
  assert.match(err.message, /rotated/);
  assert.match(err.message, /linkmux node --token/);
});

test("one process lends its uplinks and uses another node's: proxy front end and node together", async () => {
  // B: a node only. A: a node too, and a proxy whose links are its own two plus B's node link.
  const b = await startNode();
  const toB = new Socks5Link(nodeLinkOptions({ ...b.token, name: 'b' })[0]!);
  const a = await startNode({}, { extraLinks: [toB], socks: true });
  // A's proxy, used like any SOCKS5 server: its connections spread over lo0, lo1 and B.
  const viaA = new Socks5Link(parseSocks5Link(`socks5://${a.daemon.addresses.socks}#a-proxy`));
  await Promise.all(
    Array.from({ length: 6 }, async () =>
      roundTrip(await viaA.connect({ host: '127.0.0.1', port: echoPort }), 128 * 1024),
    ),
  );
  // A's node, used by an outside client at the same time.
  const aNode = new Socks5Link(nodeLinkOptions(a.token)[0]!);
  await roundTrip(await aNode.connect({ host: '127.0.0.1', port: echoPort }), 128 * 1024);
  await eventually(
    () => (a.daemon.status().links.find((l) => l.id === 'b')?.bytesIn ?? 0) > 0,
    5_000,
    "A's proxy used B's node link",
  );
  assert.equal(a.daemon.status().node?.relayed.total, 1, "A's node relayed the outside client");
  assert.ok((b.daemon.status().node?.relayed.total ?? 0) >= 1, "B relayed for A's proxy");
  // A's node lends only A's own links: never B's (no relay loops).
  assert.deepEqual(a.daemon.status().node?.lends, ['lo0', 'lo1']);
  viaA.destroy();
  aNode.destroy();
  toB.destroy();
});
