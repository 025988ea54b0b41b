/**
 * `linkmux server` on loopback, in-process: the server daemon (MPTCP listener,
 * TLS pinned, SOCKS5 with the token's secret) and the client's server link (an
 * MPTCP socket). What a stranger on the internet must not get: nothing is
 * relayed on a guessed secret or to a client pinning another certificate, and
 * nothing to the server's own addresses, loopback or private ranges (the
 * allow-list opens ranges, never the server itself). And it does relay.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { ServerDaemon } from '../../src/daemon/server-daemon.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../../src/relay/node-identity.js';
import { Socks5Link } from '../../src/links/socks5-link.js';
import { serverLinkOptions } from '../../src/links/server-link.js';
import { createResolver } from '../../src/net/resolve.js';
import type { JoinToken } from '../../src/links/join-token.js';
import { mptcpSupport } from '../../src/net/mptcp-socket.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';

const skip = mptcpSupport().available ? false : 'kernel MPTCP is not available here';
let dir = '';
let identity: NodeIdentity;
const daemons: ServerDaemon[] = [];
let echo: net.Server;
let echoPort = 0;

async function startServer(opts: { allow?: string[]; own?: string[] }): Promise<JoinToken> {
  const d = new ServerDaemon({
    listen: { host: '127.0.0.1', port: 0 },
    certPem: identity.certPem,
    keyPem: identity.keyPem,
    fingerprint: identity.fingerprint,
    secret: identity.secret,
    allow: opts.allow ?? [],
    logger: silentLogger,
    ownAddresses: () => opts.own ?? ['198.18.77.1'],
  });
  await d.start();
  daemons.push(d);
  const port = Number(d.address.split(':').pop());
  return {
    name: 'vps',
    host: '127.0.0.1',
    port,
    fingerprint: identity.fingerprint,
    secret: identity.secret,
    links: [],
    kind: 'server',
  };
}

const link = (t: JoinToken) => new Socks5Link(serverLinkOptions(t, { resolve: createResolver() }));

before(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(tmpdir(), 'lmx-server-'));
  identity = await loadOrCreateIdentity(dir, { name: 'test' });
  echo = net.createServer((s) => s.pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  echoPort = (echo.address() as net.AddressInfo).port;
});

after(async () => {
  for (const d of daemons) await d.stop(0);
  echo?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('relays through one MPTCP connection when the destination is allowed', { skip }, async () => {
  const t = await startServer({ allow: ['127.0.0.0/8'], own: [] });
  const l = link(t);
  const s = await l.connect({ host: '127.0.0.1', port: echoPort }, { timeoutMs: 5000 });
  s.write('ping');
  const [data] = (await once(s, 'data')) as [Buffer];
  assert.equal(data.toString(), 'ping');
  s.destroy();
  l.destroy();
});

test(
  'refuses loopback, private ranges and its own addresses; allow does not open itself',
  { skip },
  async () => {
    const t = await startServer({ allow: ['198.18.77.0/24'] });
    const l = link(t);
    for (const host of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '::1', '198.18.77.1']) {
      await assert.rejects(
        l.connect({ host, port: 80 }, { timeoutMs: 5000 }),
        (e) => isLinkmuxError(e, 'LINKMUX_ERR_DENIED'),
        host,
      );
    }
    l.destroy();
  },
);

test('refuses a guessed secret and a client pinning another certificate', { skip }, async () => {
  const t = await startServer({ allow: ['127.0.0.0/8'], own: [] });
  const guessed = link({ ...t, secret: 'A'.repeat(42) + 'A' });
  await assert.rejects(guessed.connect({ host: '127.0.0.1', port: echoPort }, { timeoutMs: 5000 }), (e) =>
    isLinkmuxError(e, 'LINKMUX_ERR_NODE_AUTH'),
  );
  const pinned = link({ ...t, fingerprint: '0'.repeat(64) });
  await assert.rejects(
    pinned.connect({ host: '127.0.0.1', port: echoPort }, { timeoutMs: 5000 }),
    (e) => isLinkmuxError(e, 'LINKMUX_ERR_NODE_AUTH') && /pins/.test(e.message),
  );
  const st = daemons[daemons.length - 1]!.status();
  assert.equal(st.node?.authFailures, 1);
  assert.equal(st.connections.total, 0, 'nothing was relayed');
  guessed.destroy();
  pinned.destroy();
});
