/**
 * GatewayKernel against a simulated kernel (a Runner that keeps ip rules,
 * routes and the nft table as state, and can fail the n-th change): applying
 * the same plan twice changes nothing; a changed plan changes only what
 * differs; a failure part-way through an apply leaves nothing of linkmux's
 * behind; cleanup removes linkmux's state and never a foreign rule or route;
 * preflight refuses, before any change, what would clash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayKernel } from '../../src/gateway/kernel.js';
import { DEFAULT_GATEWAY_NUMBERS, planGateway, type UplinkDecl } from '../../src/gateway/plan.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import { LinkmuxError, isLinkmuxError } from '../../src/util/errors.js';
import { ExecRunner, missingToolMessage, type RunResult, type Runner } from '../../src/util/runner.js';
import { SimKernel } from '../../src/routing/sim-kernel.js';

/**
 * A tiny kernel: routing/sim-kernel.ts holds the ip rules and routes (and
 * answers `ip` like iproute2); this adds what `nft -f` and `sysctl` would hold.
 */
class KernelSim implements Runner {
  ip = new SimKernel({
    rules: [{ family: 4, priority: 100, fwmark: { mark: 0x1, mask: 0xff }, table: 100 }], // someone else's
    routes: [
      { family: 4, table: 254, dst: 'default', gateway: '198.18.1.1', dev: 'up0' },
      { family: 4, table: 100, dst: 'default', gateway: '10.9.9.1', dev: 'vpn0' },
    ],
  });
  nftTable: string | undefined;
  changes: string[] = [];
  forward = '1';
  /** Fail the n-th change (1-based); 0 = never. */
  failAt = 0;

  async run(cmd: string, args: readonly string[], opts: { input?: string } = {}): Promise<RunResult> {
    const line = [cmd, ...args].join(' ');
    const ok = (stdout = ''): RunResult => ({ stdout, stderr: '' });
    if (line.endsWith('--version')) return ok('v1');
    if (cmd === 'sysctl') return ok(args[1] === 'net.ipv4.ip_forward' ? this.forward : '2');
    if (cmd === 'ip' && args.includes('show')) return this.ip.run(cmd, args);
    // Everything else changes the kernel.
    this.changes.push(line);
    if (this.failAt > 0 && this.changes.length === this.failAt) {
      throw new LinkmuxError('LINKMUX_ERR_COMMAND_FAILED', `${line} failed: injected`);
    }
    if (cmd === 'nft') {
      const input = opts.input ?? '';
      this.nftTable = input.includes('table inet linkmux {\n') ? input : undefined;
      return ok();
    }
    return this.ip.run(cmd, args);
  }

  snapshot(): string {
    return JSON.stringify({ ip: this.ip.lines(), nft: this.nftTable });
  }
}

const UPLINKS: UplinkDecl[] = [
  { name: 'up0', dev: 'up0', gateway: '198.18.1.1', address: '198.18.1.2' },
  { name: 'up1', dev: 'up1', gateway: '198.18.2.1', address: '198.18.2.2' },
  { name: 'up2', dev: 'up2', gateway: '198.18.3.1', address: '198.18.3.2' },
];

const IFACES: NetInterface[] = [
  {
    name: 'lan0',
    up: true,
    loopback: false,
    addresses: [{ address: '198.18.100.1', family: 4, prefixLength: 24 }],
  },
  ...UPLINKS.map((u, i) => ({
    name: u.dev,
    up: true,
    loopback: false,
    addresses: [{ address: `198.18.${i + 1}.2`, family: 4 as const, prefixLength: 24 }],
  })),
];

function plan(online: Record<string, boolean> = {}) {
  return planGateway({
    lan: ['lan0'],
    uplinks: UPLINKS,
    rules: [],
    online: new Map(Object.entries(online)),
    measured: new Map(),
  });
}

test('applying the same plan twice changes nothing the second time', async () => {
  const sim = new KernelSim();
  const k = new GatewayKernel(sim, DEFAULT_GATEWAY_NUMBERS);
  await k.apply(plan());
  const first = sim.changes.length;
  assert.ok(first > 0);
  assert.ok(sim.nftTable?.includes('numgen'));
  const state = sim.snapshot();
  // Route replaces are idempotent by nature; they are the only commands run again.
  sim.changes = [];
  await k.apply(plan());
  assert.deepEqual(
    sim.changes.filter((c) => !c.includes('route replace')),
    [],
  );
  assert.equal(sim.snapshot(), state);
  // A fresh process (no memory of what it applied) converges to the same state too.
  await new GatewayKernel(sim, DEFAULT_GATEWAY_NUMBERS).apply(plan());
  assert.equal(sim.snapshot(), state);
});

test('an uplink going offline changes the ruleset only; one coming back restores it', async () => {
  const sim = new KernelSim();
  const k = new GatewayKernel(sim, DEFAULT_GATEWAY_NUMBERS);
  await k.apply(plan());
  const before = sim.snapshot();
  sim.changes = [];
  await k.apply(plan({ up1: false }));
  assert.deepEqual(
    sim.changes.filter((c) => !c.includes('route replace')),
    ['nft -f -'],
  );
  assert.ok(!/numgen[^\n]*0x4c02/.test(sim.nftTable ?? ''), 'up1 left the rotation');
  await k.apply(plan());
  assert.equal(sim.snapshot(), before);
});

test('a failure part-way through an apply leaves nothing of linkmux behind', async () => {
  const pristine = new KernelSim().snapshot();
  const total = await (async () => {
    const sim = new KernelSim();
    await new GatewayKernel(sim, DEFAULT_GATEWAY_NUMBERS).apply(plan());
    return sim.changes.length;
  })();
  for (let n = 1; n <= total; n++) {
    const sim = new KernelSim();
    sim.failAt = n;
    const k = new GatewayKernel(sim, DEFAULT_GATEWAY_NUMBERS);
    await assert.rejects(k.apply(plan()), (e: unknown) => isLinkmuxError(e, 'LINKMUX_ERR_COMMAND_FAILED'));
    assert.equal(sim.snapshot(), pristine, `failing change ${n} of ${total} left state behind`);
  }
});

test('cleanup removes what linkmux added, also from a bigger old config, and nothing else', async () => {
  const sim = new KernelSim();
  const pristine = sim.snapshot();
  const big = new GatewayKernel(sim, DEFAULT_GATEWAY_NUMBERS);
  await big.apply(plan());
  // A crash, then a cleanup by a process that knows nothing of that run.
  await new GatewayKernel(sim, DEFAULT_GATEWAY_NUMBERS).cleanup();
  assert.equal(sim.snapshot(), pristine);
  await new GatewayKernel(sim, DEFAULT_GATEWAY_NUMBERS).cleanup();
  assert.equal(sim.snapshot(), pristine, 'cleanup twice is harmless');
});

test('preflight refuses clashes and bad settings before any change', async () => {
  const cases: Array<[string, (s: KernelSim) => void, UplinkDecl[], RegExp]> = [
    ['missing interface', () => {}, [{ ...UPLINKS[0]!, dev: 'up9' }], /up9 does not exist/],
    ['gateway off subnet', () => {}, [{ ...UPLINKS[0]!, gateway: '203.0.113.1' }], /not on up0's subnet/],
    ['no forwarding', (s) => (s.forward = '0'), UPLINKS, /ip_forward/],
    [
      'foreign rule on our mark',
      (s) => s.ip.rules.push({ family: 4, priority: 50, fwmark: { mark: 0x4c01, mask: 0xffff }, table: 7 }),
      UPLINKS,
      /fwmark 0x4c01/,
    ],
    [
      'foreign routes in our table',
      (s) => s.ip.routes.push({ family: 4, table: 4202, dst: 'default', gateway: '10.0.0.1', dev: 'eth9' }),
      UPLINKS,
      /table 4202 already has routes/,
    ],
  ];
  for (const [what, setup, uplinks, why] of cases) {
    const sim = new KernelSim();
    setup(sim);
    const k = new GatewayKernel(sim, DEFAULT_GATEWAY_NUMBERS);
    await assert.rejects(
      k.preflight(uplinks, ['lan0'], IFACES),
      (e: unknown) => isLinkmuxError(e, 'LINKMUX_ERR_CONFIG') && why.test(e.message),
      what,
    );
    assert.deepEqual(sim.changes, [], `${what}: nothing changed`);
  }
  const sim = new KernelSim();
  assert.deepEqual(
    await new GatewayKernel(sim, DEFAULT_GATEWAY_NUMBERS).preflight(UPLINKS, ['lan0'], IFACES),
    [],
  );
});

/** A runner over the simulated kernel on which some tools are not installed (ENOENT, as ExecRunner reports it). */
function without(sim: KernelSim, ...missing: string[]): Runner {
  return {
    run: (cmd, args, opts) =>
      missing.includes(cmd)
        ? Promise.reject(
            new LinkmuxError('LINKMUX_ERR_COMMAND_FAILED', missingToolMessage(cmd), {
              cause: Object.assign(new Error(`spawn ${cmd} ENOENT`), { code: 'ENOENT' }),
            }),
          )
        : sim.run(cmd, args, opts),
  };
}

test('a missing tool is LINKMUX_ERR_COMMAND_FAILED naming the package, not a config error', async () => {
  const sim = new KernelSim();
  await assert.rejects(
    new GatewayKernel(without(sim, 'nft'), DEFAULT_GATEWAY_NUMBERS).preflight(UPLINKS, ['lan0'], IFACES),
    (e: unknown) =>
      isLinkmuxError(e, 'LINKMUX_ERR_COMMAND_FAILED') &&
      /nft is not installed.*apt-get install nftables/.test(e.message),
  );
  await assert.rejects(
    new GatewayKernel(without(sim, 'conntrack'), DEFAULT_GATEWAY_NUMBERS).preflight(
      UPLINKS,
      ['lan0'],
      IFACES,
    ),
    (e: unknown) =>
      isLinkmuxError(e, 'LINKMUX_ERR_COMMAND_FAILED') && /apt-get install conntrack/.test(e.message),
  );
  assert.deepEqual(sim.changes, []);
});

test('ExecRunner: a command that is not installed names its package', async () => {
  await assert.rejects(
    new ExecRunner().run('linkmux-no-such-tool', ['--version']),
    (e: unknown) =>
      isLinkmuxError(e, 'LINKMUX_ERR_COMMAND_FAILED') &&
      /linkmux-no-such-tool is not installed/.test(e.message),
  );
  assert.match(
    missingToolMessage('nft'),
    /install the nftables package \(Debian\/Ubuntu: apt-get install nftables\)/,
  );
  assert.match(missingToolMessage('ip'), /apt-get install iproute2/);
  assert.match(missingToolMessage('sysctl'), /apt-get install procps/);
});

test('preflight reports every problem at once, each with its own fix', async () => {
  const sim = new KernelSim();
  sim.forward = '0';
  const uplinks = [
    { ...UPLINKS[0]!, gateway: '203.0.113.1' },
    { ...UPLINKS[1]!, name: 'wan9', dev: 'up9' },
    UPLINKS[2]!,
  ];
  await assert.rejects(
    new GatewayKernel(without(sim, 'conntrack'), DEFAULT_GATEWAY_NUMBERS).preflight(
      uplinks,
      ['lan9'],
      IFACES,
    ),
    (e: unknown) => {
      assert.ok(isLinkmuxError(e, 'LINKMUX_ERR_COMMAND_FAILED'), String(e));
      for (const why of [
        /apt-get install conntrack/,
        /lan interface lan9 does not exist .*: fix its name in gateway\.lan/,
        /uplink wan9: interface up9 does not exist .*: fix its name in gateway\.uplinks/,
        /gateway 203\.0\.113\.1 is not on up0's subnet/,
        /ip_forward/,
      ]) {
        assert.match(e.message, why);
      }
      assert.doesNotMatch(e.message, /give it as gateway/);
      return true;
    },
  );
  assert.deepEqual(sim.changes, []);
});

test('a dry run needs neither conntrack, nft nor forwarding: they become warnings', async () => {
  const sim = new KernelSim();
  sim.forward = '0';
  const report = await new GatewayKernel(without(sim, 'conntrack', 'nft'), DEFAULT_GATEWAY_NUMBERS).check(
    UPLINKS,
    ['lan0'],
    IFACES,
    { dryRun: true },
  );
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.missingTools, []);
  const text = report.warnings.join('\n');
  assert.match(text, /a real run needs this: conntrack is not installed/);
  assert.match(text, /a real run needs this: nft is not installed/);
  assert.match(text, /a real run needs this: this machine does not forward IPv4/);
  assert.deepEqual(sim.changes, []);
});
