import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { registerRoute } from '../../src/cli/route-command.js';
import type { RouteDeps } from '../../src/cli/route-command.js';
import { FakeRunner, type Runner } from '../../src/util/runner.js';
import { SimKernel } from '../../src/routing/sim-kernel.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import type { ErrorCode } from '../../src/util/errors.js';

const IP_ADDR = JSON.stringify([
  {
    ifname: 'u1',
    flags: ['UP', 'LOWER_UP'],
    operstate: 'UP',
    addr_info: [{ family: 'inet', local: '198.18.1.2', prefixlen: 24, scope: 'global' }],
  },
  {
    ifname: 'u2',
    flags: ['UP', 'LOWER_UP'],
    operstate: 'UP',
    addr_info: [{ family: 'inet', local: '198.18.2.2', prefixlen: 24, scope: 'global' }],
  },
  {
    ifname: 'lan1',
    flags: ['UP', 'LOWER_UP'],
    operstate: 'UP',
    addr_info: [{ family: 'inet', local: '198.18.5.2', prefixlen: 24, scope: 'global' }],
  },
]);
const ROUTES =
  '[{"dst":"default","gateway":"198.18.1.1","dev":"u1","metric":100,"flags":[]},{"dst":"default","gateway":"198.18.2.1","dev":"u2","metric":200,"flags":[]}]';
const EMPTY_STATE = {
  'ip -j -N -4 rule show':
    '[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"}]',
  'ip -j -N -6 rule show': '[]',
  'ip -j -N -4 route show table all': '[]',
  'ip -j -N -6 route show table all': '[]',
};

function fake(): FakeRunner {
  return new FakeRunner({
    'ip -j addr show': IP_ADDR,
    'ip -j route show default': ROUTES,
    'ip -j -6 route show default': '[]',
    ...EMPTY_STATE,
  });
}

async function run(
  args: string[],
  deps: RouteDeps = {},
): Promise<{ out: string; err: string; runner: FakeRunner }> {
  let out = '';
  let err = '';
  const runner = (deps.runner as FakeRunner | undefined) ?? fake();
  const program = new Command('linkmux').exitOverride();
  registerRoute(program, {
    runner,
    platform: 'linux',
    isRoot: () => true,
    write: (s) => (out += s),
    writeErr: (s) => (err += s),
    ...deps,
  });
  await program.parseAsync(['node', 'linkmux', 'route', 'setup', ...args]);
  return { out, err, runner };
}

test('route setup prints the plan and changes nothing', async () => {
  const { out, runner } = await run([]);
  assert.equal(
    out,
    `# u1: 198.18.1.2 via 198.18.1.1 -> table 100
ip -4 route replace 198.18.1.0/24 dev u1 src 198.18.1.2 scope link table 100
ip -4 route replace default via 198.18.1.1 dev u1 table 100
ip -4 rule add priority 10000 from 198.18.1.2/32 lookup 100
# u2: 198.18.2.2 via 198.18.2.1 -> table 101
ip -4 route replace 198.18.2.0/24 dev u2 src 198.18.2.2 scope link table 101
ip -4 route replace default via 198.18.2.1 dev u2 table 101
ip -4 rule add priority 10001 from 198.18.2.2/32 lookup 101
# to install: linkmux route setup --apply (as root); to undo: linkmux route setup --remove
`,
  );
  assert.ok(
    runner.calls.every((c) => c.includes(' show')),
    runner.calls.join('\n'),
  );
});

test('route setup --link u2 --table-base 300 --priority-base 500', async () => {
  const { out } = await run(['--link', 'u2', '--table-base', '300', '--priority-base', '500']);
  assert.match(out, /^ip -4 rule add priority 500 from 198\.18\.2\.2\/32 lookup 300$/m);
  assert.doesNotMatch(out, /u1/);
});

test('route setup --apply runs the commands, then reports them', async () => {
  const { out, runner } = await run(['--apply']);
  const changes = runner.calls.filter((c) => !c.includes(' show'));
  assert.equal(changes.length, 6);
  assert.equal(out, changes.map((c) => `${c}\n`).join(''));
});

test('route setup --remove with nothing installed', async () => {
  const { out, err } = await run(['--remove', '--link', 'u1']);
  assert.equal(out, '# nothing to remove\n');
  assert.match(err, /--link is ignored with --remove/);
});

const failures: Array<[string, string[], RouteDeps, ErrorCode, RegExp]> = [
  [
    'apply needs root',
    ['--apply'],
    { isRoot: () => false },
    'LINKMUX_ERR_NOT_ROOT',
    /--apply.*run it as root/,
  ],
  ['remove needs root', ['--remove'], { isRoot: () => false }, 'LINKMUX_ERR_NOT_ROOT', /--remove/],
  ['apply and remove', ['--apply', '--remove'], {}, 'LINKMUX_ERR_USAGE', /exclude each other/],
  [
    'table base not a number',
    ['--table-base', 'ten'],
    {},
    'LINKMUX_ERR_USAGE',
    /--table-base takes a whole number.*"ten"/,
  ],
  ['table base negative', ['--table-base', '-5'], {}, 'LINKMUX_ERR_USAGE', /--table-base/],
  ['table base hits main', ['--table-base', '250'], {}, 'LINKMUX_ERR_USAGE', /253-255/],
  [
    'priority too high',
    ['--priority-base', '40000'],
    {},
    'LINKMUX_ERR_USAGE',
    /--priority-base takes a whole number/,
  ],
  ['not Linux', [], { platform: 'darwin' }, 'LINKMUX_ERR_UNSUPPORTED_PLATFORM', /nothing to set up/],
  ['unknown link', ['--link', 'eth9'], {}, 'LINKMUX_ERR_LINK_UNKNOWN', /eth9.*u1, u2, lan1/],
  ['link without gateway', ['--link', 'lan1'], {}, 'LINKMUX_ERR_NO_LINKS', /gateway/],
];

for (const [name, args, deps, code, message] of failures) {
  test(`route setup fails: ${name}`, async () => {
    await assert.rejects(run(args, deps), (err) => isLinkmuxError(err, code) && message.test(err.message));
  });
}

/** Discovery's queries from the canned answers, every rule and route from the simulated kernel. */
function discoveryOver(kernel: SimKernel): Runner {
  const discovery = fake();
  return {
    run: (cmd, args) =>
      [...args].join(' ').match(/^-j (addr show|(-6 )?route show default)$/)
        ? discovery.run(cmd, args)
        : kernel.run(cmd, args),
  };
}

for (const [what, tableNames] of [
  ['numeric tables', {}],
  ['tables named in rt_tables', { 100: 'isp1', 101: 'isp2' }],
] as const) {
  test(`route setup --apply then --remove leaves the rules exactly as before (${what})`, async () => {
    // Someone else's rule and table, which must survive; the kernel's own rules.
    const kernel = new SimKernel({
      tableNames,
      rules: [{ family: 4, priority: 5210, from: '100.64.0.0/10', table: 52 }],
      routes: [{ family: 4, table: 52, dst: 'default', dev: 'tailscale0' }],
    });
    const before = kernel.lines();
    const runner = discoveryOver(kernel);
    const applied = await run(['--apply'], { runner });
    assert.equal(applied.out.split('\n').filter((l) => l.startsWith('ip ')).length, 6);
    const installed = kernel.lines();
    assert.equal(installed.filter((l) => / rule 1000[01]: /.test(l)).length, 2, installed.join('\n'));
    // A second apply finds every rule, also behind a table's name: nothing added twice.
    assert.equal((await run(['--apply'], { runner })).out, '# already in place: nothing changed\n');
    assert.deepEqual(kernel.lines(), installed);
    const removed = await run(['--remove'], { runner });
    assert.match(removed.out, /rule del priority 10000 .*\n.*rule del priority 10001 /);
    assert.deepEqual(kernel.lines(), before);
    assert.equal((await run(['--remove'], { runner })).out, '# nothing to remove\n');
  });
}
