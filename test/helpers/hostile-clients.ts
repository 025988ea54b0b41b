/**
 * Load and hostile clients for the netns tier, run INSIDE a testbed namespace
 * (`tb.spawn(ns, node, [this file, mode, json])`) so the traffic stays in the
 * namespaces the test made. Prints one JSON line with what it saw on stdout.
 *
 *   node-ask  {token, targets:[{host,port}]}           SOCKS5-in-TLS to a node with the token's secret:
 *                                                       the reply code of CONNECT to each target
 *   flood     {host, port, count, holdMs}              `count` idle TCP connections, held holdMs
 *   soak      {socks, http, target, path, churn, idle,  short connections through SOCKS5 and HTTP,
 *              slow, holdMs, concurrency}               idle tunnels, slow-header clients
 *
 * Every loop is bounded by count and by time; every socket is destroyed before exit.
 */
import net from 'node:net';
import tls from 'node:tls';
import { decodeJoinToken } from '../../src/links/join-token.js';

type Json = Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function connect(host: string, port: number, timeoutMs = 5_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('connect timeout'));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Reads exactly n bytes (or rejects on close/timeout). Bytes beyond n stay in a
 * per-socket buffer for the next read: unshift() loses them on a TLS socket.
 */
const leftovers = new WeakMap<net.Socket, Buffer>();
function readBytes(s: net.Socket | tls.TLSSocket, n: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = leftovers.get(s) ?? Buffer.alloc(0);
    leftovers.delete(s);
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      if (err) return reject(err);
      if (buf.length > n) leftovers.set(s, buf.subarray(n));
      resolve(buf.subarray(0, n));
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) done();
    };
    const onClose = () => done(new Error(`closed after ${buf.length} of ${n} bytes`));
    const timer = setTimeout(() => done(new Error('read timeout')), timeoutMs);
    if (buf.length >= n) return done();
    s.on('data', onData);
    s.once('close', onClose);
  });
}

function connectRequest(host: string, port: number): Buffer {
  const p = Buffer.from([port >> 8, port & 0xff]);
  if (net.isIPv4(host))
    return Buffer.concat([Buffer.from([5, 1, 0, 1]), Buffer.from(host.split('.').map(Number)), p]);
  const name = Buffer.from(host);
  return Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, p]);
}

/** Greeting (no auth or user/pass), then CONNECT; resolves with the reply code. */
async function socks5(
  s: net.Socket | tls.TLSSocket,
  host: string,
  port: number,
  auth?: { user: string; pass: string },
): Promise<number> {
  s.write(Buffer.from([5, 1, auth ? 2 : 0]));
  const m = await readBytes(s, 2);
  if (m[1] === 0xff) return -1;
  if (auth) {
    const u = Buffer.from(auth.user);
    const p = Buffer.from(auth.pass);
    s.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
    const a = await readBytes(s, 2);
    if (a[1] !== 0) return -2;
  }
  s.write(connectRequest(host, port));
  const head = await readBytes(s, 5);
  const rest = head[3] === 1 ? 5 : head[3] === 4 ? 17 : (head[4] ?? 0) + 2;
  await readBytes(s, rest);
  return head[1] ?? -3;
}

async function nodeAsk(args: Json): Promise<Json> {
  const token = decodeJoinToken(String(args.token));
  const targets = args.targets as { host: string; port: number }[];
  const results: { host: string; port: number; rep: number | string }[] = [];
  for (const t of targets.slice(0, 64)) {
    let s: tls.TLSSocket | undefined;
    try {
      s = tls.connect({
        host: token.host,
        port: token.port,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      });
      await new Promise<void>((resolve, reject) => {
        s!.once('secureConnect', () => resolve());
        s!.once('error', reject);
      });
      const rep = await socks5(s, t.host, t.port, { user: 'linkmux', pass: token.secret });
      let body = '';
      if (rep === 0) {
        s.write('GET / HTTP/1.0\r\n\r\n');
        body = (await readBytes(s, 6, 3_000).catch(() => Buffer.alloc(0))).toString();
      }
      results.push({ host: t.host, port: t.port, rep, ...(body ? { body } : {}) });
    } catch (err) {
      results.push({ host: t.host, port: t.port, rep: String(err) });
    } finally {
      s?.destroy();
    }
  }
  return { results };
}

async function flood(args: Json): Promise<Json> {
  const { host, port } = args as { host: string; port: number };
  const count = Math.min(Number(args.count), 20_000);
  const holdMs = Math.min(Number(args.holdMs), 120_000);
  const sockets: net.Socket[] = [];
  let opened = 0;
  let failed = 0;
  let closedByPeer = 0;
  const started = Date.now();
  for (let i = 0; i < count && Date.now() - started < holdMs; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, async () => {
        try {
          const s = await connect(host, port);
          opened++;
          s.on('error', () => {});
          s.once('close', () => closedByPeer++);
          sockets.push(s);
        } catch {
          failed++;
        }
      }),
    );
  }
  const openAtPeak = sockets.filter((s) => !s.destroyed).length;
  await sleep(Math.max(0, holdMs - (Date.now() - started)));
  const stillOpen = sockets.filter((s) => !s.destroyed).length;
  for (const s of sockets) s.destroy();
  return { opened, failed, closedByPeer, openAtPeak, stillOpenAtEnd: stillOpen };
}

/** A short connection: SOCKS5 CONNECT + GET, or an HTTP proxy GET; true when the body came back. */
async function shortOne(via: 'socks' | 'http', a: SoakArgs): Promise<boolean> {
  const [ph, pp] = hostPort(via === 'socks' ? a.socks : a.http);
  const s = await connect(ph, pp);
  s.on('error', () => {});
  try {
    const [th, tp] = hostPort(a.target);
    if (via === 'socks') {
      if ((await socks5(s, th, tp)) !== 0) return false;
      s.write(`GET ${a.path} HTTP/1.0\r\nHost: ${a.target}\r\n\r\n`);
    } else {
      s.write(`GET http://${a.target}${a.path} HTTP/1.1\r\nHost: ${a.target}\r\nConnection: close\r\n\r\n`);
    }
    const body = await new Promise<string>((resolve) => {
      let text = '';
      const timer = setTimeout(() => resolve(text), 10_000);
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      s.once('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
    return / 200 /.test(body.slice(0, 20));
  } finally {
    s.destroy();
  }
}

interface SoakArgs {
  socks: string;
  http: string;
  target: string;
  path: string;
  churn: number;
  idle: number;
  slow: number;
  holdMs: number;
  concurrency: number;
  deadlineMs: number;
}

function hostPort(text: string): [string, number] {
  const i = text.lastIndexOf(':');
  return [text.slice(0, i), Number(text.slice(i + 1))];
}

async function soak(raw: Json): Promise<Json> {
  const a = raw as unknown as SoakArgs;
  const started = Date.now();
  const overdue = () => Date.now() - started > a.deadlineMs;
  // Idle tunnels: established through the proxy (SOCKS5 CONNECT, HTTP CONNECT), then silent.
  const idle: net.Socket[] = [];
  let idleFailed = 0;
  for (let i = 0; i < a.idle && !overdue(); i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, a.idle - i) }, async (_, j) => {
        const viaSocks = (i + j) % 2 === 0;
        try {
          const [ph, pp] = hostPort(viaSocks ? a.socks : a.http);
          const s = await connect(ph, pp);
          s.on('error', () => {});
          idle.push(s);
          if (viaSocks) {
            const [th, tp] = hostPort(a.target);
            if ((await socks5(s, th, tp)) !== 0) throw new Error('refused');
          } else {
            s.write(`CONNECT ${a.target} HTTP/1.1\r\nHost: ${a.target}\r\n\r\n`);
            const head = (await readBytes(s, 12)).toString();
            if (!head.includes(' 200')) throw new Error(head);
          }
        } catch {
          idleFailed++;
        }
      }),
    );
  }
  // Slow-header clients: one byte every 2 s; the proxy must close each within its header deadline.
  const slowClosedAfter: number[] = [];
  const slow: net.Socket[] = [];
  const request = `GET http://${a.target}${a.path} HTTP/1.1\r\nHost: ${a.target}\r\nX-Slow: ${'x'.repeat(200)}\r\n\r\n`;
  const [hh, hp] = hostPort(a.http);
  for (let i = 0; i < a.slow; i++) {
    const s = await connect(hh, hp).catch(() => undefined);
    if (!s) continue;
    const opened = Date.now();
    s.on('error', () => {});
    s.on('data', () => {});
    let k = 0;
    const timer = setInterval(() => {
      if (s.destroyed || k >= request.length) return clearInterval(timer);
      s.write(request[k++]!);
    }, 2_000);
    s.once('close', () => {
      clearInterval(timer);
      slowClosedAfter.push(Date.now() - opened);
    });
    slow.push(s);
  }
  // Churn: short connections, half SOCKS5, half HTTP, `concurrency` at a time.
  let ok = 0;
  let bad = 0;
  let next = 0;
  const churnStart = Date.now();
  await Promise.all(
    Array.from({ length: a.concurrency }, async () => {
      while (next < a.churn && !overdue()) {
        const n = next++;
        try {
          if (await shortOne(n % 2 === 0 ? 'socks' : 'http', a)) ok++;
          else bad++;
        } catch {
          bad++;
        }
      }
    }),
  );
  const churnMs = Date.now() - churnStart;
  const idleAlive = idle.filter((s) => !s.destroyed).length;
  await sleep(Math.max(0, Math.min(a.holdMs, a.deadlineMs) - (Date.now() - started)));
  const closedByProxy = slowClosedAfter.length;
  for (const s of [...idle, ...slow]) s.destroy();
  return {
    churn: { asked: a.churn, ok, bad, ms: churnMs },
    idle: { asked: a.idle, failed: idleFailed, aliveAfterChurn: idleAlive },
    slow: {
      asked: a.slow,
      closedByProxy,
      maxClosedAfterMs: Math.max(0, ...slowClosedAfter.slice(0, closedByProxy)),
    },
    ms: Date.now() - started,
  };
}

const [mode, json] = process.argv.slice(2);
const args = JSON.parse(json ?? '{}') as Json;
const run = mode === 'node-ask' ? nodeAsk : mode === 'flood' ? flood : mode === 'soak' ? soak : undefined;
if (!run) {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
run(args).then(
  (out) => {
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
