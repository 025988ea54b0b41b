/**
 * The client's MPTCP path planner: `ip mptcp` output parsed from fixtures (and
 * split, reordered, malformed text); the plan as a pure function of uplinks,
 * kernel state and the ownership record; apply/cleanup through a fake runner
 * (what would run, and that the same state twice runs nothing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  endpointAddArgs,
  endpointDelArgs,
  limitsSetArgs,
  parseEndpoints,
  parseLimits,
} from '../../src/mptcp/ip-mptcp.js';
import { neededLimits, pathUplinks, planCleanup, planPaths, type PathUplink } from '../../src/mptcp/plan.js';
import { MptcpKernel, memoryRecordStore } from '../../src/mptcp/kernel.js';
import { parseSubflows } from '../../src/mptcp/subflows.js';
import { FakeRunner } from '../../src/util/runner.js';
import { isLinkmuxError } from '../../src/util/errors.js';

const FIXTURES = new URL('../../../test/fixtures/mptcp/', import.meta.url);
const fixture = (name: string) => readFile(new URL(name, FIXTURES), 'utf8');

test('parseEndpoints reads every field of `ip mptcp endpoint show` (fixture)', async () => {
  assert.deepEqual(parseEndpoints(await fixture('endpoint-show.txt')), [
    { address: '198.18.1.2', id: 200, flags: ['subflow'], dev: 'up0' },
    { address: '198.18.2.2', id: 201, flags: ['subflow'], dev: 'up1' },
    { address: '198.18.9.3', id: 7, flags: ['signal'], dev: 'd0' },
    { address: '198.18.9.4', id: 8, flags: ['subflow', 'backup'] },
  ]);
  assert.deepEqual(parseEndpoints(''), []);
  assert.deepEqual(parseEndpoints('2001:db8::2 port 5 dev eth1 id 3 fullmesh unknownflag\n'), [
    { address: '2001:db8::2', id: 3, flags: ['fullmesh'], dev: 'eth1', port: 5 },
  ]);
  assert.throws(
    () => parseEndpoints('Error: mptcp not supported\n'),
    (e) => isLinkmuxError(e, 'LINKMUX_ERR_COMMAND_FAILED'),
  );
});

test('parseLimits reads the fixture and any order; refuses garbage', async () => {
  assert.deepEqual(parseLimits(await fixture('limits-show.txt')), { subflows: 2, addAddrAccepted: 0 });
  assert.deepEqual(parseLimits('subflows 8 add_addr_accepted 3'), { subflows: 8, addAddrAccepted: 3 });
  assert.throws(
    () => parseLimits('subflows x'),
    (e) => isLinkmuxError(e, 'LINKMUX_ERR_COMMAND_FAILED'),
  );
});

test('ip argument builders: dev always given, delete by id only', () => {
  assert.deepEqual(endpointAddArgs({ address: '198.18.2.2', id: 201, dev: 'up1', flags: ['subflow'] }), [
    'mptcp',
    'endpoint',
    'add',
    '198.18.2.2',
    'dev',
    'up1',
    'id',
    '201',
    'subflow',
  ]);
  assert.deepEqual(endpointDelArgs({ id: 201 }), ['mptcp', 'endpoint', 'delete', 'id', '201']);
  assert.deepEqual(limitsSetArgs({ subflows: 3, addAddrAccepted: 3 }), [
    'mptcp',
    'limits',
    'set',
    'subflows',
    '3',
    'add_addr_accepted',
    '3',
  ]);
});

const up = (i: number, inService = true): PathUplink => ({
  dev: `up${i}`,
  address: `198.18.${i + 1}.2`,
  inService,
});
const empty = { endpoints: [], limits: { subflows: 2, addAddrAccepted: 0 } };

test('plan: one endpoint per uplink in service, limits raised once, record of what was there', () => {
  const p = planPaths([up(0), up(1), up(2, false)], empty, undefined);
  assert.deepEqual(
    p.add.map((e) => [e.dev, e.id]),
    [
      ['up0', 200],
      ['up1', 201],
    ],
  );
  assert.deepEqual(p.limits, { subflows: 3, addAddrAccepted: 3 });
  assert.deepEqual(p.record.limitsBefore, { subflows: 2, addAddrAccepted: 0 });
  assert.deepEqual(p.remove, []);
  assert.deepEqual(neededLimits(12, { subflows: 0, addAddrAccepted: 0 }), {
    subflows: 8,
    addAddrAccepted: 8,
  });
});

test('plan: an uplink going offline loses only its own endpoint; a foreign one is never touched', () => {
  const current = {
    endpoints: [
      { address: '198.18.1.2', id: 200, dev: 'up0', flags: ['subflow' as const] },
      { address: '198.18.2.2', id: 201, dev: 'up1', flags: ['subflow' as const] },
      { address: '198.18.3.2', id: 5, dev: 'up2', flags: ['subflow' as const] }, // the user's
    ],
    limits: { subflows: 3, addAddrAccepted: 3 },
  };
  const record = {
    version: 1 as const,
    limitsBefore: { subflows: 2, addAddrAccepted: 0 },
    limitsSet: { subflows: 3, addAddrAccepted: 3 },
    endpoints: [
      { id: 200, address: '198.18.1.2', dev: 'up0' },
      { id: 201, address: '198.18.2.2', dev: 'up1' },
    ],
  };
  const p = planPaths([up(0), up(1, false), up(2)], current, record);
  assert.deepEqual(p.add, []);
  assert.deepEqual(p.remove, [{ id: 201, address: '198.18.2.2', dev: 'up1' }]);
  assert.equal(p.limits, undefined);
  assert.match(p.skipped[0]?.reason ?? '', /not linkmux's/);
  assert.deepEqual(p.record.endpoints, [{ id: 200, address: '198.18.1.2', dev: 'up0' }]);
  // Cleanup: ours only; the limits go back while ours are still in force.
  assert.deepEqual(planCleanup(current, record), {
    remove: record.endpoints,
    limits: { subflows: 2, addAddrAccepted: 0 },
  });
  const changedByUser = { ...current, limits: { subflows: 5, addAddrAccepted: 3 } };
  assert.equal(planCleanup(changedByUser, record).limits, undefined);
});

test('pathUplinks takes the first address of the family, skipping link-local', () => {
  const u = pathUplinks(
    [
      {
        name: 'up0',
        up: true,
        loopback: false,
        addresses: [
          { address: 'fe80::1', family: 6, prefixLength: 64 },
          { address: '198.18.1.2', family: 4, prefixLength: 24 },
        ],
      },
      { name: 'wl0', up: true, loopback: false, addresses: [] },
    ],
    (d) => d === 'up0',
  );
  assert.deepEqual(u, [{ dev: 'up0', address: '198.18.1.2', inService: true }]);
});

test('kernel: apply runs adds and limits once; the same state again runs nothing; cleanup restores', async () => {
  const shown = '198.18.1.2 id 200 subflow dev up0 \n198.18.2.2 id 201 subflow dev up1 \n';
  const store = memoryRecordStore();
  const first = new FakeRunner({
    'ip mptcp endpoint show': '',
    'ip mptcp limits show': 'add_addr_accepted 0 subflows 2 \n',
  });
  const r1 = await new MptcpKernel(first, store).apply([up(0), up(1)]);
  assert.deepEqual(
    r1.ran.map((a) => a.join(' ')),
    [
      'mptcp limits set subflows 2 add_addr_accepted 2',
      'mptcp endpoint add 198.18.1.2 dev up0 id 200 subflow',
      'mptcp endpoint add 198.18.2.2 dev up1 id 201 subflow',
    ],
  );
  const again = new FakeRunner({
    'ip mptcp endpoint show': shown,
    'ip mptcp limits show': 'add_addr_accepted 2 subflows 2 \n',
  });
  const r2 = await new MptcpKernel(again, store).apply([up(0), up(1)]);
  assert.deepEqual(r2.ran, []);
  assert.deepEqual(again.calls, ['ip mptcp endpoint show', 'ip mptcp limits show']);
  const clean = new FakeRunner({
    'ip mptcp endpoint show': shown,
    'ip mptcp limits show': 'add_addr_accepted 2 subflows 2 \n',
    'ip -j -4 rule show': '[]',
    'ip -j -4 route show table all': '[]',
  });
  const ran = await new MptcpKernel(clean, store).cleanup();
  assert.deepEqual(
    ran.map((a) => a.join(' ')),
    [
      'mptcp endpoint delete id 200',
      'mptcp endpoint delete id 201',
      'mptcp limits set subflows 2 add_addr_accepted 0',
    ],
  );
  assert.equal(store.value, undefined);
});

test('parseSubflows sums MPTCP subflows to the server port by local address', () => {
  const text = [
    '0      0      198.18.1.2:41997 198.19.0.20:7400',
    '\t cubic bytes_acked:10 bytes_received:1000 tcp-ulp-mptcp flags:Mec token:0000(id:0)',
    '0      0      198.18.2.2:41998 198.19.0.20:7400',
    '\t cubic bytes_acked:5 bytes_received:500 tcp-ulp-mptcp flags:Jjec',
    '0      0      198.18.2.2:41999 198.19.0.10:80',
    '\t cubic bytes_acked:5 bytes_received:999',
    '0      0      198.18.1.2:42000 198.19.0.20:7400',
    '\t cubic bytes_acked:1 bytes_received:1',
  ].join('\n');
  assert.deepEqual(
    [...parseSubflows(text, 7400)],
    [
      ['198.18.1.2', { subflows: 1, bytesIn: 1000, bytesOut: 10 }],
      ['198.18.2.2', { subflows: 1, bytesIn: 500, bytesOut: 5 }],
    ],
  );
});
