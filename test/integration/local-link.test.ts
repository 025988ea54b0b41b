// LocalLink on loopback, in 'address' and 'device' mode: bytes counted, sockets
// closed, timeout and abort. Nothing leaves the machine: the server listens on
// 127.0.0.1, and the "never answers" server is a listener whose accept queue is
// full (made through koffi, since a Node server always accepts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { LocalLink } from '../../src/links/local-link.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import { bindDeviceSupport, createBoundSocket, probeBindToDevice } from '../../src/net/bind-device.js';
import { LinkmuxError, isLinkmuxError, systemCode } from '../../src/util/errors.js';
import { createLogger } from '../../src/util/logger.js';

const lo: NetInterface = {
  name: 'lo',
  up: true,
  loopback: true,
  addresses: [{ address: '127.0.0.1', family: 4, prefixLength: 8 }],
};

const deviceSkip =
  process.platform !== 'linux'
    ? 'SO_BINDTODEVICE is Linux-only'
    : !bindDeviceSupport().available
      ? 'koffi did not load'
      : probeBindToDevice('lo') !== undefined
        ? `SO_BINDTODEVICE on lo fails with ${probeBindToDevice('lo')} (run as root)`
        : false;

/** Echo server on 127.0.0.1 that remembers its sockets, so tests can see them close. */
async function echoServer() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    sockets,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A listener on 127.0.0.1 that never accepts, with its one-slot queue filled: further SYNs are dropped. */
async function fullBacklog() {
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const libc = koffi.load(null);
  const socket = libc.func('int socket(int, int, int)');
  const bind = libc.func('int bind(int, const void *, uint32_t)');
  const listen = libc.func('int listen(int, int)');
  const getsockname = libc.func('int getsockname(int, void *, void *)');
  const close = libc.func('int close(int)');
  const fd = socket(2, 1 | 0o2000000, 0) as number;
  const sa = Buffer.alloc(16);
  sa.writeUInt16LE(2, 0);
  sa.set([127, 0, 0, 1], 4);
  assert.equal(bind(fd, sa, 16), 0);
  assert.equal(listen(fd, 0), 0);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(16);
  assert.equal(getsockname(fd, sa, len), 0);
  const port = sa.readUInt16BE(2);
  const filler = net.connect({ host: '127.0.0.1', port });
  await once(filler, 'connect');
  return {
    port,
    close: () => {
      filler.destroy();
      close(fd);
    },
  };
}

const servers: Array<{ close: () => unknown }> = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function exchange(socket: net.Socket, bytes: number): Promise<void> {
  const payload = Buffer.alloc(bytes, 0x61);
  let got = 0;
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= bytes) resolve();
    });
    socket.on('error', reject);
  });
  socket.write(payload);
  await done;
}

for (const mode of ['address', 'device'] as const) {
  const skip =
    mode === 'device' ? deviceSkip : process.platform === 'win32' ? 'loopback binding differs' : false;

  test(`${mode} mode: bytes of live and closed sockets are counted, close() drains`, { skip }, async () => {
    const srv = await echoServer();
    servers.push(srv);
    const link = new LocalLink(lo, { mode, platform: 'linux' });
    assert.equal(link.mode, mode);
    const a = await link.connect({ host: '127.0.0.1', port: srv.port });
    const b = await link.connect({ host: 'localhost', port: srv.port });
    assert.equal(a.remoteAddress, '127.0.0.1');
    assert.equal(a.localAddress, '127.0.0.1');
    assert.equal(link.stats().activeConnections, 2);
    await exchange(a, 100_000);
    await exchange(b, 5_000);
    let st = link.stats();
    assert.equal(st.bytesOut, 105_000);
    assert.equal(st.bytesIn, 105_000);

    a.end();
    await once(a, 'close');
    st = link.stats();
    assert.equal(st.activeConnections, 1);
    assert.equal(st.bytesIn, 105_000, 'closed sockets stay counted');
    assert.equal(st.bytesOut, 105_000);

    let drained = false;
    const closing = link.close().then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(drained, false, 'close() waits for the open socket');
    await assert.rejects(link.connect({ host: '127.0.0.1', port: srv.port }), (e) =>
      isLinkmuxError(e, 'LINKMUX_ERR_CONNECT'),
    );
    b.end();
    await closing;
    assert.deepEqual(link.stats(), {
      bytesIn: 105_000,
      bytesOut: 105_000,
      activeConnections: 0,
      connectFailures: 0,
    });
    // The server saw its sockets end too.
    for (let i = 0; i < 50 && srv.sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.sockets.size, 0);
  });

  test(`${mode} mode: destroy() ends every socket at once`, { skip }, async () => {
    const srv = await echoServer();
    servers.push(srv);
    const link = new LocalLink(lo, { mode, platform: 'linux' });
    const socks = await Promise.all([1, 2, 3].map(() => link.connect({ host: '127.0.0.1', port: srv.port })));
    await exchange(socks[0]!, 1000);
    const closed = socks.map((s) => once(s, 'close'));
    link.destroy();
    await Promise.all(closed);
    assert.equal(link.stats().activeConnections, 0);
    assert.equal(link.stats().bytesIn, 1000);
  });

  test(
    `${mode} mode: refused connection is LINKMUX_ERR_REFUSED naming link and destination`,
    { skip },
    async () => {
      const srv = await echoServer();
      await srv.close(); // the port is now closed: the kernel answers RST, locally
      const link = new LocalLink(lo, { mode, platform: 'linux' });
      await assert.rejects(
        link.connect({ host: '127.0.0.1', port: srv.port }),
        (e) =>
          isLinkmuxError(e, 'LINKMUX_ERR_REFUSED') &&
          e.message.includes('link lo') &&
          e.message.includes(`127.0.0.1:${srv.port}`) &&
          /refused/.test(e.message),
      );
      const st = link.stats();
      assert.equal(st.connectFailures, 1);
      assert.match(st.lastError ?? '', /refused/);
      assert.equal(st.activeConnections, 0);
    },
  );

  test(
    `${mode} mode: timeout against a full backlog destroys the half-open socket`,
    { skip: skip || deviceOrKoffiSkip() },
    async () => {
      const stuck = await fullBacklog();
      servers.push(stuck);
      const link = new LocalLink(lo, { mode, platform: 'linux' });
      const t0 = performance.now();
      await assert.rejects(
        link.connect({ host: '127.0.0.1', port: stuck.port }, { timeoutMs: 200 }),
        (e) =>
          isLinkmuxError(e, 'LINKMUX_ERR_TIMEOUT') &&
          e.message.includes(`127.0.0.1:${stuck.port} through link lo`) &&
          e.message.includes('200 ms'),
      );
      const took = performance.now() - t0;
      assert.ok(took >= 190 && took < 2000, `took ${took} ms`);
      assert.equal(link.stats().connectFailures, 1);
      await link.close(); // resolves only if the half-open socket is gone
    },
  );

  test(`${mode} mode: abort during connect`, { skip: skip || deviceOrKoffiSkip() }, async () => {
    const stuck = await fullBacklog();
    servers.push(stuck);
    const link = new LocalLink(lo, { mode, platform: 'linux' });
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    await assert.rejects(
      link.connect({ host: '127.0.0.1', port: stuck.port }, { signal: ctl.signal, timeoutMs: 5000 }),
      (e) => isLinkmuxError(e, 'LINKMUX_ERR_ABORTED') && e.message.includes('link lo'),
    );
    assert.equal(link.stats().connectFailures, 0, 'an abort is not the link failing');
    await link.close();
  });

  test(
    `${mode} mode: destroy() rejects a connect in progress`,
    { skip: skip || deviceOrKoffiSkip() },
    async () => {
      const stuck = await fullBacklog();
      servers.push(stuck);
      const link = new LocalLink(lo, { mode, platform: 'linux' });
      const pending = link.connect({ host: '127.0.0.1', port: stuck.port });
      setTimeout(() => link.destroy(), 30);
      await assert.rejects(
        pending,
        (e) => isLinkmuxError(e, 'LINKMUX_ERR_ABORTED') && /shut down/.test(e.message),
      );
      await link.close();
    },
  );
}

function deviceOrKoffiSkip(): string | false {
  return process.platform === 'linux' && bindDeviceSupport().available
    ? false
    : 'needs koffi on Linux for the stuck listener';
}

test('device mode over IPv6 ::1', { skip: deviceSkip }, async (t) => {
  const server = net.createServer((s) => s.end('six'));
  try {
    server.listen(0, '::1');
    await once(server, 'listening');
  } catch {
    t.skip('no IPv6 loopback');
    return;
  }
  servers.push({ close: () => new Promise((r) => server.close(r)) });
  const link = new LocalLink(
    { ...lo, addresses: [{ address: '::1', family: 6, prefixLength: 128 }] },
    { mode: 'device', platform: 'linux' },
  );
  const s = await link.connect({ host: '[::1]', port: (server.address() as AddressInfo).port });
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  await once(s, 'close');
  assert.equal(Buffer.concat(chunks).toString(), 'six');
  assert.equal(link.stats().bytesIn, 3);
});

test('EPERM from SO_BINDTODEVICE falls back to address binding once, with one warning', async () => {
  const srv = await echoServer();
  servers.push(srv);
  const lines: string[] = [];
  let dials = 0;
  const link = new LocalLink(lo, {
    mode: 'device',
    platform: 'linux',
    probeDevice: () => undefined,
    logger: createLogger('info', (l) => lines.push(l)),
    dialDevice: () => {
      dials++;
      throw new LinkmuxError('LINKMUX_ERR_BIND_FAILED', 'cannot bind a socket to lo: EPERM', {
        cause: Object.assign(new Error('EPERM'), { code: 'EPERM' }),
      });
    },
  });
  const a = await link.connect({ host: '127.0.0.1', port: srv.port });
  const b = await link.connect({ host: '127.0.0.1', port: srv.port });
  assert.equal(dials, 1);
  assert.equal(link.mode, 'address');
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /warn: .*EPERM.*root.*linkmux route setup --apply/);
  assert.equal(link.stats().connectFailures, 0);
  link.destroy();
  await Promise.all([once(a, 'close'), once(b, 'close')]);
});

test('other bind failures are reported, not papered over', async () => {
  const link = new LocalLink(lo, {
    mode: 'device',
    platform: 'linux',
    probeDevice: () => undefined,
    dialDevice: () => {
      throw new LinkmuxError('LINKMUX_ERR_BIND_FAILED', 'cannot bind a socket to lo: ENODEV', {
        cause: Object.assign(new Error('ENODEV'), { code: 'ENODEV' }),
      });
    },
  });
  await assert.rejects(link.connect({ host: '127.0.0.1', port: 9 }), (e) =>
    isLinkmuxError(e, 'LINKMUX_ERR_BIND_FAILED'),
  );
  assert.equal(link.mode, 'device');
  assert.equal(link.stats().connectFailures, 1);
});

test(
  'bind-device: unknown device is ENODEV, bad names are refused before any syscall',
  { skip: deviceSkip },
  () => {
    assert.equal(probeBindToDevice('lmxnosuch0'), 'ENODEV');
    assert.throws(
      () => createBoundSocket('lmxnosuch0', 4),
      (e) =>
        isLinkmuxError(e, 'LINKMUX_ERR_BIND_FAILED') &&
        systemCode(e.cause) === 'ENODEV' &&
        /links --all/.test(e.message),
    );
    for (const bad of ['', 'a-name-longer-than-15', 'nul\0x']) {
      assert.throws(
        () => createBoundSocket(bad, 4),
        (e) => isLinkmuxError(e, 'LINKMUX_ERR_BIND_FAILED'),
      );
    }
  },
);
