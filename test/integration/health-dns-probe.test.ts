// The dns:// probe on loopback: a tiny UDP DNS responder on 127.0.0.1 (dns-packet)
// and a fake link whose openUdp returns a plain dgram socket. Any reply counts
// (NXDOMAIN, REFUSED, SERVFAIL); silence fails within the probe timeout, also
// through a whole probe round; a link without UDP fails at once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import packet from 'dns-packet';
import { DNS_PROBE_QUESTION, createProber, probeDns, probeRound } from '../../src/health/prober.js';
import type { ProbeTarget } from '../../src/health/config.js';
import { parseProbeTarget } from '../../src/health/probe-target.js';
import { systemTimers } from '../../src/health/timers.js';
import type { Link, LinkStats } from '../../src/links/link.js';
import { systemClock } from '../../src/util/clock.js';

class UdpOnlyLink implements Link {
  readonly description = 'plain dgram sockets on loopback';
  capabilities: Link['capabilities'];
  constructor(
    readonly id: string,
    udp = true,
  ) {
    this.capabilities = { udp, remoteNames: false, families: new Set<4 | 6>([4]) };
  }
  async openUdp(family: 4 | 6): Promise<dgram.Socket> {
    const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    return socket;
  }
  connect(): Promise<Socket> {
    return Promise.reject(new Error('no TCP in this test'));
  }
  stats(): LinkStats {
    return { bytesIn: 0, bytesOut: 0, activeConnections: 0, connectFailures: 0 };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): void {}
}

type Mode = 'NXDOMAIN' | 'REFUSED' | 'SERVFAIL' | 'silent';

/** A responder answering every query with `mode`'s rcode (or never); records the questions. */
async function responder() {
  const server = dgram.createSocket('udp4');
  const state = { mode: 'NXDOMAIN' as Mode, questions: [] as string[] };
  server.on('message', (msg, rinfo) => {
    const q = packet.decode(msg);
    state.questions.push(`${q.questions?.[0]?.name} ${q.questions?.[0]?.type}`);
    if (state.mode === 'silent') return;
    const reply = packet.encode({
      type: 'response',
      id: q.id ?? 0,
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | rcodeBits(state.mode),
      questions: q.questions ?? [],
    });
    server.send(reply, rinfo.port, rinfo.address);
  });
  server.bind(0, '127.0.0.1');
  await once(server, 'listening');
  after(() => server.close());
  return { port: server.address().port, state };
}

function rcodeBits(mode: Exclude<Mode, 'silent'>): number {
  return { NXDOMAIN: 3, SERVFAIL: 2, REFUSED: 5 }[mode];
}

test('any reply is alive: NXDOMAIN, REFUSED and SERVFAIL through the link', async () => {
  const dns = await responder();
  const target = { kind: 'dns', host: '127.0.0.1', port: dns.port } as const;
  for (const mode of ['NXDOMAIN', 'REFUSED', 'SERVFAIL'] as const) {
    dns.state.mode = mode;
    const ctl = new AbortController();
    const outcome = await probeDns(new UdpOnlyLink('lo'), target, { timeoutMs: 1_000, signal: ctl.signal });
    assert.deepEqual(outcome, { ok: true }, mode);
  }
  assert.deepEqual(new Set(dns.state.questions), new Set([`${DNS_PROBE_QUESTION.name} A`]));
  assert.match(DNS_PROBE_QUESTION.name, /\.invalid$/, 'RFC 6761: answered by the resolver itself');
});

test('no reply: a timeout within the probe timeout, alone and as a round through the real prober', async () => {
  const dns = await responder();
  dns.state.mode = 'silent';
  const parsed = parseProbeTarget(`dns://127.0.0.1:${dns.port}`);
  assert.ok(parsed.ok);
  const target: ProbeTarget = parsed.target;
  const started = performance.now();
  const alone = await probeDns(new UdpOnlyLink('lo'), target as Extract<ProbeTarget, { kind: 'dns' }>, {
    timeoutMs: 300,
    signal: new AbortController().signal,
  });
  const took = performance.now() - started;
  assert.deepEqual(alone, { ok: false, reason: 'timeout' });
  assert.ok(took >= 280 && took < 1_000, `gave up after ${Math.round(took)} ms`);

  const roundStart = performance.now();
  const round = await probeRound(new UdpOnlyLink('lo'), [target], {
    prober: createProber(),
    clock: systemClock,
    timers: systemTimers,
    timeoutMs: 300,
  });
  assert.deepEqual(round, { ok: false, reason: 'timeout' });
  assert.ok(performance.now() - roundStart < 1_000);

  dns.state.mode = 'NXDOMAIN';
  const back = await probeRound(new UdpOnlyLink('lo'), [target], {
    prober: createProber(),
    clock: systemClock,
    timers: systemTimers,
    timeoutMs: 1_000,
  });
  assert.equal(back.ok, true);
  assert.equal(back.ok && back.target, `dns://127.0.0.1:${dns.port}`);
});

test('a link that carries no UDP fails the dns probe at once, without a datagram sent', async () => {
  const dns = await responder();
  const outcome = await probeDns(
    new UdpOnlyLink('relay', false),
    { kind: 'dns', host: '127.0.0.1', port: dns.port },
    { timeoutMs: 1_000, signal: new AbortController().signal },
  );
  assert.deepEqual(outcome, { ok: false, reason: 'link carries no UDP' });
  assert.equal(dns.state.questions.length, 0);
});
