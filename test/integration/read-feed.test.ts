// Sockets made with a ReadFeed (net/read-feed.ts, reused read buffers): as ordinary sockets before a relay takes them (bytes exact, pause/resume), and under pipeSockets: bytes the target sent before the relay started come first, a slow client (queued writes, back-pressure) still gets every byte in order, FIN passes both ways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ReadFeed, readFeedOf } from '../../src/net/read-feed.js';
import { pipeSockets } from '../../src/proxy/pipe-sockets.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function listen(onSocket: (s: net.Socket) => void, highWaterMark?: number): Promise<net.Server> {
  const server = net.createServer(
    { allowHalfOpen: true, ...(highWaterMark ? { highWaterMark } : {}) },
    onSocket,
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

function feedSocket(server: net.Server): net.Socket {
  const feed = new ReadFeed();
  return feed.attach(
    net.connect({
      port: (server.address() as net.AddressInfo).port,
      host: '127.0.0.1',
      allowHalfOpen: true,
      onread: feed.onread,
    }),
  );
}

test('a feed socket without a relay reads like an ordinary one, pause and resume included', async () => {
  const data = randomBytes(8 * 1024 * 1024);
  const server = await listen((s) => s.end(data));
  const s = feedSocket(server);
  assert.ok(readFeedOf(s), 'the socket took the onread option');
  const parts: Buffer[] = [];
  let pauses = 0;
  s.on('data', (d: Buffer) => {
    parts.push(d);
    if (parts.length % 16 === 0) {
      pauses++;
      s.pause();
      setTimeout(() => s.resume(), 2);
    }
  });
  await once(s, 'end');
  s.destroy();
  server.close();
  assert.ok(pauses > 0);
  assert.equal(sha(Buffer.concat(parts)), sha(data));
});

for (const [what, highWaterMark] of [
  ['', undefined],
  [
    ' (a client socket that queues 4 MiB before it pushes back: reads go on while writes hold chunks)',
    4 << 20,
  ],
] as const) {
  test(`a relay over a feed socket: early bytes first, a slow client gets every byte in order, FIN both ways${what}`, async () => {
    const banner = Buffer.from('220 hello before the relay\r\n');
    const down = randomBytes(48 * 1024 * 1024);
    const up = randomBytes(3 * 1024 * 1024);
    let targetGot: Promise<Buffer> | undefined;
    const target = await listen((s) => {
      s.write(banner);
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => parts.push(d));
      targetGot = once(s, 'end').then(() => Buffer.concat(parts));
      // The bulk starts once the relay runs (the client's first byte says so).
      s.once('data', () => s.end(down));
    });
    let dataEvents = 0;
    let result: ReturnType<typeof pipeSockets> | undefined;
    const relay = await listen((a) => {
      const b = feedSocket(target);
      b.once('connect', () => {
        // The banner is read (and pushed into b's Readable side) before the relay starts.
        setTimeout(() => {
          b.on('data', () => dataEvents++);
          result = pipeSockets(a, b);
        }, 100);
      });
    }, highWaterMark);
    const client = net.connect({
      port: (relay.address() as net.AddressInfo).port,
      host: '127.0.0.1',
      allowHalfOpen: true,
    });
    await once(client, 'connect');
    const parts: Buffer[] = [];
    let n = 0;
    // A slow reader: the relay's writes queue, so it must stop reading and leave queued chunks alone.
    client.on('data', (d: Buffer) => {
      parts.push(d);
      if (++n % 8 === 0) {
        client.pause();
        setTimeout(() => client.resume(), 5);
      }
    });
    const ended = once(client, 'end');
    await sleep(150);
    client.write(up);
    await ended;
    // The upload's FIN only now: pipeSockets destroys both sides once one closes, which would
    // drop what the client socket still has queued (a limit of the relay, not of the feed).
    client.end();
    const got = Buffer.concat(parts);
    assert.equal(got.length, banner.length + down.length);
    assert.equal(sha(got), sha(Buffer.concat([banner, down])));
    assert.equal(sha(await targetGot!), sha(up));
    const r = await result!;
    assert.equal(r.bToA, banner.length + down.length);
    assert.equal(r.aToB, up.length);
    assert.equal(r.error, undefined);
    // Only the early bytes came as 'data': the bulk went through the reused buffer.
    assert.equal(dataEvents, 1);
    client.destroy();
    relay.close();
    target.close();
  });
}

test('a dropped feed socket dies young: the feed does not keep its socket past a minor GC', () => {
  // V8's scavenger (Node 20) keeps a WeakMap entry alive when its value refers to its key, so a
  // feed kept in a WeakMap promoted every closed connection to old space until a full GC.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (o?: { type: 'minor' | 'major' }) => void;
  const oldSpace = () =>
    v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
  gc({ type: 'major' });
  const before = oldSpace();
  const COUNT = 400;
  for (let i = 0; i < COUNT; i++) {
    const feed = new ReadFeed();
    feed.onread.buffer(); // what Node does first with a socket made with `onread`
    const socket = Object.assign(new net.Socket(), { payload: new Array<number>(2_000).fill(i) });
    feed.attach(socket);
    assert.equal(readFeedOf(socket), feed);
  }
  gc({ type: 'minor' });
  gc({ type: 'minor' });
  const grown = oldSpace() - before;
  // Kept alive, the sockets and their 16 KB payloads would be ≥ 6 MB of old space.
  assert.ok(grown < 2 * 1024 * 1024, `old space grew ${grown} bytes after ${COUNT} dropped feed sockets`);
});
