import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  SERVICE_KINDS,
  bindNeedsNetRaw,
  capabilitiesFor,
  quoteArg,
  renderUnit,
  unitName,
  type ServiceKind,
  type UnitSpec,
} from '../../src/service/unit-file.js';

// Golden files live in the source tree (this file runs from dist/test/unit/).
const GOLDEN = new URL('../../../test/golden/service/', import.meta.url);
const UPDATE = process.env.UPDATE_GOLDEN === '1';

async function matchesGolden(name: string, actual: string): Promise<void> {
  const file = new URL(name, GOLDEN);
  if (UPDATE) {
    await mkdir(GOLDEN, { recursive: true });
    await writeFile(file, actual);
    return;
  }
  const expected = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new Error(`${fileURLToPath(file)} is missing: run with UPDATE_GOLDEN=1`);
    throw err;
  });
  assert.equal(
    actual,
    expected,
    `${name} differs from its golden file; if intended, rerun with UPDATE_GOLDEN=1`,
  );
}

const PKG = '/usr/lib/node_modules/linkmux';

function spec(kind: ServiceKind, over: Partial<UnitSpec> = {}): UnitSpec {
  return {
    kind,
    nodePath: '/usr/bin/node',
    mainPath: `${PKG}/dist/src/cli/main.js`,
    configPath: '/etc/linkmux/linkmux.yaml',
    documentation: `file:${PKG}/README.md`,
    capabilities: capabilitiesFor(kind, { bindNeedsNetRaw: false, lowPorts: false }),
    kernel: '6.1.0-18-amd64',
    ...over,
  };
}

for (const kind of SERVICE_KINDS) {
  test(`golden ${unitName(kind)} (kernel 6.1, config in /etc)`, async () => {
    await matchesGolden(unitName(kind), renderUnit(spec(kind)));
  });
}

test('golden linkmux-gateway.service on a 5.4 kernel: CAP_NET_RAW for the probes', async () => {
  const s = spec('gateway', {
    capabilities: capabilitiesFor('gateway', {
      bindNeedsNetRaw: bindNeedsNetRaw('5.4.0-150-generic'),
      lowPorts: false,
    }),
    kernel: '5.4.0-150-generic',
  });
  await matchesGolden('linkmux-gateway-kernel-5.4.service', renderUnit(s));
});

test('capabilities per kind: only what each one uses', () => {
  const table: Array<[ServiceKind, boolean, boolean, string[]]> = [
    ['up', false, false, []],
    ['node', false, false, []],
    ['gateway', false, false, ['CAP_NET_ADMIN']],
    ['up', true, false, ['CAP_NET_RAW']],
    ['node', true, false, ['CAP_NET_RAW']],
    ['gateway', true, false, ['CAP_NET_ADMIN', 'CAP_NET_RAW']],
    ['up', false, true, ['CAP_NET_BIND_SERVICE']],
    ['gateway', true, true, ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_NET_BIND_SERVICE']],
  ];
  for (const [kind, bindNeedsNetRaw, lowPorts, want] of table) {
    assert.deepEqual(
      capabilitiesFor(kind, { bindNeedsNetRaw, lowPorts }),
      want,
      `${kind} ${bindNeedsNetRaw} ${lowPorts}`,
    );
  }
});

test('SO_BINDTODEVICE needs CAP_NET_RAW before Linux 5.7, and when the release is unreadable', () => {
  const table: Array<[string, boolean]> = [
    ['4.19.0-26-amd64', true],
    ['5.4.0-150-generic', true],
    ['5.6.19', true],
    ['5.7.0', false],
    ['5.10.0-28-amd64', false],
    ['6.1.0-18-amd64', false],
    ['10.0', false],
    ['', true],
    ['weird', true],
  ];
  for (const [release, want] of table) assert.equal(bindNeedsNetRaw(release), want, release);
});

test('every kind: the hardening the issue asks for, absolute ExecStart, no PATH lookup', () => {
  for (const kind of SERVICE_KINDS) {
    const text = renderUnit(spec(kind));
    for (const line of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'ReadWritePaths=/var/lib/linkmux',
      'StateDirectory=linkmux',
      'Restart=on-failure',
      'After=network-online.target',
      'Wants=network-online.target',
      `ExecStart=/usr/bin/node ${PKG}/dist/src/cli/main.js ${kind} -c /etc/linkmux/linkmux.yaml`,
    ]) {
      assert.ok(text.split('\n').includes(line), `${kind}: missing ${line}`);
    }
    assert.doesNotMatch(text, /^User=/m, 'root: no User= line');
    assert.doesNotMatch(text, /MemoryDenyWriteExecute=yes/, 'V8 needs W+X pages');
    assert.equal(
      /^ExecStopPost=/m.test(text),
      kind === 'gateway',
      `${kind}: ExecStopPost only for the gateway`,
    );
  }
});

test('gateway: ExecStopPost runs gateway --cleanup with the same config', () => {
  const text = renderUnit(spec('gateway'));
  assert.match(
    text,
    /^ExecStopPost=\/usr\/bin\/node \S+main\.js gateway --cleanup -c \/etc\/linkmux\/linkmux\.yaml$/m,
  );
});

test('no config: no -c, the daemon uses its defaults', () => {
  const text = renderUnit(spec('up', { configPath: undefined }));
  assert.match(text, /^ExecStart=\/usr\/bin\/node \S+main\.js up$/m);
});

test('ProtectHome=read-only when node, the CLI or the config lives in a home directory (nvm, ~/linkmux.yaml)', () => {
  const nvm = '/home/ann/.nvm/versions/node/v20.18.0/bin/node';
  assert.match(renderUnit(spec('up', { nodePath: nvm })), /^ProtectHome=read-only$/m);
  assert.match(
    renderUnit(spec('up', { mainPath: '/root/linkmux/dist/src/cli/main.js' })),
    /^ProtectHome=read-only$/m,
  );
  assert.match(renderUnit(spec('up', { configPath: '/home/ann/linkmux.yaml' })), /^ProtectHome=read-only$/m);
  assert.match(renderUnit(spec('up', { configPath: '/homework/linkmux.yaml' })), /^ProtectHome=yes$/m);
});

test('extra writable directories are optional ("-") and follow the state dir', () => {
  const text = renderUnit(spec('node', { extraWritable: ['/srv/linkmux state', '/run'] }));
  assert.match(text, /^ReadWritePaths=\/var\/lib\/linkmux -"\/srv\/linkmux state" -\/run$/m);
});

test('quoteArg: systemd sees every path unchanged (%, $, spaces, quotes, backslashes)', () => {
  const table: Array<[string, string]> = [
    ['/usr/bin/node', '/usr/bin/node'],
    ['/etc/linkmux/a_b-c.d+e=f,g@h:i.yaml', '/etc/linkmux/a_b-c.d+e=f,g@h:i.yaml'],
    ['/opt/my linkmux/main.js', '"/opt/my linkmux/main.js"'],
    ['/etc/100%.yaml', '/etc/100%%.yaml'],
    ['/etc/$HOME.yaml', '/etc/$$HOME.yaml'],
    ['/etc/a"b\\c.yaml', '"/etc/a\\"b\\\\c.yaml"'],
    ["/etc/it's.yaml", '"/etc/it\'s.yaml"'],
    ['/etc/tab\there', '"/etc/tab\there"'],
  ];
  for (const [input, want] of table) assert.equal(quoteArg(input), want, input);
  assert.match(
    renderUnit(spec('up', { configPath: '/etc/my linkmux/50%.yaml' })),
    /^ExecStart=\/usr\/bin\/node \S+ up -c "\/etc\/my linkmux\/50%%\.yaml"$/m,
  );
});
