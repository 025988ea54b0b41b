/**
 * The `linkmux up` daemon in-process over three loopback links (LocalLinks
 * bound to 127.0.0.2, .3, .4), front ends and control API on 127.0.0.1 port 0,
 * health probes to a local TCP listener, privateDirect off (else every
 * loopback destination would go direct and no link would carry anything).
 * Real clients (curl through SOCKS5 and HTTP, Node's http) against a local
 * origin; authentication; malformed input; listen failures. Links going away,
 * drain and leaks: daemon-lifecycle.test.ts. Nothing leaves the machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Daemon } from '../../src/daemon/daemon.js';
import { loopbackListen, tcpAt } from '../helpers/runtime-config.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { loopbackLinks, sha256 } from '../helpers/loopback.js';
import {
  RawClient,
  authRequest,
  connectRequest,
  curlBytes,
  hex,
  httpGetViaProxy,
  isListening,
  portHex,
  socksAnswer,
  socksConnect,
} from '../helpers/proxy-clients.js';
import {
  LINK_ADDRESSES,
  cleanups,
  listen,
  BIG,
  BIG_SHA,
  peers,
  originPort,
  echoPort,
  options,
  portOf,
  startDaemon,
  status,
  tinyViaSocks,
  FAIL,
} from '../helpers/daemon-loopback.js';

// --- tests ------------------------------------------------------------------------

test('real clients through SOCKS5 and HTTP get 2 MiB bodies intact, carried by the links', async () => {
  const d = await startDaemon();
  peers.length = 0;
  const url = `http://localhost:${originPort}/big`;
  const viaSocks = await curlBytes(['--socks5-hostname', `127.0.0.1:${d.socks}`, url]);
  assert.equal(viaSocks.code, 0, viaSocks.stderr);
  assert.equal(sha256(viaSocks.body), BIG_SHA, 'curl --socks5-hostname');

  const viaHttp = await curlBytes(['-x', `http://127.0.0.1:${d.http}`, url]);
  assert.equal(viaHttp.code, 0, viaHttp.stderr);
  assert.equal(sha256(viaHttp.body), BIG_SHA, 'curl -x (absolute-URI forwarding)');

  const viaTunnel = await curlBytes(['-p', '-x', `http://127.0.0.1:${d.http}`, url]);
  assert.equal(viaTunnel.code, 0, viaTunnel.stderr);
  assert.equal(sha256(viaTunnel.body), BIG_SHA, 'curl -p -x (CONNECT tunnel)');

  const viaNode = await httpGetViaProxy(d.http, url);
  assert.equal(viaNode.status, 200);
  assert.equal(sha256(viaNode.body), BIG_SHA, "Node's http through the HTTP proxy");

  assert.ok(peers.length >= 4, `origin saw ${peers.length} connections`);
  for (const p of peers)
    assert.ok(LINK_ADDRESSES.includes(p), `origin reached from ${p}, not through a link`);

  // GET /status: the three links, the bytes they carried, the connections counted.
  const s = await status(d.control);
  assert.deepEqual(
    s.links.map((l) => l.id),
    ['lo0', 'lo1', 'lo2'],
  );
  for (const l of s.links) assert.equal(l.state, 'online', `${l.id}: ${JSON.stringify(l)}`);
  const bytesIn = s.links.reduce((sum, l) => sum + l.bytesIn, 0);
  assert.ok(bytesIn >= 4 * BIG.length, `links received ${bytesIn} B, expected ≥ 4 × 2 MiB`);
  assert.ok(s.connections.total >= 4);
  assert.equal(s.connections.failed, 0);
  assert.equal(s.listen.socks, `127.0.0.1:${d.socks}`);
});

test('with auth: right credentials accepted, wrong refused (SOCKS 0x01, HTTP 407), still serving', async () => {
  const auth = { username: 'alice', password: 'Sesame-42' };
  const d = await startDaemon({ config: { auth } });
  const url = `http://localhost:${originPort}/tiny`;
  const right = `${auth.username}:${auth.password}`;

  // SOCKS5, curl.
  const ok = await curlBytes(['--socks5-hostname', `127.0.0.1:${d.socks}`, '--proxy-user', right, url]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.body.toString(), 'tiny');
  const bad = await curlBytes([
    '--socks5-hostname',
    `127.0.0.1:${d.socks}`,
    '--proxy-user',
    'alice:nope',
    url,
  ]);
  assert.notEqual(bad.code, 0, 'curl with a wrong password must fail');
  // SOCKS5, raw: the RFC 1929 failure status, then the connection is closed.
  assert.equal(
    await socksAnswer(d.socks, `050102 ${authRequest('alice', 'nope').toString('hex')}`),
    '0502' + '0101',
  );
  assert.equal(
    await socksAnswer(d.socks, `050102 ${authRequest('mallory', auth.password).toString('hex')}`),
    '05020101',
  );
  // A client offering no-auth only is refused with 0xFF.
  assert.equal(await socksAnswer(d.socks, '050100'), '05ff');
  const { client } = await socksConnect(d.socks, { host: '127.0.0.1', port: echoPort }, auth);
  client.write('ping');
  assert.equal((await client.read(4)).toString(), 'ping');
  client.destroy();

  // HTTP proxy.
  const okHttp = await curlBytes(['-x', `http://127.0.0.1:${d.http}`, '--proxy-user', right, url]);
  assert.equal(okHttp.code, 0, okHttp.stderr);
  assert.equal(okHttp.body.toString(), 'tiny');
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  const none = await httpGetViaProxy(d.http, url);
  assert.equal(none.status, 407);
  assert.match(String(none.headers['proxy-authenticate']), /^Basic/);
  assert.equal(
    (await httpGetViaProxy(d.http, url, { 'Proxy-Authorization': basic('alice', 'nope') })).status,
    407,
  );
  const good = await httpGetViaProxy(d.http, url, {
    'Proxy-Authorization': basic(auth.username, auth.password),
  });
  assert.equal(good.status, 200);
  assert.equal(good.body.toString(), 'tiny');
  const tunnel = await curlBytes(['-p', '-x', `http://127.0.0.1:${d.http}`, '-w', '%{http_connect}', url]);
  assert.notEqual(tunnel.code, 0, 'CONNECT without credentials must fail');
  assert.match(tunnel.body.toString(), /407/);

  // Still serving after all the refusals; the password never reached the log.
  const again = await curlBytes(['--socks5-hostname', `127.0.0.1:${d.socks}`, '--proxy-user', right, url]);
  assert.equal(again.body.toString(), 'tiny');
  const log = d.log.join('');
  assert.match(log, /failed login from 127\.0\.0\.1 \(socks5\)/);
  for (const secret of [auth.password, 'nope']) assert.ok(!log.includes(secret), `the log holds ${secret}`);
});

test('malformed SOCKS5 and HTTP requests get the proper reply; the daemon keeps serving', async () => {
  const d = await startDaemon();
  const dead = net.createServer();
  const deadPort = await listen(dead);
  await new Promise((r) => dead.close(r));
  const cases: Array<[string, string, string]> = [
    ['wrong VER in the greeting: closed without an answer', '040100', ''],
    ['NMETHODS 0', '0500', '05ff'],
    ['BIND', `050100 05020001 7f000001 ${portHex(echoPort)}`, '0500' + FAIL('07')],
    ['unknown command', `050100 05090001 7f000001 ${portHex(echoPort)}`, '0500' + FAIL('07')],
    ['unknown address type', `050100 05010005 7f000001 ${portHex(echoPort)}`, '0500' + FAIL('08')],
    ['domain of length 0', `050100 05010003 00 ${portHex(echoPort)}`, '0500' + FAIL('01')],
    ['wrong VER in the request', `050100 04010001 7f000001 ${portHex(echoPort)}`, '0500'],
    ['CONNECT to port 0', '050100 05010001 7f000001 0000', '0500' + FAIL('01')],
    [
      'connection refused, through a link',
      `050100 ${connectRequest({ host: '127.0.0.1', port: deadPort })}`,
      '0500' + FAIL('05'),
    ],
    ['not SOCKS at all', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n').toString('hex'), ''],
  ];
  for (const [name, bytes, want] of cases) {
    assert.equal(await socksAnswer(d.socks, bytes), want, name);
  }
  // Split across writes, byte by byte: still a valid request.
  const c = new RawClient(d.socks);
  for (const b of hex(`050100 ${connectRequest({ host: '127.0.0.1', port: echoPort })}`)) {
    c.write(Buffer.from([b]));
    await sleep(2);
  }
  assert.equal((await c.read(12)).subarray(0, 6).toString('hex'), '0500' + '05000001', 'byte by byte');
  c.write('split');
  assert.equal((await c.read(5)).toString(), 'split');
  c.destroy();

  // HTTP: garbage is 400, a CONNECT without a port 400; the connection is closed either way.
  const raw = async (text: string) => {
    const r = new RawClient(d.http);
    r.write(text);
    const answer = (await r.read()).toString('latin1');
    await r.closed;
    return answer;
  };
  assert.match(await raw('\x16\x03\x01 not http\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await raw('CONNECT nohostport HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await raw(`CONNECT 127.0.0.1:${deadPort} HTTP/1.1\r\nHost: x\r\n\r\n`), /^HTTP\/1\.1 502 /);

  await tinyViaSocks(d.socks);
  const s = await status(d.control);
  for (const l of s.links) assert.equal(l.state, 'online', 'a refusal by the destination blames no link');
});

test('a port already in use: start() rejects naming the address, and nothing is left listening', async () => {
  const busy = net.createServer();
  const busyPort = await listen(busy);
  cleanups.push(() => new Promise<void>((r) => busy.close(() => r())));
  for (const which of ['http', 'control'] as const) {
    const links = loopbackLinks(3);
    const log: string[] = [];
    const listenOn = { ...loopbackListen(), [which]: tcpAt(`127.0.0.1:${busyPort}`) };
    const daemon = new Daemon(options(links, log, { config: { listen: listenOn } }));
    const err = await daemon.start().then(
      () => assert.fail(`start() succeeded with ${which} on a busy port`),
      (e: unknown) => e,
    );
    assert.ok(isLinkmuxError(err, 'LINKMUX_ERR_ADDRESS_IN_USE'), String(err));
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${busyPort}`), err.message);
    assert.match(err.message, /in use/);
    // What start() had opened before the failure is closed again.
    const opened = daemon.addresses;
    assert.ok(opened.socks, 'socks was listening before the failure');
    for (const addr of [opened.socks, which === 'control' ? opened.http : undefined]) {
      if (addr)
        assert.equal(await isListening(portOf(addr)), false, `${addr} still listening after the failure`);
    }
    assert.equal(await isListening(busyPort), true, 'the other owner keeps its port');
  }
});
