/**
 * npm run bench:relay-loopback — pipeSockets alone on loopback, where shaping
 * is not the point: a paced source (a child process writing BENCH_CHUNK bytes
 * every BENCH_EVERY_MS ms on each of BENCH_FLOWS connections, like segments
 * arriving from a slow uplink) → this process relaying → a sink in the child.
 * Prints this process's CPU seconds per GiB and the reads it made, with
 * coalescing on and off, back to back (BENCH_ROUNDS rounds of each).
 */
import net from 'node:net';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { pipeSockets } from '../src/proxy/pipe-sockets.js';
import { DEFAULT_COALESCE } from '../src/proxy/read-coalescing.js';

const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const FLOWS = env('BENCH_FLOWS', 6);
const CHUNK = env('BENCH_CHUNK', 1448);
const EVERY_MS = env('BENCH_EVERY_MS', 3);
const SECONDS = env('BENCH_SECONDS', 5);
const ROUNDS = env('BENCH_ROUNDS', 2);
const GiB = 1024 ** 3;
const HOLD_MS = env('BENCH_HOLD_MS', DEFAULT_COALESCE.maxHoldMs);
/** A two-way transfer's longest hold. */
const TRANSFER_HOLD_MS = env('BENCH_TRANSFER_HOLD_MS', DEFAULT_COALESCE.sustainedHoldMs);
/** A one-way transfer's longest hold (limits.relayHold): the paced flows here are one-way. */
const ONE_WAY_HOLD_MS = env('BENCH_ONE_WAY_HOLD_MS', DEFAULT_COALESCE.oneWayHoldMs);

async function child(): Promise<void> {
  // Source: paced writes for SECONDS on every connection, then FIN.
  const source = net.createServer((s) => {
    s.setNoDelay(true);
    const chunk = Buffer.alloc(CHUNK, 7);
    const end = Date.now() + SECONDS * 1000;
    const timer = setInterval(() => {
      if (Date.now() >= end) {
        clearInterval(timer);
        s.end();
      } else s.write(chunk);
    }, EVERY_MS);
    s.on('error', () => clearInterval(timer));
  });
  source.listen(0, '127.0.0.1');
  await once(source, 'listening');
  process.send!({ sourcePort: (source.address() as net.AddressInfo).port });
  process.on('message', (m: { relayPort: number }) => {
    void (async () => {
      const counts = await Promise.all(
        Array.from({ length: FLOWS }, async () => {
          const c = net.connect(m.relayPort, '127.0.0.1');
          let bytes = 0;
          let reads = 0;
          c.on('data', (d: Buffer) => {
            bytes += d.length;
            reads++;
          });
          await once(c, 'close');
          return { bytes, reads };
        }),
      );
      process.send!({
        bytes: counts.reduce((a, c) => a + c.bytes, 0),
        reads: counts.reduce((a, c) => a + c.reads, 0),
      });
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

async function round(kid: ReturnType<typeof fork>, sourcePort: number, coalesce: boolean): Promise<string> {
  let relayReads = 0;
  const relay = net.createServer({ allowHalfOpen: true }, (client) => {
    const target = net.connect({ port: sourcePort, host: '127.0.0.1', allowHalfOpen: true });
    target.on('data', () => relayReads++);
    void pipeSockets(client, target, {
      coalesce: coalesce
        ? {
            ...DEFAULT_COALESCE,
            maxHoldMs: HOLD_MS,
            sustainedHoldMs: TRANSFER_HOLD_MS,
            oneWayHoldMs: ONE_WAY_HOLD_MS,
          }
        : false,
    });
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const cpu0 = process.cpuUsage();
  kid.send({ relayPort: (relay.address() as net.AddressInfo).port });
  const [res] = (await once(kid, 'message')) as [{ bytes: number; reads: number }];
  const cpu = process.cpuUsage(cpu0);
  relay.close();
  const s = (cpu.user + cpu.system) / 1e6;
  return (
    `coalesce ${coalesce ? `on (≤ ${HOLD_MS} ms, transfers ≤ ${TRANSFER_HOLD_MS} ms, one-way ≤ ${ONE_WAY_HOLD_MS} ms)` : 'off'}: ${(res.bytes / 1e6).toFixed(1)} MB, ${(s / (res.bytes / GiB)).toFixed(2)} CPU-s/GiB ` +
    `(user ${(cpu.user / 1e6).toFixed(2)} s, sys ${(cpu.system / 1e6).toFixed(2)} s), ` +
    `relay reads ${relayReads} (${(res.bytes / relayReads).toFixed(0)} B each), sink reads ${res.reads}`
  );
}

async function main(): Promise<void> {
  if (process.argv[2] === 'child') return child();
  const kid = fork(fileURLToPath(import.meta.url), ['child']);
  try {
    const [first] = (await once(kid, 'message')) as [{ sourcePort: number }];
    console.log(
      `## pipeSockets on loopback: ${FLOWS} flows × ${CHUNK} B every ${EVERY_MS} ms for ${SECONDS} s`,
    );
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of [false, true]) console.log(await round(kid, first.sourcePort, c));
    }
  } finally {
    kid.disconnect();
  }
}

await main();
