// socks5Connect on loopback against the project's own SOCKS5 server (with a
// Dialer that just calls net.connect), over plain TCP and over TLS: data
// intact both ways, a target that speaks first, the reply and the target's
// first bytes in one segment, and each failure mapped to its code (wrong
// password, no password, a denying rule, a refused port, a server that is not
// SOCKS5, one that closes, one that never answers, an abort). After every
// handshake no listener of ours is left and the socket is neither lost nor
// destroyed by us. Every socket and server is closed in finally.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import type { DialContext, Dialed, Dialer } from '../../src/proxy/dialer.js';
import type { Destination } from '../../src/links/link.js';
import { createSocks5Server } from '../../src/proxy/socks5/socks5-server.js';
import type { Socks5ServerOptions } from '../../src/proxy/socks5/socks5-server.js';
import { socks5Connect } from '../../src/socks5/socks5-client.js';
import type { Socks5ConnectOptions } from '../../src/socks5/socks5-client.js';
import { makeSelfSignedCert } from '../../src/testbed/self-signed-cert.js';
import { LinkmuxError, isLinkmuxError, systemCode } from '../../src/util/errors.js';
import type { ErrorCode } from '../../src/util/errors.js';
import { tempDir } from '../helpers/loopback.js';
import { freePort } from '../helpers/proxy-clients.js';

const AUTH = { username: 'linkmux', password: 'Qm9ndXMtc2VjcmV0LW9ubHktZm9yLXRlc3RzLTEyMzQ' };
const SERVER = 'node test (127.0.0.1)';
const LISTENER_EVENTS = ['readable', 'data', 'end', 'close', 'error'] as const;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A Dialer that connects straight from this machine; a failed connect keeps its errno as the cause. */
class DirectDialer implements Dialer {
  async dial(dst: Destination, ctx: DialContext = {}): Promise<Dialed> {
    const socket = net.connect({ host: dst.host, port: dst.port });
    try {
      await once(socket, 'connect', ctx.signal ? { signal: ctx.signal } : {});
      return { socket, link: 'direct' };
    } catch (err) {
      socket.destroy();
      // As linkmux's links do: a refusal is the destination's answer, said by the code.
      const code = systemCode(err) === 'ECONNREFUSED' ? 'LINKMUX_ERR_REFUSED' : 'LINKMUX_ERR_CONNECT';
      throw new LinkmuxError(code, `cannot connect to ${dst.host}:${dst.port}`, { cause: err });
    }
  }

  openUdp(): Promise<never> {
    return Promise.reject(new Error('no UDP in this test'));
  }
}

/** Refuses every destination as PoolDialer's rules do (the front end only answers 0x02). */
class DenyingDialer extends DirectDialer {
  override async dial(dst: Destination): Promise<Dialed> {
    throw new LinkmuxError(
      'LINKMUX_ERR_DENIED',
      `${dst.host}:${dst.port} is refused by rule 1 of the config`,
    );
  }
}

/** Everything a test opens, closed in its finally. */
class Scope {
  private readonly sockets = new Set<net.Socket>();
  private readonly servers: net.Server[] = [];

  track<S extends net.Socket>(socket: S): S {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    return socket;
  }

  async listen(server: net.Server): Promise<number> {
    this.servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  }

  /** A raw TCP server whose connections are tracked; `handle` plays the SOCKS5 server by hand. */
  raw(handle: (s: net.Socket) => void): Promise<number> {
    return this.listen(
      net.createServer((s) => {
        this.track(s);
        s.on('error', () => {});
        handle(s);
      }),
    );
  }

  /** An echo target; with `banner`, it speaks first. */
  echo(banner?: Buffer): Promise<number> {
    return this.raw((s) => {
      if (banner) s.write(banner);
      s.pipe(s);
    });
  }

  async socks(opts: Partial<Socks5ServerOptions> = {}): Promise<number> {
    const server = createSocks5Server({ dialer: new DirectDialer(), ...opts });
    server.on('connection', (s: net.Socket) => this.track(s));
    return this.listen(server);
  }

  async connect(port: number): Promise<net.Socket> {
    const s = this.track(net.connect({ host: '127.0.0.1', port }));
    await once(s, 'connect');
    return s;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const server of this.servers) {
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

async function withScope(fn: (scope: Scope) => Promise<void>): Promise<void> {
  const scope = new Scope();
  try {
    await fn(scope);
  } finally {
    await scope.close();
  }
}

function listenerCounts(s: net.Socket): number[] {
  return LISTENER_EVENTS.map((e) => s.listenerCount(e));
}

/** socks5Connect, asserting it leaves the socket's listeners as it found them, either way. */
async function handshake(socket: net.Socket, opts: Partial<Socks5ConnectOptions> & { dst: Destination }) {
  const before = listenerCounts(socket);
  try {
    return await socks5Connect(socket, { server: SERVER, timeoutMs: 5_000, ...opts });
  } finally {
    assert.deepEqual(listenerCounts(socket), before, `listeners on ${LISTENER_EVENTS.join('/')}`);
  }
}

/** Asserts `p` rejects with `code` and a message matching `message`, never holding the password. */
async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message: RegExp): Promise<LinkmuxError> {
  let caught: unknown;
  await p.catch((err: unknown) => {
    caught = err;
  });
  assert.ok(isLinkmuxError(caught, code), `expected ${code}, got ${String(caught)}`);
  assert.match(caught.message, message);
  assert.ok(!caught.message.includes(AUTH.password), caught.message);
  return caught;
}

/** Reads exactly n bytes with a 'data' listener (the usual way a caller picks the socket up). */
function readBytes(socket: net.Socket, n: number, timeoutMs = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const timer = setTimeout(() => {
      done();
      reject(new Error(`read ${have} of ${n} bytes in ${timeoutMs} ms`));
    }, timeoutMs);
    const onData = (c: Buffer) => {
      chunks.push(c);
      have += c.length;
      if (have >= n) {
        done();
        resolve(Buffer.concat(chunks));
      }
    };
    const onEnd = () => {
      done();
      reject(new Error(`ended after ${have} of ${n} bytes`));
    };
    const done = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.resume();
  });
}

test('with credentials: 4 MiB echoed intact both ways, BND is the dialed socket, socket left alive', async () => {
  await withScope(async (scope) => {
    const target = await scope.echo();
    const socket = await scope.connect(await scope.socks({ auth: AUTH }));
    const bnd = await handshake(socket, { dst: { host: '127.0.0.1', port: target }, auth: AUTH });
    assert.equal(bnd.host, '127.0.0.1');
    assert.ok(bnd.port > 0);
    assert.ok(!socket.destroyed);
    const data = randomBytes(4 << 20);
    const back = readBytes(socket, data.length);
    socket.write(data);
    assert.equal(sha(await back), sha(data));
  });
});

test('without credentials against an open server; a domain destination is resolved by the server', async () => {
  await withScope(async (scope) => {
    const target = await scope.echo();
    const socket = await scope.connect(await scope.socks());
    await handshake(socket, { dst: { host: 'localhost', port: target } });
    socket.write('ping');
    assert.equal((await readBytes(socket, 4)).toString(), 'ping');
  });
});

test('a target that speaks first: its banner reaches the caller, then the echo', async () => {
  await withScope(async (scope) => {
    const banner = Buffer.from('220 target ready\r\n');
    const target = await scope.echo(banner);
    const socket = await scope.connect(await scope.socks({ auth: AUTH }));
    await handshake(socket, { dst: { host: '127.0.0.1', port: target }, auth: AUTH });
    assert.equal((await readBytes(socket, banner.length)).toString(), banner.toString());
    socket.write('hello');
    assert.equal((await readBytes(socket, 5)).toString(), 'hello');
  });
});

test('the reply and the target first bytes in one segment: nothing lost, for a late reader or a pipe', async () => {
  await withScope(async (scope) => {
    const first = randomBytes(3000);
    // A hand-made server: method, then reply + the target's first bytes in a single write.
    const port = await scope.raw((s) => {
      let seen = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        seen = Buffer.concat([seen, d]);
        if (seen.length === 3) s.write(Buffer.from('0500', 'hex'));
        if (seen.length === 3 + 10)
          s.write(Buffer.concat([Buffer.from('050000017f0000010050', 'hex'), first]));
      });
    });
    const late = await scope.connect(port);
    await handshake(late, { dst: { host: '127.0.0.1', port: 80 } });
    // Nobody reads for a while: the bytes wait in the socket instead of being emitted to no one.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(sha(await readBytes(late, first.length)), sha(first));

    const piped = await scope.connect(port);
    await handshake(piped, { dst: { host: '127.0.0.1', port: 80 } });
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    piped.pipe(sink);
    const deadline = Date.now() + 5_000;
    while (Buffer.concat(chunks).length < first.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(sha(Buffer.concat(chunks)), sha(first));
  });
});

test('over TLS (as to a node): handshake, banner and echo through a TLSSocket', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const { key, cert } = await makeSelfSignedCert(dir, '127.0.0.1');
    await withScope(async (scope) => {
      const banner = Buffer.from('hello over tls\n');
      const target = await scope.echo(banner);
      const socks = createSocks5Server({ dialer: new DirectDialer(), auth: AUTH });
      const front = tls.createServer({ key, cert }, (s) => {
        scope.track(s);
        socks.emit('connection', s);
      });
      const port = await scope.listen(front);
      const socket = scope.track(tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }));
      await once(socket, 'secureConnect');
      await handshake(socket, { dst: { host: '127.0.0.1', port: target }, auth: AUTH });
      assert.equal((await readBytes(socket, banner.length)).toString(), banner.toString());
      const data = randomBytes(256 << 10);
      const back = readBytes(socket, data.length);
      socket.write(data);
      assert.equal(sha(await back), sha(data));
    });
  } finally {
    await cleanup();
  }
});

test('a wrong password is LINKMUX_ERR_NODE_AUTH, saying how to get a new token', async () => {
  await withScope(async (scope) => {
    const socket = await scope.connect(await scope.socks({ auth: AUTH }));
    const wrong = { username: AUTH.username, password: `${AUTH.password.slice(0, -1)}x` };
    const err = await rejectsWith(
      handshake(socket, { dst: { host: '127.0.0.1', port: 9 }, auth: wrong }),
      'LINKMUX_ERR_NODE_AUTH',
      /^node test \(127\.0\.0\.1\) refused the credentials: the token is wrong or was rotated; get a new one with `linkmux node --token` on that machine$/,
    );
    assert.ok(!err.message.includes(wrong.password));
    assert.ok(!socket.destroyed, 'the caller destroys the socket, not socks5Connect');
  });
});

test('no credentials for a server that wants them is LINKMUX_ERR_NODE_AUTH', async () => {
  await withScope(async (scope) => {
    const socket = await scope.connect(await scope.socks({ auth: AUTH }));
    await rejectsWith(
      handshake(socket, { dst: { host: '127.0.0.1', port: 9 } }),
      'LINKMUX_ERR_NODE_AUTH',
      /requires a password .*`linkmux node --token`/,
    );
  });
});

test('a rule that denies is LINKMUX_ERR_DENIED', async () => {
  await withScope(async (scope) => {
    const target = await scope.echo();
    const socket = await scope.connect(await scope.socks({ auth: AUTH, dialer: new DenyingDialer() }));
    await rejectsWith(
      handshake(socket, { dst: { host: '127.0.0.1', port: target }, auth: AUTH }),
      'LINKMUX_ERR_DENIED',
      /^node test \(127\.0\.0\.1\) refuses to relay to 127\.0\.0\.1:\d+ \(reply 0x02/,
    );
  });
});

test('a refused port is LINKMUX_ERR_REFUSED: the destination answered (no errno is made up)', async () => {
  await withScope(async (scope) => {
    const closed = await freePort();
    const socket = await scope.connect(await scope.socks({ auth: AUTH }));
    const err = await rejectsWith(
      handshake(socket, { dst: { host: '127.0.0.1', port: closed }, auth: AUTH }),
      'LINKMUX_ERR_REFUSED',
      /cannot reach 127\.0\.0\.1:\d+: connection refused \(reply 0x05\)/,
    );
    assert.equal(err.cause, undefined);
  });
});

test('a server that is not SOCKS5 is LINKMUX_ERR_BAD_RESPONSE', async () => {
  await withScope(async (scope) => {
    const port = await scope.raw((s) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const socket = await scope.connect(port);
    await rejectsWith(
      handshake(socket, { dst: { host: '127.0.0.1', port: 80 }, auth: AUTH }),
      'LINKMUX_ERR_BAD_RESPONSE',
      /answered something that is not SOCKS5 \(method selection VER is 0x48, not 0x05\)/,
    );
  });
});

test('a server that closes mid-handshake is LINKMUX_ERR_CONNECT', async () => {
  await withScope(async (scope) => {
    const port = await scope.raw((s) => s.once('data', () => s.end(Buffer.from('0502', 'hex'))));
    const socket = await scope.connect(port);
    await rejectsWith(
      handshake(socket, { dst: { host: '127.0.0.1', port: 80 }, auth: AUTH }),
      'LINKMUX_ERR_CONNECT',
      /^the connection to node test \(127\.0\.0\.1\) was closed before it sent its authentication status/,
    );
  });
});

test('a server that never answers is LINKMUX_ERR_TIMEOUT within the timeout', async () => {
  await withScope(async (scope) => {
    const port = await scope.raw((s) => s.resume());
    const socket = await scope.connect(port);
    const started = Date.now();
    await rejectsWith(
      handshake(socket, { dst: { host: '127.0.0.1', port: 80 }, auth: AUTH, timeoutMs: 300 }),
      'LINKMUX_ERR_TIMEOUT',
      /did not complete the SOCKS5 handshake for 127\.0\.0\.1:80 within 300 ms \(it had not sent its method selection\)/,
    );
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 1_500, `${took} ms`);
    assert.ok(!socket.destroyed);
  });
});

test('an abort mid-handshake is LINKMUX_ERR_ABORTED at once', async () => {
  await withScope(async (scope) => {
    const port = await scope.raw((s) => s.resume());
    const socket = await scope.connect(port);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const started = Date.now();
    const err = await rejectsWith(
      handshake(socket, { dst: { host: '127.0.0.1', port: 80 }, auth: AUTH, signal: ac.signal }),
      'LINKMUX_ERR_ABORTED',
      /^CONNECT 127\.0\.0\.1:80 through node test \(127\.0\.0\.1\) was aborted$/,
    );
    assert.ok(Date.now() - started < 1_000);
    assert.equal((err.cause as Error).name, 'AbortError');
    assert.ok(!socket.destroyed);
  });
});

/** A hand-made server: answers the greeting with `method`, then (after the request) with `reply`. */
function scripted(scope: Scope, method: string, reply?: string): Promise<number> {
  return scope.raw((s) => {
    let seen = 0;
    s.on('data', (d: Buffer) => {
      seen += d.length;
      if (seen === 3) s.write(Buffer.from(method, 'hex'));
      else if (reply !== undefined && seen === 3 + 10) s.write(Buffer.from(reply, 'hex'));
    });
  });
}

test('each REP code becomes the error whose code says who is to blame, with no made-up errno', async () => {
  const cases: Array<[number, ErrorCode, string | undefined, RegExp]> = [
    [0x01, 'LINKMUX_ERR_CONNECT', undefined, /general failure \(reply 0x01\)/],
    [0x02, 'LINKMUX_ERR_DENIED', undefined, /add it to node\.allow on that machine/],
    [0x03, 'LINKMUX_ERR_UNREACHABLE', undefined, /network unreachable \(reply 0x03\)/],
    [0x04, 'LINKMUX_ERR_UNREACHABLE', undefined, /host unreachable \(reply 0x04\)/],
    [0x05, 'LINKMUX_ERR_REFUSED', undefined, /connection refused \(reply 0x05\)/],
    [0x06, 'LINKMUX_ERR_TIMEOUT', undefined, /timed out \(reply 0x06\)/],
    [0x07, 'LINKMUX_ERR_CONNECT', undefined, /does not support this command \(reply 0x07\)/],
    [0x08, 'LINKMUX_ERR_CONNECT', undefined, /does not support this address type \(reply 0x08\)/],
    [0x42, 'LINKMUX_ERR_CONNECT', undefined, /unknown reply code 0x42/],
  ];
  await withScope(async (scope) => {
    for (const [rep, code, errno, message] of cases) {
      const hexRep = rep.toString(16).padStart(2, '0');
      const port = await scripted(scope, '0500', `05${hexRep}0001000000000000`);
      const socket = await scope.connect(port);
      const err = await rejectsWith(
        handshake(socket, { dst: { host: '198.18.0.9', port: 443 } }),
        code,
        message,
      );
      assert.equal(systemCode(err.cause), errno, `reply ${hexRep}`);
      assert.match(err.message, /198\.18\.0\.9:443/);
    }
  });
});

test('a method other than the one offered is LINKMUX_ERR_NODE_AUTH', async () => {
  const cases: Array<[string, boolean, RegExp]> = [
    ['05ff', true, /refuses username\/password login \(method 0xff\)/],
    ['05ff', false, /requires a password \(it chose method 0xff\)/],
    ['0502', false, /requires a password \(it chose method 0x02\)/],
    ['0500', true, /chose authentication method 0x00, which linkmux did not offer/],
    ['0501', true, /chose authentication method 0x01, which linkmux did not offer/],
  ];
  await withScope(async (scope) => {
    for (const [method, withAuth, message] of cases) {
      const socket = await scope.connect(await scripted(scope, method));
      const opts = { dst: { host: '198.18.0.9', port: 443 }, ...(withAuth ? { auth: AUTH } : {}) };
      await rejectsWith(handshake(socket, opts), 'LINKMUX_ERR_NODE_AUTH', message);
    }
  });
});
