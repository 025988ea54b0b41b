import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  diffPolicy,
  networkOf,
  parseIpRules,
  parseTableRoutes,
  planPolicyRoutes,
  removalCommands,
  validatePolicyOptions,
} from '../../src/net/policy-routing.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import type { Runner, RunResult } from '../../src/util/runner.js';
import { LinkmuxError, isLinkmuxError } from '../../src/util/errors.js';

const u1: NetInterface = {
  name: 'u1',
  up: true,
  loopback: false,
  addresses: [{ address: '198.18.1.2', family: 4, prefixLength: 24 }],
  gateway: '198.18.1.1',
  metric: 100,
};
const u2: NetInterface = {
  name: 'u2',
  up: true,
  loopback: false,
  addresses: [
    { address: '198.18.2.2', family: 4, prefixLength: 24 },
    { address: '198.18.2.77', family: 4, prefixLength: 24 },
    { address: '2001:db8:2::2', family: 6, prefixLength: 64 },
  ],
  gateway: '198.18.2.1',
  metric: 200,
};
const v6only: NetInterface = {
  name: 'wg6',
  up: true,
  loopback: false,
  addresses: [{ address: '2001:db8:6:0:a::9', family: 6, prefixLength: 56 }],
  gateway: 'fe80::1',
  metric: 1024,
};
const noGateway: NetInterface = {
  name: 'lan1',
  up: true,
  loopback: false,
  addresses: [{ address: '198.18.3.2', family: 4, prefixLength: 24 }],
};

test('plan: rendered text for two IPv4 uplinks, an IPv6 one and one without gateway', () => {
  const plan = planPolicyRoutes([u1, noGateway, u2, v6only]);
  assert.equal(
    plan.render(),
    `# u1: 198.18.1.2 via 198.18.1.1 -> table 100
ip route replace 198.18.1.0/24 dev u1 src 198.18.1.2 scope link table 100
ip route replace default via 198.18.1.1 dev u1 table 100
ip rule add from 198.18.1.2/32 table 100 priority 10000
# u2: 198.18.2.2, 198.18.2.77 via 198.18.2.1 -> table 101
ip route replace 198.18.2.0/24 dev u2 src 198.18.2.2 scope link table 101
ip route replace default via 198.18.2.1 dev u2 table 101
ip rule add from 198.18.2.2/32 table 101 priority 10001
ip rule add from 198.18.2.77/32 table 101 priority 10001
# wg6: 2001:db8:6:0:a::9 via fe80::1 -> table 102
ip -6 route replace 2001:db8:6::/56 dev wg6 src 2001:db8:6:0:a::9 table 102
ip -6 route replace default via fe80::1 dev wg6 table 102
ip -6 rule add from 2001:db8:6:0:a::9/128 table 102 priority 10002
# lan1: skipped (no default gateway)
`,
  );
  assert.deepEqual(plan.skipped, [{ name: 'lan1', reason: 'no default gateway' }]);
  assert.equal(plan.commands.length, 10);
});

test('plan: custom bases; a /32 address gets no subnet route', () => {
  const ppp: NetInterface = {
    name: 'ppp0',
    up: true,
    loopback: false,
    addresses: [{ address: '100.64.9.9', family: 4, prefixLength: 32 }],
    gateway: '100.64.0.1',
    metric: 0,
  };
  assert.equal(
    planPolicyRoutes([ppp], { tableBase: 1000, priorityBase: 200 }).render(),
    `# ppp0: 100.64.9.9 via 100.64.0.1 -> table 1000
ip route replace default via 100.64.0.1 dev ppp0 table 1000
ip rule add from 100.64.9.9/32 table 1000 priority 200
`,
  );
});

test('plan: an IPv4 gateway with only IPv6 addresses is skipped with the reason', () => {
  const odd: NetInterface = { ...v6only, gateway: '198.18.9.1' };
  const plan = planPolicyRoutes([odd]);
  assert.equal(plan.render(), '# wg6: skipped (no IPv4 address for gateway 198.18.9.1)\n');
  assert.equal(plan.rules.length, 0);
});

const badOptions: Array<[string, { tableBase?: number; priorityBase?: number }, RegExp]> = [
  ['table 0', { tableBase: 0 }, /--table-base must be an integer/],
  ['fractional table', { tableBase: 1.5 }, /--table-base must be an integer/],
  ['range hits main/local', { tableBase: 200 }, /253-255.*at most 189, or 256/],
  ['priority past main', { priorityBase: 32760 }, /--priority-base.*32766/],
  ['priority NaN', { priorityBase: Number.NaN }, /--priority-base/],
];

for (const [name, opts, message] of badOptions) {
  test(`validatePolicyOptions rejects ${name}`, () => {
    assert.throws(
      () => validatePolicyOptions(opts),
      (err) => isLinkmuxError(err, 'LINKMUX_ERR_USAGE') && message.test(err.message),
    );
  });
}

test('validatePolicyOptions: defaults and edges', () => {
  assert.deepEqual(validatePolicyOptions(), { tableBase: 100, priorityBase: 10000 });
  assert.deepEqual(validatePolicyOptions({ tableBase: 189, priorityBase: 32702 }), {
    tableBase: 189,
    priorityBase: 32702,
  });
  assert.deepEqual(validatePolicyOptions({ tableBase: 256, priorityBase: 1 }), {
    tableBase: 256,
    priorityBase: 1,
  });
});

test('networkOf', () => {
  const cases: Array<[string, number, string]> = [
    ['198.18.1.2', 24, '198.18.1.0'],
    ['198.19.255.7', 15, '198.18.0.0'],
    ['10.1.2.3', 0, '0.0.0.0'],
    ['10.1.2.3', 32, '10.1.2.3'],
    ['2001:db8:2::2', 64, '2001:db8:2::'],
    ['2001:db8:6:0:a::9', 56, '2001:db8:6::'],
    ['2001:db8:abcd:12ff::1', 52, '2001:db8:abcd:1000::'],
    ['::1', 128, '::1'],
  ];
  for (const [addr, len, want] of cases) assert.equal(networkOf(addr, len), want, `${addr}/${len}`);
});

test('parseIpRules / parseTableRoutes on captured output', () => {
  const rules = parseIpRules(
    '[{"priority":0,"src":"all","table":"local"},{"priority":10000,"src":"198.18.1.2","table":"100"},' +
      '{"priority":10001,"src":"198.18.0.0","srclen":15,"table":"100"},{"priority":10002,"src":"all","fwmark":"0x10","table":"101"},' +
      '{"priority":32766,"src":"all","table":"main"}]',
    4,
  );
  assert.deepEqual(rules, [
    {
      family: 4,
      from: '198.18.1.2',
      prefixLength: 32,
      table: 100,
      priority: 10000,
      selectorsOnlySource: true,
    },
    {
      family: 4,
      from: '198.18.0.0',
      prefixLength: 15,
      table: 100,
      priority: 10001,
      selectorsOnlySource: true,
    },
    { family: 4, from: 'all', prefixLength: 0, table: 101, priority: 10002, selectorsOnlySource: false },
  ]);
  const routes = parseTableRoutes(
    '[{"dst":"default","gateway":"198.18.1.1","dev":"u1","table":"100","flags":[]},' +
      '{"dst":"198.18.1.0/24","dev":"u1","table":"100","scope":"link","prefsrc":"198.18.1.2","flags":[]},' +
      '{"dst":"default","gateway":"198.18.1.1","dev":"u1","metric":100,"flags":[]},' +
      '{"type":"local","dst":"127.0.0.1","dev":"lo","table":"local","protocol":"kernel","scope":"host","prefsrc":"127.0.0.1","flags":[]},' +
      '{"dst":"198.18.7.7","dev":"u1","table":"100","flags":[]}]',
    4,
  );
  assert.deepEqual(routes, [
    { family: 4, dst: 'default', dev: 'u1', table: 100, gateway: '198.18.1.1' },
    { family: 4, dst: '198.18.1.0/24', dev: 'u1', table: 100, src: '198.18.1.2' },
    { family: 4, dst: '198.18.7.7/32', dev: 'u1', table: 100 },
  ]);
});

/**
 * A fake `ip`: holds rules and routes, answers the JSON queries like iproute2 6.1
 * and applies add/replace/del/flush. Its state prints as `ip rule`-like lines.
 */
class FakeIp implements Runner {
  readonly calls: string[] = [];
  rules: Array<{
    family: 4 | 6;
    priority: number;
    src: string;
    table: string;
    extra?: Record<string, string>;
  }> = [];
  routes: Array<{
    family: 4 | 6;
    table: string;
    dst: string;
    dev: string;
    gateway?: string;
    prefsrc?: string;
  }> = [];

  async run(cmd: string, args: readonly string[]): Promise<RunResult> {
    assert.equal(cmd, 'ip');
    this.calls.push(args.join(' '));
    let a = [...args];
    const json = a[0] === '-j' ? (a.shift(), true) : false;
    const family: 4 | 6 = a[0] === '-6' ? 6 : 4;
    if (a[0] === '-6' || a[0] === '-4') a = a.slice(1);
    const opt = (name: string) => {
      const i = a.indexOf(name);
      return i >= 0 ? a[i + 1] : undefined;
    };
    const [object, verb] = a;
    if (object === 'rule' && verb === 'show' && json) {
      const out = this.rules
        .filter((r) => r.family === family)
        .sort((x, y) => x.priority - y.priority)
        .map((r) => {
          const [src, len] = r.src.split('/');
          const full = len === undefined || len === String(family === 4 ? 32 : 128);
          return {
            priority: r.priority,
            src,
            ...(full ? {} : { srclen: Number(len) }),
            ...r.extra,
            table: r.table,
          };
        });
      return ok(JSON.stringify(out));
    }
    if (object === 'route' && verb === 'show' && json) {
      return ok(
        JSON.stringify(
          this.routes.filter((r) => r.family === family).map((r) => ({ ...r, family: undefined })),
        ),
      );
    }
    if (object === 'rule' && verb === 'add') {
      this.rules.push({ family, src: opt('from')!, table: opt('table')!, priority: Number(opt('priority')) });
      return ok('');
    }
    if (object === 'rule' && verb === 'del') {
      const i = this.rules.findIndex(
        (r) =>
          r.family === family &&
          r.src === opt('from') &&
          r.table === opt('table') &&
          r.priority === Number(opt('priority')),
      );
      if (i < 0)
        throw new LinkmuxError(
          'LINKMUX_ERR_COMMAND_FAILED',
          `ip ${args.join(' ')} failed: No such file or directory`,
        );
      this.rules.splice(i, 1);
      return ok('');
    }
    if (object === 'route' && (verb === 'replace' || verb === 'del')) {
      const dst = a[2]!;
      const key = (r: FakeIp['routes'][number]) =>
        r.family === family && r.table === opt('table') && r.dst === dst;
      if (verb === 'del') {
        const i = this.routes.findIndex(
          (r) => key(r) && r.dev === opt('dev') && (opt('via') === undefined || r.gateway === opt('via')),
        );
        if (i < 0)
          throw new LinkmuxError(
            'LINKMUX_ERR_COMMAND_FAILED',
            `ip ${args.join(' ')} failed: No such process`,
          );
        this.routes.splice(i, 1);
        return ok('');
      }
      const route = {
        family,
        table: opt('table')!,
        dst,
        dev: opt('dev')!,
        gateway: opt('via'),
        prefsrc: opt('src'),
      };
      const i = this.routes.findIndex(key);
      if (i >= 0) this.routes[i] = route;
      else this.routes.push(route);
      return ok('');
    }
    if (object === 'route' && verb === 'flush') {
      const before = this.routes.length;
      this.routes = this.routes.filter((r) => !(r.family === family && r.table === opt('table')));
      if (before === this.routes.length) {
        throw new LinkmuxError(
          'LINKMUX_ERR_COMMAND_FAILED',
          `ip ${args.join(' ')} failed: FIB table does not exist`,
        );
      }
      return ok('');
    }
    throw new Error(`FakeIp cannot run: ip ${args.join(' ')}`);
  }

  /** State as text, sorted, for comparison with expected lines. */
  show(): string {
    const rules = this.rules.map((r) => `${r.family} rule ${r.priority} from ${r.src} table ${r.table}`);
    const routes = this.routes.map(
      (r) =>
        `${r.family} route table ${r.table} ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev}`,
    );
    return [...rules.sort(), ...routes.sort()].join('\n');
  }
}

function ok(stdout: string): RunResult {
  return { stdout, stderr: '' };
}

function withMainTable(ip: FakeIp): FakeIp {
  // Things linkmux must never touch: the main table, another tool's table and rule.
  ip.rules.push({ family: 4, priority: 0, src: 'all', table: 'local' });
  ip.rules.push({ family: 4, priority: 5210, src: '100.64.0.0/10', table: '52' });
  ip.rules.push({ family: 4, priority: 10050, src: 'all', table: '150', extra: { fwmark: '0x10' } });
  ip.rules.push({ family: 4, priority: 32766, src: 'all', table: 'main' });
  ip.routes.push({ family: 4, table: '52', dst: 'default', dev: 'tailscale0' });
  ip.routes.push({ family: 4, table: '300', dst: 'default', dev: 'u9', gateway: '198.18.9.1' });
  return ip;
}

const OTHERS = [
  '4 rule 0 from all table local',
  '4 rule 10050 from all table 150',
  '4 rule 32766 from all table main',
  '4 rule 5210 from 100.64.0.0/10 table 52',
];
const OTHER_ROUTES = [
  '4 route table 300 default via 198.18.9.1 dev u9',
  '4 route table 52 default dev tailscale0',
];

test('apply installs the plan; a second apply changes nothing', async () => {
  const ip = withMainTable(new FakeIp());
  const plan = planPolicyRoutes([u1, u2]);
  const first = await plan.apply(ip);
  // All routes first, then all rules: a rule never points at an empty table.
  assert.deepEqual(
    first.map((a) => a.join(' ')),
    [
      'route replace 198.18.1.0/24 dev u1 src 198.18.1.2 scope link table 100',
      'route replace default via 198.18.1.1 dev u1 table 100',
      'route replace 198.18.2.0/24 dev u2 src 198.18.2.2 scope link table 101',
      'route replace default via 198.18.2.1 dev u2 table 101',
      'rule add from 198.18.1.2/32 table 100 priority 10000',
      'rule add from 198.18.2.2/32 table 101 priority 10001',
      'rule add from 198.18.2.77/32 table 101 priority 10001',
    ],
  );
  assert.equal(
    ip.show(),
    [
      '4 rule 0 from all table local',
      '4 rule 10000 from 198.18.1.2/32 table 100',
      '4 rule 10001 from 198.18.2.2/32 table 101',
      '4 rule 10001 from 198.18.2.77/32 table 101',
      '4 rule 10050 from all table 150',
      '4 rule 32766 from all table main',
      '4 rule 5210 from 100.64.0.0/10 table 52',
      '4 route table 100 198.18.1.0/24 dev u1',
      '4 route table 100 default via 198.18.1.1 dev u1',
      '4 route table 101 198.18.2.0/24 dev u2',
      '4 route table 101 default via 198.18.2.1 dev u2',
      ...OTHER_ROUTES,
    ].join('\n'),
  );
  const before = ip.show();
  assert.deepEqual(await plan.apply(ip), []);
  assert.equal(ip.show(), before);
});

test('apply with fewer uplinks drops the stale rules and routes of the earlier run', async () => {
  const ip = withMainTable(new FakeIp());
  await planPolicyRoutes([u1, u2]).apply(ip);
  // u1 went away: u2 now takes table 100.
  const ran = await planPolicyRoutes([u2]).apply(ip);
  assert.deepEqual(
    ran.map((a) => a.join(' ')),
    [
      'route replace 198.18.2.0/24 dev u2 src 198.18.2.2 scope link table 100',
      'route replace default via 198.18.2.1 dev u2 table 100',
      'rule add from 198.18.2.2/32 table 100 priority 10000',
      'rule add from 198.18.2.77/32 table 100 priority 10000',
      'rule del from 198.18.1.2/32 table 100 priority 10000',
      'rule del from 198.18.2.2/32 table 101 priority 10001',
      'rule del from 198.18.2.77/32 table 101 priority 10001',
      'route del 198.18.1.0/24 dev u1 table 100',
      'route del 198.18.2.0/24 dev u2 table 101',
      'route del default via 198.18.2.1 dev u2 table 101',
    ],
  );
  assert.deepEqual(await planPolicyRoutes([u2]).apply(ip), []);
  assert.match(ip.show(), /4 route table 100 default via 198\.18\.2\.1 dev u2/);
  assert.doesNotMatch(ip.show(), /table 101|u1/);
});

test('apply removes a duplicate of a planned rule', () => {
  const plan = planPolicyRoutes([u1]);
  const dup = {
    family: 4 as const,
    from: '198.18.1.2',
    prefixLength: 32,
    table: 100,
    priority: 10000,
    selectorsOnlySource: true,
  };
  const cmds = diffPolicy(
    plan,
    { rules: [dup, dup], routes: plan.routes },
    { tableBase: 100, priorityBase: 10000 },
  );
  assert.deepEqual(cmds, [['rule', 'del', 'from', '198.18.1.2/32', 'table', '100', 'priority', '10000']]);
});

test('remove deletes only what linkmux owns, and is a no-op the second time', async () => {
  const ip = withMainTable(new FakeIp());
  await planPolicyRoutes([u1, u2, v6only]).apply(ip);
  const ran = await planPolicyRoutes([]).remove(ip);
  assert.deepEqual(
    ran.map((a) => a.join(' ')),
    [
      'rule del from 198.18.1.2/32 table 100 priority 10000',
      'rule del from 198.18.2.2/32 table 101 priority 10001',
      'rule del from 198.18.2.77/32 table 101 priority 10001',
      '-6 rule del from 2001:db8:6:0:a::9/128 table 102 priority 10002',
      'route flush table 100',
      'route flush table 101',
      '-6 route flush table 102',
    ],
  );
  assert.equal(ip.show(), [...OTHERS, ...OTHER_ROUTES].join('\n'));
  assert.deepEqual(await planPolicyRoutes([]).remove(ip), []);
});

test('remove with other bases leaves the default-range rules alone', () => {
  const cmds = removalCommands(
    {
      rules: [
        {
          family: 4,
          from: '198.18.1.2',
          prefixLength: 32,
          table: 100,
          priority: 10000,
          selectorsOnlySource: true,
        },
      ],
      routes: [{ family: 4, dst: 'default', dev: 'u1', table: 100, gateway: '198.18.1.1' }],
    },
    { tableBase: 1000, priorityBase: 20000 },
  );
  assert.deepEqual(cmds, []);
});
