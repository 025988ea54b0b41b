/**
 * The rendered units, checked by systemd itself (`systemd-analyze verify`) where
 * it exists, else by a parser of the unit syntax. Never skipped: the test says
 * which check ran. ExecStart points at this node and the built main.js, because
 * verify refuses an ExecStart binary that does not exist.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SERVICE_KINDS,
  bindNeedsNetRaw,
  capabilitiesFor,
  renderUnit,
  unitName,
  type UnitSpec,
} from '../../src/service/unit-file.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = await mkdtemp(path.join(tmpdir(), 'linkmux-units-'));
after(() => rm(dir, { recursive: true, force: true }));

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const haveAnalyze = !analyze.error && analyze.status === 0;

async function writeUnits(): Promise<string[]> {
  const files: string[] = [];
  for (const kind of SERVICE_KINDS) {
    for (const kernel of ['6.1.0-18-amd64', '5.4.0-150-generic']) {
      const spec: UnitSpec = {
        kind,
        nodePath: process.execPath,
        mainPath: MAIN,
        configPath: '/etc/linkmux/my linkmux 100%.yaml',
        documentation: 'file:/usr/lib/node_modules/linkmux/README.md',
        extraWritable: ['/srv/linkmux'],
        capabilities: capabilitiesFor(kind, {
          bindNeedsNetRaw: bindNeedsNetRaw(kernel),
          lowPorts: kind === 'up',
        }),
        kernel,
      };
      // verify wants the unit's own name: one directory per variant.
      const sub = await mkdtemp(path.join(dir, `kernel-${kernel}-`));
      const file = path.join(sub, unitName(kind));
      await writeFile(file, renderUnit(spec));
      files.push(file);
    }
  }
  return files;
}

function verify(file: string): { status: number | null; stderr: string } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], {
    encoding: 'utf8',
    cwd: path.dirname(file),
  });
  return { status: r.status, stderr: r.stderr.trim() };
}

test('every rendered unit passes `systemd-analyze verify`, or the unit parser where systemd is absent', async (t) => {
  const files = await writeUnits();
  if (haveAnalyze) {
    const version = analyze.stdout.split('\n')[0];
    t.diagnostic(`check: systemd-analyze verify (${version})`);
    console.log(`service units: checked with systemd-analyze verify (${version})`);
    for (const file of files) {
      const r = verify(file);
      t.diagnostic(
        `${path.basename(file)} (${path.basename(path.dirname(file))}): exit ${r.status}${r.stderr ? `, ${r.stderr}` : ', no warnings'}`,
      );
      assert.equal(r.status, 0, `${file}:\n${r.stderr}`);
      assert.equal(r.stderr, '', `${file}: systemd-analyze warned:\n${r.stderr}`);
    }
    // The control: verify does flag a bad key and a missing binary, so the passes mean something.
    const bad = path.join(await mkdtemp(path.join(dir, 'bad-')), 'linkmux-up.service');
    await writeFile(
      bad,
      renderUnit({
        kind: 'up',
        nodePath: '/nonexistent/node',
        mainPath: MAIN,
        documentation: 'file:/x',
        capabilities: [],
        kernel: '6.1',
      }).replace('Restart=on-failure', 'Restart=on-failur'),
    );
    const r = verify(bad);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /restart specifier/);
    assert.match(r.stderr, /\/nonexistent\/node/);
    return;
  }
  t.diagnostic(`check: unit parser (systemd-analyze not found: ${analyze.error?.message ?? analyze.stderr})`);
  console.log('service units: systemd-analyze not found; checked with the unit parser instead');
  for (const file of files) checkParsed(file, (await import('node:fs')).readFileSync(file, 'utf8'));
});

test('the unit parser itself: sections, known keys, absolute existing ExecStart', () => {
  // Runs everywhere so the fallback is known to work before a machine without systemd needs it.
  const good = renderUnit({
    kind: 'gateway',
    nodePath: process.execPath,
    mainPath: MAIN,
    configPath: '/etc/linkmux/linkmux.yaml',
    documentation: 'file:/x',
    capabilities: ['CAP_NET_ADMIN'],
    kernel: '6.1',
  });
  checkParsed('good', good);
  assert.throws(() => checkParsed('bad', good.replace('[Install]', '[Instal]')), /section \[Instal\]/);
  assert.throws(
    () => checkParsed('bad', good.replace('PrivateTmp=yes', 'PrivateTemp=yes')),
    /unknown key PrivateTemp/,
  );
  assert.throws(
    () => checkParsed('bad', good.replace(`ExecStart=${process.execPath}`, 'ExecStart=node')),
    /absolute/,
  );
});

const KEYS: Record<string, readonly string[]> = {
  Unit: ['Description', 'Documentation', 'After', 'Wants'],
  Service: [
    'Type',
    'ExecStart',
    'ExecStopPost',
    'Restart',
    'RestartSec',
    'CapabilityBoundingSet',
    'AmbientCapabilities',
    'NoNewPrivileges',
    'ProtectSystem',
    'ProtectHome',
    'PrivateTmp',
    'PrivateDevices',
    'ProtectKernelTunables',
    'ProtectKernelModules',
    'ProtectKernelLogs',
    'ProtectControlGroups',
    'ProtectClock',
    'ProtectHostname',
    'RestrictNamespaces',
    'RestrictRealtime',
    'RestrictSUIDSGID',
    'LockPersonality',
    'PrivateMounts',
    'SystemCallArchitectures',
    'SystemCallFilter',
    'SystemCallErrorNumber',
    'RestrictAddressFamilies',
    'StateDirectory',
    'StateDirectoryMode',
    'RuntimeDirectory',
    'ReadWritePaths',
  ],
  Install: ['WantedBy'],
};

/** A small systemd unit parser: [Section] headers, Key=Value lines, # comments; throws on anything else. */
function checkParsed(name: string, text: string): void {
  let section: string | undefined;
  const seen = new Map<string, Map<string, string>>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      if (!(section in KEYS)) throw new Error(`${name}:${i + 1}: unknown section [${section}]`);
      seen.set(section, new Map());
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || section === undefined)
      throw new Error(`${name}:${i + 1}: not Key=Value in a section: ${line}`);
    if (!KEYS[section]!.includes(kv[1]!))
      throw new Error(`${name}:${i + 1}: unknown key ${kv[1]} in [${section}]`);
    seen.get(section)!.set(kv[1]!, kv[2]!);
  }
  for (const s of Object.keys(KEYS)) if (!seen.has(s)) throw new Error(`${name}: no [${s}] section`);
  const exec = seen.get('Service')!.get('ExecStart') ?? '';
  const [bin, script] = exec.split(' ');
  for (const p of [bin, script]) {
    if (!p || !path.isAbsolute(p))
      throw new Error(`${name}: ExecStart must start with absolute paths, not "${exec}"`);
    if (!existsSync(p)) throw new Error(`${name}: ExecStart names ${p}, which does not exist`);
  }
}

test('CLI: `service install up --print` needs no root and prints a unit with this node and main.js', () => {
  const r = spawnSync(process.execPath, [MAIN, 'service', 'install', 'up', '--print'], {
    encoding: 'utf8',
    cwd: path.dirname(MAIN),
  });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.includes(`ExecStart=${process.execPath} ${MAIN} up\n`), r.stdout);
  const missing = spawnSync(
    process.execPath,
    [MAIN, 'service', 'install', 'node', '-c', 'absent.yaml', '--print'],
    {
      encoding: 'utf8',
      cwd: dir,
    },
  );
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, new RegExp(`${dir}/absent\\.yaml does not exist.*\\[LINKMUX_ERR_CONFIG\\]`));
  const usage = spawnSync(process.execPath, [MAIN, 'service', 'install', 'proxy'], { encoding: 'utf8' });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /up, node, gateway.*\[LINKMUX_ERR_USAGE\]/);
});
