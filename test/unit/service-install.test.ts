import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  installService,
  prepareUnit,
  uninstallService,
  unreachableForService,
  type ServiceDeps,
} from '../../src/service/install.js';
import { FakeRunner } from '../../src/util/runner.js';
import { LinkmuxError, isLinkmuxError, type ErrorCode } from '../../src/util/errors.js';

// The built CLI (this file runs from dist/test/unit/): real, so the "node and main.js exist" checks pass.
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
// Configs go beside the build, not in /tmp: the service would not see /tmp (PrivateTmp), so install refuses it.
const CONFIGS = await mkdtemp(path.join(fileURLToPath(new URL('../../', import.meta.url)), '.service-test-'));
const roots: string[] = [];
after(async () => {
  await rm(CONFIGS, { recursive: true, force: true });
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

/** Stands for /tmp in these tests (see fixture). */
const FAKE_TMP = await mkdtemp(path.join(tmpdir(), 'linkmux-fake-tmp-'));
roots.push(FAKE_TMP);

const UP_CALLS = ['systemctl daemon-reload', 'systemctl enable --now linkmux-up.service'];

async function fixture(over: Partial<ServiceDeps> = {}, booted = true) {
  const root = await mkdtemp(path.join(tmpdir(), 'linkmux-service-root-'));
  roots.push(root);
  if (booted) await mkdir(path.join(root, 'run/systemd/system'), { recursive: true });
  const runner = new FakeRunner();
  const log: string[] = [];
  const deps: ServiceDeps = {
    runner,
    root,
    isRoot: true,
    findCommand: (name) => (name === 'systemctl' ? '/usr/bin/systemctl' : undefined),
    nodePath: process.execPath,
    mainPath: MAIN,
    cwd: CONFIGS,
    kernelRelease: '6.1.0-18-amd64',
    log: (l) => log.push(l),
    // The checkout itself may live under /tmp (CI clones anywhere): only FAKE_TMP counts as temporary here.
    tmpDirs: [FAKE_TMP],
    ...over,
  };
  const unitFile = (kind = 'up') => path.join(root, 'etc/systemd/system', `linkmux-${kind}.service`);
  return { root, runner, log, deps, unitFile };
}

async function config(name: string, text: string): Promise<string> {
  const file = path.join(CONFIGS, name);
  await writeFile(file, text);
  return file;
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLinkmuxError(err, code), `expected ${code}, got ${String(err)}`);
    if (message) assert.match((err as LinkmuxError).message, message);
    return true;
  });
}

test('install: writes the unit 0644, then exactly daemon-reload and enable --now', async () => {
  const f = await fixture();
  const cfg = await config('up.yaml', 'policy: round-robin\n');
  const unit = await installService('up', 'up.yaml', f.deps);
  assert.deepEqual(f.runner.calls, UP_CALLS);
  const text = await readFile(f.unitFile(), 'utf8');
  assert.equal(text, unit.text);
  assert.equal((await stat(f.unitFile())).mode & 0o777, 0o644);
  assert.ok(text.includes(`ExecStart=${process.execPath} ${MAIN} up -c ${cfg}\n`), text);
  assert.equal(unit.configPath, cfg, 'the relative -c is made absolute');
  assert.match(f.log.join('\n'), /linkmux-up\.service: installed/);
});

test('install twice: the same unit, the same two calls, no restart; a changed unit is restarted', async () => {
  const f = await fixture();
  await config('a.yaml', '{}\n');
  await config('b.yaml', '{}\n');
  await installService('up', 'a.yaml', f.deps);
  const first = await readFile(f.unitFile(), 'utf8');
  await installService('up', 'a.yaml', f.deps);
  assert.equal(await readFile(f.unitFile(), 'utf8'), first);
  assert.deepEqual(f.runner.calls, [...UP_CALLS, ...UP_CALLS]);
  assert.match(f.log.join('\n'), /unchanged/);
  await installService('up', 'b.yaml', f.deps);
  assert.deepEqual(f.runner.calls.slice(4), [...UP_CALLS, 'systemctl restart linkmux-up.service']);
  assert.match(await readFile(f.unitFile(), 'utf8'), /-c \S+b\.yaml/);
});

test('uninstall: disable --now, remove, daemon-reload; a second uninstall runs nothing', async () => {
  const f = await fixture();
  await config('gw.yaml', 'gateway:\n  lan: [eth0]\n  uplinks:\n    - { interface: eth1 }\n');
  await installService('gateway', 'gw.yaml', f.deps);
  f.runner.calls.length = 0;
  assert.equal(await uninstallService('gateway', f.deps), true);
  assert.deepEqual(f.runner.calls, [
    'systemctl disable --now linkmux-gateway.service',
    'systemctl daemon-reload',
  ]);
  assert.equal(existsSync(f.unitFile('gateway')), false);
  assert.equal(await uninstallService('gateway', f.deps), false);
  assert.equal(f.runner.calls.length, 2, 'nothing ran the second time');
  assert.match(f.log.join('\n'), /not installed/);
});

test('refusals happen before any change, each with its code', async (t) => {
  await config('ok.yaml', '{}\n');
  const cases: Array<[string, Partial<ServiceDeps>, boolean, string | undefined, ErrorCode, RegExp]> = [
    ['not root', { isRoot: false }, true, 'ok.yaml', 'LINKMUX_ERR_NOT_ROOT', /--print/],
    [
      'no systemctl',
      { findCommand: () => undefined },
      true,
      'ok.yaml',
      'LINKMUX_ERR_UNSUPPORTED_PLATFORM',
      /systemctl was not found.*--print/,
    ],
    ['systemd not running', {}, false, 'ok.yaml', 'LINKMUX_ERR_UNSUPPORTED_PLATFORM', /not running.*--print/],
    [
      'missing config',
      {},
      true,
      'nope.yaml',
      'LINKMUX_ERR_CONFIG',
      new RegExp(`${CONFIGS}/nope\\.yaml does not exist \\(-c nope\\.yaml`),
    ],
    [
      'config in /tmp',
      {},
      true,
      path.join(tmpdir(), 'x.yaml'),
      'LINKMUX_ERR_CONFIG',
      /does not exist|temporary directory/,
    ],
    ['gateway without config', {}, true, undefined, 'LINKMUX_ERR_CONFIG', /gateway: section/],
    [
      'node missing',
      { nodePath: '/nonexistent/node' },
      true,
      'ok.yaml',
      'LINKMUX_ERR_IO',
      /node is not at \/nonexistent\/node/,
    ],
  ];
  for (const [name, over, booted, cfg, code, message] of cases) {
    await t.test(name, async () => {
      const f = await fixture(over, booted);
      const kind = name.startsWith('gateway') ? 'gateway' : 'up';
      await rejectsWith(installService(kind, cfg, f.deps), code, message);
      assert.deepEqual(f.runner.calls, []);
      assert.equal(existsSync(f.unitFile(kind)), false);
    });
  }
  await t.test('uninstall refuses without root too', async () => {
    const f = await fixture({ isRoot: false });
    await rejectsWith(uninstallService('up', f.deps), 'LINKMUX_ERR_NOT_ROOT', /runs systemctl/);
  });
});

test('--print only warns about a path the service could not use; install refuses it', async () => {
  const dir = await mkdtemp(path.join(FAKE_TMP, 'linkmux-service-print-'));
  await writeFile(path.join(dir, 'linkmux.yaml'), '{}\n');
  const f = await fixture();
  const unit = await prepareUnit('up', path.join(dir, 'linkmux.yaml'), f.deps, 'print');
  assert.match(unit.text, /^ExecStart=/m);
  assert.ok(
    f.log.some((l) => /^warning: .*PrivateTmp/.test(l)),
    f.log.join('\n'),
  );
  assert.deepEqual(f.runner.calls, []);
});

test('a config in /tmp is refused: the service has a private /tmp', async () => {
  const dir = await mkdtemp(path.join(FAKE_TMP, 'linkmux-service-cfg-'));
  await writeFile(path.join(dir, 'linkmux.yaml'), '{}\n');
  const f = await fixture();
  await rejectsWith(
    installService('up', path.join(dir, 'linkmux.yaml'), f.deps),
    'LINKMUX_ERR_CONFIG',
    /PrivateTmp/,
  );
});

test('an invalid config is refused at install, naming the file, not in a unit restarting every 5 s', async () => {
  const f = await fixture();
  await config('bad.yaml', 'polcy: round-robin\n');
  await rejectsWith(installService('up', 'bad.yaml', f.deps), 'LINKMUX_ERR_CONFIG', /bad\.yaml/);
  assert.deepEqual(f.runner.calls, []);
});

test('a failing systemctl surfaces as COMMAND_FAILED', async () => {
  const err = new LinkmuxError(
    'LINKMUX_ERR_COMMAND_FAILED',
    'systemctl enable --now linkmux-up.service failed: boom',
  );
  const f = await fixture({ runner: new FakeRunner({ 'systemctl enable --now linkmux-up.service': err }) });
  await config('ok.yaml', '{}\n');
  await rejectsWith(installService('up', 'ok.yaml', f.deps), 'LINKMUX_ERR_COMMAND_FAILED', /boom/);
});

test('no -c: ./linkmux.yaml of the current directory, made absolute, as `linkmux up` would use', async () => {
  const cwd = await mkdtemp(path.join(CONFIGS, 'cwd-'));
  await writeFile(path.join(cwd, 'linkmux.yaml'), '{}\n');
  const unit = await prepareUnit('up', undefined, {
    nodePath: process.execPath,
    mainPath: MAIN,
    cwd,
    kernelRelease: '6.1.0',
    tmpDirs: [FAKE_TMP],
    log: () => {},
  });
  assert.equal(unit.configPath, path.join(cwd, 'linkmux.yaml'));
  assert.equal(unit.configFromCwd, true);
  const none = await prepareUnit('up', undefined, {
    nodePath: process.execPath,
    mainPath: MAIN,
    cwd: path.dirname(MAIN),
    kernelRelease: '6.1.0',
    tmpDirs: [FAKE_TMP],
    log: () => {},
  });
  assert.equal(none.configPath, undefined);
  assert.match(none.text, / up\n/);
});

test('from the config: a port below 1024 adds CAP_NET_BIND_SERVICE; a custom node state dir becomes writable', async () => {
  const deps = {
    nodePath: process.execPath,
    mainPath: MAIN,
    cwd: CONFIGS,
    kernelRelease: '6.1.0',
    tmpDirs: [FAKE_TMP],
    log: () => {},
  };
  await config('low.yaml', 'listen:\n  socks: 127.0.0.1:1080\n  http: 127.0.0.1:80\n');
  const low = await prepareUnit('up', 'low.yaml', deps);
  assert.match(low.text, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
  await config('state.yaml', 'node:\n  stateDir: /srv/linkmux\nlisten:\n  control: /run/lmx/control.sock\n');
  const node = await prepareUnit('node', 'state.yaml', deps);
  assert.match(node.text, /^ReadWritePaths=\/var\/lib\/linkmux -\/srv\/linkmux -\/run\/lmx$/m);
  assert.match(node.text, /^CapabilityBoundingSet=$/m);
  const old = await prepareUnit('node', 'state.yaml', { ...deps, kernelRelease: '4.19.0-26-amd64' });
  assert.match(old.text, /^CapabilityBoundingSet=CAP_NET_RAW$/m);
});

test('unreachableForService: root without CAP_DAC_OVERRIDE must be able to search every parent', () => {
  const dir = (uid: number, gid: number, mode: number) => ({ uid, gid, mode, isDirectory: () => true });
  const tree: Record<string, ReturnType<typeof dir>> = {
    '/home': dir(0, 0, 0o755),
    '/home/ann': dir(1000, 1000, 0o750),
    '/home/ann/.nvm': dir(1000, 1000, 0o755),
    '/home/ann/.nvm/node': dir(1000, 1000, 0o755),
    '/home/bob': dir(1000, 1000, 0o755),
    '/home/bob/cfg.yaml': dir(1000, 1000, 0o600),
    '/home/bob/open.yaml': dir(1000, 1000, 0o644),
    '/etc': dir(0, 0, 0o755),
    '/etc/secret.yaml': dir(0, 0, 0o600),
    '/etc/group.yaml': dir(5, 0, 0o640),
  };
  const fake = (p: string) => {
    const st = tree[p];
    if (!st) throw new Error(`no ${p}`);
    return st;
  };
  assert.equal(
    unreachableForService('/home/ann/.nvm/node', fake),
    '/home/ann is mode 0750 owned by uid 1000',
  );
  assert.equal(
    unreachableForService('/home/bob/cfg.yaml', fake),
    '/home/bob/cfg.yaml is mode 0600 owned by uid 1000',
  );
  assert.equal(unreachableForService('/home/bob/open.yaml', fake), undefined);
  assert.equal(unreachableForService('/etc/secret.yaml', fake), undefined, 'root owns it');
  assert.equal(unreachableForService('/etc/group.yaml', fake), undefined, 'group root may read it');
});
