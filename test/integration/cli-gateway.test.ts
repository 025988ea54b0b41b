/**
 * `linkmux gateway` refusals a user meets before anything runs, through the
 * real CLI: not root (spawned as uid/gid 65534 when this test runs as root —
 * otherwise this process is already not root), no uplinks declared, no LAN
 * declared, a rule naming an unknown uplink, several problems at once. Each
 * exits non-zero with a message naming the problem and its stable code; none
 * needs a network namespace, and none changes anything (--dry-run, or refused
 * before the first change; the netns tier checks the kernel side).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/loopback.js';
import { cliPath } from '../helpers/netns.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function run(
  yaml: string,
  args: string[] = [],
  asNobody = false,
): Promise<{ code: number | null; stderr: string }> {
  const tmp = await tempDir('lmx-gw-cli-');
  cleanups.push(tmp.cleanup);
  const file = join(tmp.dir, 'linkmux.yaml');
  await writeFile(file, yaml);
  await chmod(tmp.dir, 0o755);
  await chmod(file, 0o644);
  const child = spawn(process.execPath, [cliPath(), 'gateway', '-c', file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asNobody ? { uid: 65534, gid: 65534 } : {}),
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stderr };
}

const VALID = `
listen: { socks: false, http: false, control: false }
gateway:
  lan: [lan0]
  uplinks: [{ interface: up0, gateway: 198.18.1.1 }]
`;

test('not root: refused with LINKMUX_ERR_NOT_ROOT and a pointer to --dry-run', async () => {
  const isRoot = process.getuid?.() === 0;
  const r = await run(VALID, [], isRoot);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /run it as root/);
  assert.match(r.stderr, /--dry-run/);
  assert.match(r.stderr, /\[LINKMUX_ERR_NOT_ROOT\]/);
});

test('config mistakes are named with their path, before any command runs', async () => {
  const cases: Array<[string, RegExp]> = [
    ['gateway: { lan: [lan0] }', /gateway\.uplinks is empty/],
    ['gateway: { uplinks: [{ interface: up0, gateway: 198.18.1.1 }] }', /gateway\.lan is empty/],
    [
      'gateway: { lan: [lan0], uplinks: [{ interface: up0 }], rules: [{ match: { port: 443 }, action: "uplink:nope" }] }',
      /gateway\.rules\[0\]\.action: no uplink is named nope/,
    ],
    ['gateway: { lan: [eth0], uplinks: [{ interface: eth0 }] }', /eth0 is also in lan/],
    ['gateway: { lan: [lan0], uplinks: [{ interface: up0, gateway: not-an-ip }] }', /expected an IP address/],
  ];
  for (const [yaml, why] of cases) {
    // --dry-run: the refusals need neither root, nft, conntrack nor forwarding.
    const r = await run(`listen: { socks: false, http: false, control: false }\n${yaml}\n`, ['--dry-run']);
    assert.equal(r.code, 1, `${yaml}: ${r.stderr}`);
    assert.match(r.stderr, why, yaml);
    assert.match(r.stderr, /\[LINKMUX_ERR_CONFIG\]/);
  }
});

test('--dry-run reports every problem at once, each with its own hint, and needs no conntrack', async () => {
  const r = await run(
    `listen: { socks: false, http: false, control: false }
gateway:
  lan: [lmxnolan0]
  uplinks: [{ interface: lmxnoup0 }, { interface: lmxnoup1, gateway: 198.18.1.1 }]
`,
    ['--dry-run'],
    process.getuid?.() === 0, // as nobody when root: a dry run needs no root either
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /lan interface lmxnolan0 does not exist/);
  assert.match(
    r.stderr,
    /uplink lmxnoup0: interface lmxnoup0 does not exist .*fix gateway\.uplinks\[0\]\.interface/,
  );
  assert.match(
    r.stderr,
    /uplink lmxnoup1: interface lmxnoup1 does not exist .*fix gateway\.uplinks\[1\]\.interface/,
  );
  assert.doesNotMatch(r.stderr, /give it as gateway/);
  assert.doesNotMatch(r.stderr, /conntrack|ip_forward/, 'a dry run demands neither');
  assert.match(r.stderr, /\[LINKMUX_ERR_CONFIG\]/);
});
