import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MAX_SLOTS, quantize, type PlanInput } from '../../src/gateway/plan.js';
import { smoothSequence } from '../../src/scheduler/smooth-wrr.js';
import { renderCleanupRuleset, renderDryRun, renderRuleset } from '../../src/gateway/render.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { plan, planA, planB, planC, up } from '../helpers/gateway-plans.js';

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
