/**
 * `linkmux up` as a user runs it: dist/src/cli/main.js spawned with a YAML
 * config in a temp dir, one link on the loopback interface (bound by source
 * address), health probes to a local listener, privateDirect off. Checks the
 * listen line, a curl through SOCKS5, `linkmux status` (table and --json),
 * SIGTERM draining to exit code 0, and the failures a user meets first: a
 * config with a wrong type or an unknown key, and a port already in use.
 * Ports are picked free beforehand (port 0 could not be known in advance).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { DaemonStatus } from '../../src/control/status-types.js';
import { tempDir } from '../helpers/loopback.js';
import { cliPath } from '../helpers/netns.js';
import { curlBytes, freePort, isListening, socksConnect } from '../helpers/proxy-clients.js';

let root: { dir: string; cleanup: () => Promise<void> };
let originPort: number;
let probePort: number;
const servers: net.Server[] = [];
const children = new Set<ReturnType<typeof spawn>>();

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

before(async () => {
  root = await tempDir('lmx-up-');
  originPort = await listen(http.createServer((req, res) => res.end(`hello ${req.url}`)));
  probePort = await listen(net.createServer((s) => s.destroy()));
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) {
    (s as http.Server).closeAllConnections?.();
    await new Promise((r) => s.close(r));
  }
  await root.cleanup();
});

interface Run {
  child: ReturnType<typeof spawn>;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

function cli(args: string[]): Run {
  const started = Date.now();
  const child = spawn(process.execPath, [cliPath(), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: root.dir,
    env: { ...process.env, LINKMUX_DEBUG: '' },
  });
  children.add(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d));
  child.stderr?.on('data', (d: Buffer) => (output += d));
  const exited = once(child, 'exit').then(([code, signal]) => {
    children.delete(child);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, ms: Date.now() - started };
  });
  return { child, output: () => output, exited };
}

/** Runs a short command to its end (bounded: killed after `ms`). */
async function runToEnd(args: string[], ms = 15_000) {
  const run = cli(args);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), ms);
  const { code, signal } = await run.exited;
  clearTimeout(timer);
  assert.equal(signal, null, `linkmux ${args.join(' ')} was killed after ${ms} ms:\n${run.output()}`);
  return { code, output: run.output() };
}

async function waitForOutput(run: Run, pattern: RegExp, ms = 15_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = pattern.exec(run.output());
    if (m) return m;
    if (run.child.exitCode !== null)
      assert.fail(`linkmux exited (${run.child.exitCode}) before ${pattern}:\n${run.output()}`);
    if (Date.now() > deadline) assert.fail(`no ${pattern} within ${ms} ms:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function config(name: string, yaml: string): Promise<string> {
  const file = join(root.dir, name);
  await writeFile(file, yaml);
  return file;
}

function upYaml(ports: { socks: number; http: number; control: number }, extra = ''): string {
  return [
    'listen:',
    `  socks: 127.0.0.1:${ports.socks}`,
    `  http: 127.0.0.1:${ports.http}`,
    `  control: 127.0.0.1:${ports.control}`,
    'links: [lo]',
    'bind: address',
    'privateDirect: false',
    'drainTimeout: 1.5',
    'health:',
    '  interval: 0.5',
    `  targets: ["tcp://127.0.0.1:${probePort}"]`,
    extra,
  ].join('\n');
}

test('up: listen line, curl through SOCKS5, status table and --json, SIGTERM drains and exits 0', async () => {
  const ports = { socks: await freePort(), http: await freePort(), control: await freePort() };
  const file = await config('up.yaml', upYaml(ports));
  const up = cli(['up', '-c', file]);
  const line = await waitForOutput(up, /up: SOCKS5 on (\S+), HTTP on (\S+), control on (\S+);.*\n/);
  assert.deepEqual(line.slice(1, 4), [
    `127.0.0.1:${ports.socks}`,
    `127.0.0.1:${ports.http}`,
    `127.0.0.1:${ports.control}`,
  ]);
  assert.match(line[0], /links: lo 127\.0\.0\.1/);

  const r = await curlBytes([
    '--socks5-hostname',
    `127.0.0.1:${ports.socks}`,
    `http://localhost:${originPort}/via-up`,
  ]);
  assert.equal(r.code, 0, `${r.stderr}\n${up.output()}`);
  assert.equal(r.body.toString(), 'hello /via-up');

  const table = await runToEnd(['status', '--control', `127.0.0.1:${ports.control}`]);
  assert.equal(table.code, 0, table.output);
  assert.match(table.output, /^LINK\s+STATE\s+RTT/m);
  assert.match(table.output, /^lo\s+online/m);
  assert.match(table.output, new RegExp(`socks 127\\.0\\.0\\.1:${ports.socks}`));

  const json = await runToEnd(['status', '--control', `127.0.0.1:${ports.control}`, '--json']);
  assert.equal(json.code, 0, json.output);
  const status = JSON.parse(json.output) as DaemonStatus;
  assert.deepEqual(
    status.links.map((l) => l.id),
    ['lo'],
  );
  assert.ok(status.links[0]!.bytesIn > 0, 'the curl went through the link');
  assert.ok(status.connections.total >= 1);

  // SIGTERM with a tunnel open: the tunnel lasts until the drain timeout (1.5 s), then exit 0.
  const { client } = await socksConnect(ports.socks, { host: '127.0.0.1', port: originPort });
  const sent = Date.now();
  up.child.kill('SIGTERM');
  const [exit] = await Promise.all([
    Promise.race([
      up.exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no exit 5 s after SIGTERM:\n${up.output()}`)), 5_000),
      ),
    ]),
    client.closed,
  ]);
  const took = Date.now() - sent;
  assert.equal(exit.code, 0, up.output());
  assert.ok(took >= 1_000, `exited ${took} ms after SIGTERM, before the drain timeout with a tunnel open`);
  assert.ok(took < 1_500 + 2_000, `exited ${took} ms after SIGTERM`);
  assert.match(up.output(), /SIGTERM: draining/);
  for (const port of Object.values(ports)) assert.equal(await isListening(port), false);
});

test('up with an idle daemon: SIGTERM exits 0 at once', async () => {
  const ports = { socks: await freePort(), http: await freePort(), control: await freePort() };
  const up = cli(['up', '-c', await config('idle.yaml', upYaml(ports))]);
  await waitForOutput(up, /up: SOCKS5 on/);
  up.child.kill('SIGTERM');
  const { code, ms } = await up.exited;
  assert.equal(code, 0, up.output());
  assert.ok(ms < 10_000);
  assert.match(up.output(), /stopped/);
});

test('a config with a wrong type or an unknown key: non-zero exit, the key path named', async () => {
  const ports = { socks: await freePort(), http: await freePort(), control: await freePort() };
  const cases: Array<[string, string, RegExp]> = [
    [
      'wrong-type.yaml',
      upYaml(ports).replace('interval: 0.5', 'interval: fast'),
      /health\.interval: .*"fast"/,
    ],
    [
      'unknown-key.yaml',
      upYaml(ports).replace('  socks:', '  sock:'),
      /listen: unknown key "sock".*did you mean "socks"/,
    ],
    ['unknown-top.yaml', upYaml(ports, 'polcy: adaptive'), /unknown key "polcy"/],
    [
      'bad-rule.yaml',
      upYaml(ports, 'rules:\n  - match: { cidr: 10.0.0.0/ }\n    action: direct'),
      /rules\[0\]\.match\.cidr/,
    ],
  ];
  for (const [name, yaml, message] of cases) {
    const file = await config(name, yaml);
    const { code, output } = await runToEnd(['up', '-c', file]);
    assert.equal(code, 1, `${name}: LINKMUX_ERR_CONFIG exits 1\n${output}`);
    assert.match(output, message, name);
    assert.match(output, /LINKMUX_ERR_CONFIG/, name);
    assert.ok(output.includes(file), `${name}: the file is named`);
  }
  for (const port of Object.values(ports)) assert.equal(await isListening(port), false);
});

test('a port already in use: non-zero exit, the address named, nothing left listening', async () => {
  const busy = net.createServer();
  const busyPort = await listen(busy);
  const ports = { socks: await freePort(), http: busyPort, control: await freePort() };
  const { code, output } = await runToEnd(['up', '-c', await config('busy.yaml', upYaml(ports))]);
  assert.equal(code, 1, `a port in use is no usage error (exit 1)\n${output}`);
  assert.match(output, /\[LINKMUX_ERR_ADDRESS_IN_USE\]/);
  assert.match(
    output,
    new RegExp(`cannot listen for HTTP proxy on 127\\.0\\.0\\.1:${busyPort}: the address is in use`),
  );
  assert.doesNotMatch(output, /internal error/);
  assert.equal(await isListening(ports.socks), false, 'the SOCKS5 port opened first is released');
  assert.equal(await isListening(busyPort), true, 'the other owner keeps its port');
});
