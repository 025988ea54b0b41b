// The testbed's policyTables variant as commands: per-uplink tables and source rules,
// no main-table default route; the default variant is unchanged (topology.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLinkmuxError } from '../../src/util/errors.js';
import { formatCommands, planTopology, routeCommands, setupCommands } from '../../src/testbed/topology.js';

const usage = (err: unknown) => isLinkmuxError(err, 'LINKMUX_ERR_USAGE');
const plan = planTopology({ prefix: 't-', links: 2, policyTables: true });
const node = planTopology({ prefix: 't-', machines: [0, 1], policyTables: true });

test('policyTables: default routes only in per-uplink tables, one source rule each, rules after routes', () => {
  const lines = formatCommands(setupCommands(plan))
    .split('\n')
    .filter((l) => / (route|rule) /.test(l));
  assert.deepEqual(lines, [
    'ip -n t-c route replace default via 198.18.1.1 dev up0 table 201',
    'ip -n t-c route replace default via 198.18.2.1 dev up1 table 202',
    'ip -n t-c rule add from 198.18.1.2 lookup 201 priority 5000',
    'ip -n t-c rule add from 198.18.2.2 lookup 202 priority 5001',
  ]);
});

test('policyTables: each machine gets the tables and rules of its own uplinks', () => {
  const lines = formatCommands(setupCommands(node))
    .split('\n')
    .filter((l) => / (route|rule) /.test(l));
  assert.deepEqual(lines, [
    'ip -n t-c route replace default via 198.18.1.1 dev up0 table 201',
    'ip -n t-n1 route replace default via 198.18.2.1 dev up1 table 202',
    'ip -n t-c rule add from 198.18.1.2 lookup 201 priority 5000',
    'ip -n t-n1 rule add from 198.18.2.2 lookup 202 priority 5001',
  ]);
});

test('policyTables: an admin-down uplink loses its table route, the rules stay; ECMP is refused', () => {
  assert.equal(
    formatCommands(routeCommands(plan, { ecmp: false, down: new Set([1]) })),
    'ip -n t-c route replace default via 198.18.1.1 dev up0 table 201\n' +
      'ip -n t-c route del default table 202',
  );
  assert.throws(() => routeCommands(plan, { ecmp: true, down: new Set() }), usage);
});

test('policyTables: refused with LAN hosts; absent from the plan when off', () => {
  assert.throws(() => planTopology({ prefix: 't-', lanHosts: 1, policyTables: true }), usage);
  assert.equal(plan.policyTables, true);
  assert.equal('policyTables' in planTopology({ prefix: 't-', links: 2 }), false);
});
