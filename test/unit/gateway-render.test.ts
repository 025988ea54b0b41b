import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  DEFAULT_GATEWAY_NUMBERS,
  MAX_SLOTS,
  planGateway,
  quantize,
  type GatewayNumbers,
  type GatewayPlan,
  type PlanInput,
  type UplinkDecl,
} from '../../src/gateway/plan.js';
import { smoothSequence } from '../../src/scheduler/smooth-wrr.js';
import { renderCleanupRuleset, renderDryRun, renderRuleset } from '../../src/gateway/render.js';
import { gatewayOwnership, isOwnedRule, planIpRules, planRoutes } from '../../src/gateway/ip-rules.js';
import { diffRouting } from '../../src/routing/diff.js';
import { parseIpRules } from '../../src/routing/reader.js';
import { routeArgs, ruleArgs, type KernelRule, type RuleSpec } from '../../src/routing/spec.js';
import { isLinkmuxError } from '../../src/util/errors.js';

// Golden files live in the source tree (this file runs from dist/test/unit/).
const GOLDEN = new URL('../../../test/golden/gateway/', import.meta.url);
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

const up = (n: number, extra: Partial<UplinkDecl> = {}): UplinkDecl => ({
  name: `up${n}`,
  dev: `wan${n}`,
  gateway: `198.18.${n}.1`,
  address: `198.18.${n}.2`,
  ...extra,
});

function plan(input: Partial<PlanInput>): GatewayPlan {
  return planGateway({
    lan: ['lan0'],
    uplinks: [up(1), up(2), up(3)],
    rules: [],
    online: new Map(),
    measured: new Map(),
    ...input,
  });
}

/** (a) three uplinks, equal weights, all online, one LAN, no rules. */
const planA = (): GatewayPlan => plan({});

/** (b) measured 8/4/2, up1 offline, four rules; up3 has no address of its own. */
const planB = (): GatewayPlan =>
  plan({
    lan: ['lan0', 'wlan0'],
    uplinks: [up(1), up(2), up(3, { address: undefined })],
    measured: new Map([
      ['up1', 8],
      ['up2', 4],
      ['up3', 2],
    ]),
    online: new Map([['up1', false]]),
    rules: [
      { match: { destination: '192.0.2.0/24' }, action: { kind: 'bypass' } },
      { match: { source: '198.18.100.5/32' }, action: { kind: 'uplink', name: 'up2' } },
      { match: { destination: '198.51.100.0/24', port: 443 }, action: { kind: 'uplink', name: 'up1' } },
      { match: { destination: '2001:db8::/32' }, action: { kind: 'bypass' } },
    ],
  });

/** (c) no uplink online. */
const planC = (): GatewayPlan =>
  plan({
    uplinks: [up(1), up(2)],
    online: new Map([
      ['up1', false],
      ['up2', false],
    ]),
    rules: [{ match: { port: '6881-6889' }, action: { kind: 'uplink', name: 'up2' } }],
  });

const cases = { a: planA, b: planB, c: planC };

for (const [name, make] of Object.entries(cases)) {
  test(`golden ${name}: renderRuleset and renderDryRun`, async () => {
    await matchesGolden(`${name}.nft`, renderRuleset(make()));
    await matchesGolden(`${name}.dryrun`, renderDryRun(make()));
  });
}

test('renderRuleset: the same plan always renders the same text', () => {
  assert.equal(renderRuleset(planB()), renderRuleset(planB()));
  assert.ok(renderRuleset(planB()).endsWith('}\n'));
});

test('renderRuleset: replaces the table in one transaction (add empty, delete, define)', () => {
  const lines = renderRuleset(planA()).split('\n');
  const at = (s: string) => lines.indexOf(s);
  assert.ok(at('table inet linkmux {}') >= 0);
  assert.equal(at('delete table inet linkmux'), at('table inet linkmux {}') + 1);
  assert.equal(at('table inet linkmux {'), at('delete table inet linkmux') + 1);
  assert.equal(
    renderCleanupRuleset().split('\n').slice(1).join('\n'),
    'table inet linkmux {}\ndelete table inet linkmux\n',
  );
});

test('renderRuleset: the only online uplink gets every new connection without numgen', () => {
  const text = renderRuleset(
    plan({
      online: new Map([
        ['up1', false],
        ['up3', false],
      ]),
    }),
  );
  assert.match(text, /\n\t\tmeta nfproto ipv4 meta mark set 0x4c02 ct mark set meta mark\n/);
  assert.doesNotMatch(text, /numgen/);
});

test('renderRuleset: config text cannot escape into the ruleset', () => {
  const bad = (input: Partial<PlanInput>) => () => renderRuleset(plan(input));
  const isConfig = (err: unknown) => isLinkmuxError(err, 'LINKMUX_ERR_CONFIG');
  assert.throws(bad({ lan: ['lan0" accept; #'] }), isConfig);
  assert.throws(bad({ lan: [] }), isConfig);
  assert.throws(bad({ uplinks: [up(1, { dev: 'wan 1' })] }), isConfig);
  assert.throws(
    bad({ rules: [{ match: { destination: '10.0.0.0/8 } accept' }, action: { kind: 'bypass' } }] }),
    isConfig,
  );
  assert.throws(bad({ rules: [{ match: { port: '80; drop' }, action: { kind: 'bypass' } }] }), isConfig);
  assert.throws(
    bad({
      rules: [{ match: { source: '10.0.0.0/8', destination: '2001:db8::/32' }, action: { kind: 'bypass' } }],
    }),
    isConfig,
  );
  // A name only reaches comments; a newline in it must not start a rule line.
  const text = renderRuleset(plan({ uplinks: [up(1, { name: 'x\naccept' })] }));
  assert.ok(text.includes('# uplink x?accept:'));
});

test('renderRuleset: host bits of a network are cleared, a bare address is a /32', () => {
  const text = renderRuleset(
    plan({
      rules: [
        { match: { source: '198.18.100.77/24' }, action: { kind: 'uplink', name: 'up1' } },
        { match: { destination: '203.0.113.9', port: 53 }, action: { kind: 'bypass' } },
      ],
    }),
  );
  assert.match(text, /\t\tip saddr 198\.18\.100\.0\/24 meta mark set 0x4c01 ct mark set meta mark return\n/);
  assert.match(text, /\t\tip daddr 203\.0\.113\.9\/32 meta l4proto \{ tcp, udp \} th dport 53 return\n/);
});

// nft -c parses the file and checks it against the kernel without committing anything.
function nftSkipReason(): string | false {
  if (process.platform !== 'linux') return 'nft -c needs Linux (nftables)';
  if (process.getuid?.() !== 0) return 'nft -c needs root (it asks the kernel to validate the ruleset)';
  const probe = spawnSync('nft', ['--version'], { encoding: 'utf8' });
  if (probe.error) return `nft is not installed or not on PATH (${probe.error.message})`;
  return false;
}
const nftSkip = nftSkipReason();

test('golden rulesets and the cleanup ruleset pass nft -c', { skip: nftSkip }, async (t) => {
  const run = promisify(execFile);
  for (const name of Object.keys(cases)) {
    const file = fileURLToPath(new URL(`${name}.nft`, GOLDEN));
    try {
      await run('nft', ['-c', '-f', file]);
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '');
      if (/Operation not permitted/i.test(stderr)) {
        t.skip(`nft -c was refused (${stderr.trim()}): it needs CAP_NET_ADMIN`);
        return;
      }
      assert.fail(`nft -c -f ${file} failed:\n${stderr}`);
    }
  }
  const check = async (input: string) => {
    const child = execFile('nft', ['-c', '-f', '-']);
    child.stdin?.end(input);
    return new Promise((resolve) => child.on('close', resolve));
  };
  assert.equal(await check(renderCleanupRuleset()), 0, 'nft -c rejected the cleanup ruleset');
  // The control: nft -c does reject a broken ruleset, so the passes above mean something.
  assert.notEqual(await check('table inet linkmux {\n\tchain c {\n\t\tiifname != { } return\n\t}\n}\n'), 0);
});

test('dry-run output is valid shell (bash -n parses it without running it)', (t) => {
  for (const [name, make] of Object.entries(cases)) {
    const r = spawnSync('bash', ['-n'], { input: renderDryRun(make()), encoding: 'utf8' });
    if (r.error) return t.skip(`bash is not available (${r.error.message})`);
    assert.equal(r.status, 0, `${name}.dryrun: ${r.stderr}`);
  }
});

test('quantize: proportional, each online uplink at least 1, total at most MAX_SLOTS, offline 0', () => {
  const table: Array<[number[], number[]]> = [
    [
      [8, 4, 2],
      [4, 2, 1],
    ],
    [
      [1, 1, 1],
      [1, 1, 1],
    ],
    [
      [16, 16],
      [1, 1],
    ],
    [
      [8, 0, 2],
      [4, 0, 1],
    ],
    [
      [0, 0, 0],
      [0, 0, 0],
    ],
    [
      [1000, 1, 1],
      [30, 1, 1],
    ],
  ];
  for (const [weights, expected] of table)
    assert.deepEqual(quantize(weights), expected, `weights ${weights}`);
  for (const weights of [
    [8, 4, 2],
    [93.4, 41.2, 7],
    [1000, 1, 1, 1],
    [5, 0, 3.3],
  ]) {
    const slots = quantize(weights);
    const total = slots.reduce((a, b) => a + b, 0);
    const sum = weights.reduce((a, b) => a + b, 0);
    assert.ok(total <= MAX_SLOTS, `${weights}: total ${total}`);
    weights.forEach((w, i) => {
      const s = slots[i] ?? -1;
      if (w === 0) return assert.equal(s, 0);
      assert.ok(s >= 1, `${weights}: slot ${i} is ${s}`);
      // Off from the exact share by at most a slot per uplink (raising tiny weights to 1 costs the others).
      const uplinks = weights.filter((x) => x > 0).length;
      assert.ok(Math.abs(s / total - w / sum) <= uplinks / total + 1e-9, `${weights}: ${slots}`);
    });
  }
});

test('planGateway: offline uplinks get 0 slots and their rules turn inactive', () => {
  const p = planB();
  assert.deepEqual(
    p.uplinks.map((u) => [u.name, u.online, u.slots, u.mark, u.table, u.priorities]),
    [
      ['up1', false, 0, 0x4c01, 4201, [4201, 4202]],
      ['up2', true, 2, 0x4c02, 4202, [4203, 4204]],
      ['up3', true, 1, 0x4c03, 4203, [4205, 4206]],
    ],
  );
  assert.deepEqual(
    p.rules.map((r) => r.active),
    [true, true, false, true],
  );
});

test('planIpRules / ipRuleArgs: suppress rule, then per uplink its fwmark and from rules', () => {
  assert.deepEqual(
    planIpRules(planB()).map((r) => ruleArgs('add', r)),
    [
      ['-4', 'rule', 'add', 'priority', '4200', 'lookup', 'main', 'suppress_prefixlength', '0'],
      ['-4', 'rule', 'add', 'priority', '4201', 'fwmark', '0x4c01/0xffff', 'lookup', '4201'],
      ['-4', 'rule', 'add', 'priority', '4202', 'from', '198.18.1.2', 'lookup', '4201'],
      ['-4', 'rule', 'add', 'priority', '4203', 'fwmark', '0x4c02/0xffff', 'lookup', '4202'],
      ['-4', 'rule', 'add', 'priority', '4204', 'from', '198.18.2.2', 'lookup', '4202'],
      ['-4', 'rule', 'add', 'priority', '4205', 'fwmark', '0x4c03/0xffff', 'lookup', '4203'],
    ],
  );
  assert.deepEqual(
    planRoutes(planB()).map((r) => routeArgs('replace', r)),
    [
      ['-4', 'route', 'replace', 'default', 'via', '198.18.1.1', 'dev', 'wan1', 'table', '4201'],
      ['-4', 'route', 'replace', 'default', 'via', '198.18.2.1', 'dev', 'wan2', 'table', '4202'],
      ['-4', 'route', 'replace', 'default', 'via', '198.18.3.1', 'dev', 'wan3', 'table', '4203'],
    ],
  );
});

test('planIpRules: an IPv6 uplink gets its rules and its own suppress rule under -6', () => {
  const p = plan({
    uplinks: [up(1), { name: 'v6', dev: 'wan6', gateway: 'fe80::1', address: '2001:db8:6::2' }],
  });
  assert.deepEqual(
    planIpRules(p).map((r) => ruleArgs('del', r)),
    [
      ['-4', 'rule', 'del', 'priority', '4200', 'lookup', 'main', 'suppress_prefixlength', '0'],
      ['-4', 'rule', 'del', 'priority', '4201', 'fwmark', '0x4c01/0xffff', 'lookup', '4201'],
      ['-4', 'rule', 'del', 'priority', '4202', 'from', '198.18.1.2', 'lookup', '4201'],
      ['-6', 'rule', 'del', 'priority', '4200', 'lookup', 'main', 'suppress_prefixlength', '0'],
      ['-6', 'rule', 'del', 'priority', '4203', 'fwmark', '0x4c02/0xffff', 'lookup', '4202'],
      ['-6', 'rule', 'del', 'priority', '4204', 'from', '2001:db8:6::2', 'lookup', '4202'],
    ],
  );
});

// `ip -j -4 rule show` of a router running plan (a), with the kernel's defaults and foreign rules:
// someone else's fwmark 0x4c01 rule at 100, a VPN's suppress rule at 32764, an inverted rule and an
// iif rule inside linkmux's range, and an unreachable rule.
const KERNEL_A = JSON.stringify([
  { priority: 0, src: 'all', table: 'local' },
  { priority: 100, src: 'all', fwmark: '0x4c01', table: 4201 },
  { priority: 4200, src: 'all', table: 'main', suppress_prefixlen: 0 },
  { priority: 4201, src: 'all', fwmark: '0x4c01', fwmask: '0xffff', table: 4201 },
  { priority: 4202, src: '198.18.1.2', table: 4201 },
  { priority: 4203, src: 'all', fwmark: '0x4c02', fwmask: '0xffff', table: '4202' },
  { priority: 4204, src: '198.18.2.2', table: '4202' },
  { priority: 4205, src: 'all', fwmark: '0x4c03', fwmask: '0xffff', table: '4203' },
  { priority: 4206, src: '198.18.3.2', table: '4203' },
  { priority: 4207, not: null, src: 'all', fwmark: '0x1', table: 4201 },
  { priority: 4210, src: 'all', iif: 'lan0', table: '4202' },
  { priority: 5000, src: '10.0.0.0', srclen: 8, action: 'unreachable' },
  { priority: 32764, src: 'all', table: 'main', suppress_prefixlen: 0 },
  { priority: 32766, src: 'all', table: 'main' },
  { priority: 32767, src: 'all', table: 'default' },
]);

test('isOwnedRule: ours, also from a bigger old config; never a foreign rule', () => {
  const n = DEFAULT_GATEWAY_NUMBERS;
  const owned = parseIpRules(KERNEL_A, 4).map((r) => [r.priority, isOwnedRule(r, n)]);
  assert.deepEqual(owned, [
    [0, false],
    [100, false],
    [4200, true],
    [4201, true],
    [4202, true],
    [4203, true],
    [4204, true],
    [4205, true],
    [4206, true],
    [4207, false],
    [4210, false],
    [5000, false],
    [32764, false],
    [32766, false],
    [32767, false],
  ]);
  const rule = (r: Partial<KernelRule>): KernelRule => ({
    priority: 4200,
    family: 4,
    table: 254,
    other: [],
    ...r,
  });
  // Uplink 64 (the last possible) of an old config: priorities 4327/4328, table 4264.
  assert.equal(
    isOwnedRule(rule({ priority: 4327, table: 4264, fwmark: { mark: 0x4c40, mask: 0xffff } }), n),
    true,
  );
  assert.equal(isOwnedRule(rule({ priority: 4328, table: 4264, from: '198.18.64.2/32' }), n), true);
  assert.equal(isOwnedRule(rule({ priority: 4329, table: 4264 }), n), false);
  assert.equal(isOwnedRule(rule({ priority: 4199, table: 4201 }), n), false);
  assert.equal(isOwnedRule(rule({ priority: 4201, table: 4265 }), n), false);
  assert.equal(isOwnedRule(rule({ priority: 4201, table: 4200 }), n), false);
  assert.equal(isOwnedRule(rule({ priority: 4201, table: 254, suppressPrefixLength: 0 }), n), false);
  assert.equal(isOwnedRule(rule({ priority: 4200, table: 254 }), n), false);
  assert.equal(isOwnedRule(rule({ table: 254, suppressPrefixLength: 0, from: '10.0.0.0/8' }), n), false);
  assert.equal(isOwnedRule(rule({ table: undefined }), n), false);
});

/** The rule part of the routing diff, as adds and deletes. */
function diffRules(
  current: KernelRule[],
  desired: RuleSpec[],
  numbers: GatewayNumbers,
): { add: RuleSpec[]; del: KernelRule[] } {
  const changes = diffRouting(
    { rules: desired, routes: [] },
    { rules: current, routes: [] },
    gatewayOwnership(numbers),
  );
  const add: RuleSpec[] = [];
  const del: KernelRule[] = [];
  for (const c of changes) {
    if (c.kind === 'rule' && c.op === 'add') add.push(c.rule as RuleSpec);
    else if (c.kind === 'rule' && c.op === 'del') del.push(c.rule as KernelRule);
  }
  return { add, del };
}

// A machine without linkmux: the kernel's defaults and someone else's fwmark rule.
const KERNEL_DEFAULTS = JSON.stringify([
  { priority: 0, src: 'all', table: 'local' },
  { priority: 100, src: 'all', fwmark: '0x4c01', table: 4201 },
  { priority: 32766, src: 'all', table: 'main' },
  { priority: 32767, src: 'all', table: 'default' },
]);

test('diffRules: fresh machine → every rule added, nothing deleted', () => {
  const desired = planIpRules(planA());
  const { add, del } = diffRules(parseIpRules(KERNEL_DEFAULTS, 4), desired, DEFAULT_GATEWAY_NUMBERS);
  assert.deepEqual(add, desired);
  assert.deepEqual(del, []);
});

test('diffRules: the same plan twice → empty diff', () => {
  const { add, del } = diffRules(parseIpRules(KERNEL_A, 4), planIpRules(planA()), DEFAULT_GATEWAY_NUMBERS);
  assert.deepEqual(add, []);
  assert.deepEqual(del, []);
});

test('diffRules: an uplink removed from the config → its rules deleted, foreign rules kept', () => {
  const twoUplinks = plan({ uplinks: [up(1), up(2)] });
  const { add, del } = diffRules(parseIpRules(KERNEL_A, 4), planIpRules(twoUplinks), DEFAULT_GATEWAY_NUMBERS);
  assert.deepEqual(add, []);
  assert.deepEqual(
    del.map((r) => ruleArgs('del', r)),
    [
      ['-4', 'rule', 'del', 'priority', '4205', 'fwmark', '0x4c03/0xffff', 'lookup', '4203'],
      ['-4', 'rule', 'del', 'priority', '4206', 'from', '198.18.3.2/32', 'lookup', '4203'],
    ],
  );
});

test('diffRules: gone from the config entirely → every linkmux rule deleted, no foreign one', () => {
  const { add, del } = diffRules(parseIpRules(KERNEL_A, 4), [], DEFAULT_GATEWAY_NUMBERS);
  assert.deepEqual(add, []);
  assert.deepEqual(
    del.map((r) => r.priority),
    [4200, 4201, 4202, 4203, 4204, 4205, 4206],
  );
  assert.deepEqual(ruleArgs('del', del[0]!), [
    '-4',
    'rule',
    'del',
    'priority',
    '4200',
    'lookup',
    'main',
    'suppress_prefixlength',
    '0',
  ]);
});

test('diffRules: a changed mask or address → new rule added, old one deleted; a duplicate deleted', () => {
  const current = parseIpRules(
    JSON.stringify([
      { priority: 4200, src: 'all', table: 'main', suppress_prefixlen: 0 },
      { priority: 4200, src: 'all', table: 'main', suppress_prefixlen: 0 },
      { priority: 4201, src: 'all', fwmark: '0x4c01', fwmask: '0xff00', table: 4201 },
      { priority: 4202, src: '198.18.1.99', table: 4201 },
    ]),
    4,
  );
  const { add, del } = diffRules(current, planIpRules(plan({ uplinks: [up(1)] })), DEFAULT_GATEWAY_NUMBERS);
  assert.deepEqual(
    add.map((r) => ruleArgs('add', r)),
    [
      ['-4', 'rule', 'add', 'priority', '4201', 'fwmark', '0x4c01/0xffff', 'lookup', '4201'],
      ['-4', 'rule', 'add', 'priority', '4202', 'from', '198.18.1.2', 'lookup', '4201'],
    ],
  );
  assert.deepEqual(
    del.map((r) => r.priority),
    [4200, 4201, 4202],
  );
});

test('diffRules: IPv6 addresses compare by value, not spelling', () => {
  const p = plan({ uplinks: [{ name: 'v6', dev: 'wan6', gateway: 'fe80::1', address: '2001:DB8:6:0::2' }] });
  const current = parseIpRules(
    JSON.stringify([
      { priority: 4200, src: 'all', table: 'main', suppress_prefixlen: 0 },
      { priority: 4201, src: 'all', fwmark: '0x4c01', fwmask: '0xffff', table: 4201 },
      { priority: 4202, src: '2001:db8:6::2', table: 4201 },
    ]),
    6,
  );
  assert.deepEqual(diffRules(current, planIpRules(p), DEFAULT_GATEWAY_NUMBERS), { add: [], del: [] });
});

test('smoothSequence interleaves uplinks in proportion to their slots', () => {
  assert.deepEqual(smoothSequence([2, 1, 1]), [0, 1, 2, 0]);
  assert.deepEqual(smoothSequence([1, 1, 1]), [0, 1, 2]);
  assert.deepEqual(smoothSequence([0, 3]), [1, 1, 1]);
  const seq = smoothSequence([11, 10, 11]);
  assert.equal(seq.length, 32);
  assert.deepEqual(
    [0, 1, 2].map((i) => seq.filter((x) => x === i).length),
    [11, 10, 11],
  );
  // Any 3 consecutive new connections (a burst) land on 3 different uplinks.
  for (let i = 0; i + 3 <= seq.length; i++)
    assert.equal(new Set(seq.slice(i, i + 3)).size, 3, `slots ${i}..${i + 2}`);
});
