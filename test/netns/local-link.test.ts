// Does LocalLink really force the uplink? A throwaway topology of two network
// namespaces (prefix lmxlink-<pid>-), nothing in the root namespace touched:
//
//   client ns                         server ns
//   u1 198.18.1.2/24 ── veth ── s1 198.18.1.1/24
//   u2 198.18.2.2/24 ── veth ── s2 198.18.2.1/24      lo 198.19.0.1 (TCP sink on :8080)
//   default via 198.18.1.1 metric 100
//   default via 198.18.2.1 metric 200
//
// A sender through u2 (the higher metric, never the kernel's choice) pushes bytes
// to the sink; the client's per-interface TX counters say which way they went.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { discoverInterfaces } from '../../src/net/interfaces.js';
import { planPolicyRoutes } from '../../src/net/policy-routing.js';
import { selectUplinks } from '../../src/links/select.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import { ExecRunner } from '../../src/util/runner.js';
import { skipReason } from '../helpers/netns.js';
import type { Runner } from '../../src/util/runner.js';

const PREFIX = `lmxlink-${process.pid}-`;
const CLIENT = `${PREFIX}c`;
const SERVER = `${PREFIX}s`;
const SINK = '198.19.0.1';
const PORT = 8080;
const BYTES = 2_000_000;
/** Traffic on the wrong interface may include ARP and stray control packets, never the payload. */
const STRAY = 64 * 1024;

// Loud when it cannot run (not root, not Linux, a tool missing): the uplink-forcing claims are then NOT verified.
const skip = skipReason();

const host = new ExecRunner();
const ip = (...args: string[]) => host.run('ip', args);
const inNs = (ns: string, ...cmd: string[]) => host.run('ip', ['netns', 'exec', ns, ...cmd]);

/** A Runner whose `ip` acts inside namespace `ns`. */
function nsRunner(ns: string): Runner {
  return { run: (cmd, args, opts) => host.run(cmd, cmd === 'ip' ? ['-n', ns, ...args] : args, opts) };
}

async function removeLeftovers(): Promise<void> {
  const { stdout } = await ip('netns', 'list');
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^lmxlink-(\d+)-/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid !== process.pid;
    try {
      if (alive) process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive || name.startsWith(PREFIX)) await ip('netns', 'del', name).catch(() => {});
  }
}

async function buildTopology(): Promise<void> {
  await ip('netns', 'add', CLIENT);
  await ip('netns', 'add', SERVER);
  for (const i of [1, 2]) {
    await ip('-n', CLIENT, 'link', 'add', `u${i}`, 'type', 'veth', 'peer', 'name', `s${i}`, 'netns', SERVER);
    await ip('-n', CLIENT, 'addr', 'add', `198.18.${i}.2/24`, 'dev', `u${i}`);
    await ip('-n', SERVER, 'addr', 'add', `198.18.${i}.1/24`, 'dev', `s${i}`);
    await ip('-n', CLIENT, 'link', 'set', `u${i}`, 'up');
    await ip('-n', SERVER, 'link', 'set', `s${i}`, 'up');
  }
  await ip('-n', SERVER, 'addr', 'add', `${SINK}/32`, 'dev', 'lo');
  await ip('-n', SERVER, 'link', 'set', 'lo', 'up');
  await ip('-n', CLIENT, 'link', 'set', 'lo', 'up');
  await ip('-n', CLIENT, 'route', 'add', 'default', 'via', '198.18.1.1', 'dev', 'u1', 'metric', '100');
  await ip('-n', CLIENT, 'route', 'add', 'default', 'via', '198.18.2.1', 'dev', 'u2', 'metric', '200');
  // The server must answer mis-sourced packets (arriving on s1 from u2's address) so the
  // 'address without rule' case shows where bytes go rather than hanging; a real ISP drops them.
  for (const ns of [CLIENT, SERVER]) {
    await inNs(ns, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0');
  }
  for (const dev of ['s1', 's2']) await inNs(SERVER, 'sysctl', '-qw', `net.ipv4.conf.${dev}.rp_filter=0`);
  for (const dev of ['u1', 'u2']) await inNs(CLIENT, 'sysctl', '-qw', `net.ipv4.conf.${dev}.rp_filter=0`);
}

const SINK_JS = `
const net = require('node:net');
net.createServer((s) => {
  let n = 0;
  s.on('data', (d) => (n += d.length));
  s.on('end', () => s.end(String(n)));
  s.on('error', () => {});
}).listen(${PORT}, '${SINK}', () => console.log('ready'));
`;

async function startSink(): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', SERVER, process.execPath, '-e', SINK_JS], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`sink exited early (${code})`)));
  });
  const timer = setTimeout(() => child.kill(), 10_000);
  try {
    await ready;
  } finally {
    clearTimeout(timer);
  }
  return child;
}

/** Runs one LocalLink connection inside the client namespace (a child process: sockets belong to a netns). */
const SENDER_JS = `
const { LocalLink } = await import(process.env.LMX_MODULE);
const link = new LocalLink(JSON.parse(process.env.LMX_IFACE), { mode: process.env.LMX_MODE, platform: 'linux' });
try {
  const s = await link.connect({ host: '${SINK}', port: ${PORT} }, { timeoutMs: Number(process.env.LMX_TIMEOUT) });
  const local = s.localAddress;
  let reply = '';
  s.setEncoding('utf8');
  s.on('data', (d) => (reply += d));
  s.end(Buffer.alloc(${BYTES}, 0x5a));
  await new Promise((resolve, reject) => { s.on('close', resolve); s.on('error', reject); });
  console.log(JSON.stringify({ ok: true, mode: link.mode, local, reply, stats: link.stats() }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, code: e.code, message: e.message }));
}
`;

interface SendResult {
  ok: boolean;
  mode?: string;
  local?: string;
  reply?: string;
  code?: string;
  message?: string;
  stats?: { bytesOut: number; bytesIn: number; activeConnections: number };
}

async function txBytes(dev: string): Promise<number> {
  const { stdout } = await ip('-n', CLIENT, '-j', '-s', 'link', 'show', 'dev', dev);
  const [info] = JSON.parse(stdout) as Array<{ stats64: { tx: { bytes: number } } }>;
  return info!.stats64.tx.bytes;
}

/** Sends BYTES through `iface` in `mode`; returns the result and how many bytes each uplink transmitted. */
async function sendThrough(iface: NetInterface, mode: 'device' | 'address', timeoutMs = 5000) {
  const before = { u1: await txBytes('u1'), u2: await txBytes('u2') };
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', CLIENT, process.execPath, '--input-type=module', '-e', SENDER_JS],
      {
        timeout: 30_000,
        env: {
          ...process.env,
          LMX_MODULE: new URL('../../src/links/local-link.js', import.meta.url).href,
          LMX_IFACE: JSON.stringify(iface),
          LMX_MODE: mode,
          LMX_TIMEOUT: String(timeoutMs),
        },
      },
      (err, out) => (err ? reject(err) : resolve({ stdout: out })),
    );
  });
  const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as SendResult;
  const sent = { u1: (await txBytes('u1')) - before.u1, u2: (await txBytes('u2')) - before.u2 };
  return { result, sent };
}

test('LocalLink forces the uplink (network namespaces)', { skip, timeout: 120_000 }, async (t) => {
  await removeLeftovers();
  let sink: ChildProcess | undefined;
  try {
    await buildTopology();
    sink = await startSink();
    const runner = nsRunner(CLIENT);
    const interfaces = await discoverInterfaces(runner, 'linux');
    const [u1, u2] = selectUplinks(interfaces, [], 'linux');
    assert.ok(u1 && u2);

    await t.test('discovery sees both uplinks with their gateways and metrics', () => {
      assert.deepEqual(
        [u1, u2].map((i) => [i.name, i.gateway, i.metric, i.addresses.map((a) => a.address)]),
        [
          ['u1', '198.18.1.1', 100, ['198.18.1.2']],
          ['u2', '198.18.2.1', 200, ['198.18.2.2']],
        ],
      );
    });

    await t.test('device mode: bytes for u2 leave by u2, not by the default-route u1', async () => {
      const { result, sent } = await sendThrough(u2, 'device');
      assert.equal(result.ok, true, result.message);
      assert.equal(result.mode, 'device');
      assert.equal(result.local, '198.18.2.2');
      assert.equal(result.reply, String(BYTES), 'the sink got every byte');
      assert.equal(result.stats?.bytesOut, BYTES);
      assert.ok(sent.u2 >= BYTES, `u2 sent ${sent.u2}`);
      assert.ok(sent.u1 < STRAY, `u1 sent ${sent.u1}`);
    });

    await t.test(
      'address mode without a policy rule: bytes leave by u1 with u2 source (the bug)',
      async () => {
        const { result, sent } = await sendThrough(u2, 'address');
        assert.equal(result.ok, true, result.message);
        assert.equal(result.local, '198.18.2.2');
        assert.ok(sent.u1 >= BYTES, `u1 sent ${sent.u1}`);
        assert.ok(sent.u2 < STRAY, `u2 sent ${sent.u2}`);
      },
    );

    await t.test(
      'address mode with linkmux policy rules: bytes leave by u2; apply and remove are idempotent',
      async () => {
        const plan = planPolicyRoutes([u1, u2]);
        assert.equal((await plan.apply(runner)).length, plan.commands.length);
        assert.deepEqual(await plan.apply(runner), [], 'a second apply changes nothing');
        try {
          const { result, sent } = await sendThrough(u2, 'address');
          assert.equal(result.ok, true, result.message);
          assert.ok(sent.u2 >= BYTES, `u2 sent ${sent.u2}`);
          assert.ok(sent.u1 < STRAY, `u1 sent ${sent.u1}`);
        } finally {
          assert.ok((await plan.remove(runner)).length > 0);
        }
        assert.deepEqual(await plan.remove(runner), [], 'a second remove finds nothing');
        const { stdout } = await ip('-n', CLIENT, '-j', '-4', 'rule', 'show');
        assert.deepEqual(
          (JSON.parse(stdout) as Array<{ priority: number }>).map((r) => r.priority),
          [0, 32766, 32767],
        );
      },
    );

    await t.test(
      'strict rp_filter drops the replies of a device-bound non-default uplink; policy rules fix it',
      async () => {
        await inNs(CLIENT, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=1');
        const plan = planPolicyRoutes([u1, u2]);
        try {
          const broken = await sendThrough(u2, 'device', 1500);
          assert.equal(broken.result.ok, false);
          assert.equal(broken.result.code, 'LINKMUX_ERR_TIMEOUT');
          await plan.apply(runner);
          const fixed = await sendThrough(u2, 'device');
          assert.equal(fixed.result.ok, true, fixed.result.message);
          assert.ok(fixed.sent.u2 >= BYTES, `u2 sent ${fixed.sent.u2}`);
        } finally {
          await plan.remove(runner);
          await inNs(CLIENT, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0');
        }
      },
    );
  } finally {
    if (sink && sink.exitCode === null) {
      sink.kill();
      await once(sink, 'exit').catch(() => {});
    }
    await ip('netns', 'del', CLIENT).catch(() => {});
    await ip('netns', 'del', SERVER).catch(() => {});
  }
});
