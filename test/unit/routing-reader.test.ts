/**
 * The one reader (routing/reader.ts) on output captured from iproute2 6.1:
 * with -N every table is a number; without it a named table reads as no table
 * (the route setup bug); selectors linkmux never sets are kept aside in `other`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpRoutes, parseIpRules, ruleShowArgs, routeShowArgs } from '../../src/routing/reader.js';
import { isLinkmuxError } from '../../src/util/errors.js';

// `ip -j -N -4 rule show` (iproute2 6.1), a rule of each kind.
const RULES_N = JSON.stringify([
  { priority: 0, src: 'all', table: '255' },
  { priority: 10000, src: '198.18.77.2', table: '100' },
  { priority: 10001, src: 'all', fwmark: '0x10', fwmask: '0xff', table: '100' },
  { priority: 10002, src: 'all', table: '254', suppress_prefixlen: 0 },
  { priority: 10003, not: null, src: '1.2.3.4', table: '100' },
  { priority: 10004, src: '1.2.3.0', srclen: 24, action: '7' },
  { priority: 10005, src: '1.2.3.0', srclen: 24, goto: 10006 },
  { priority: 32766, src: 'all', table: '254' },
]);

test('parseIpRules: numbers, sources as address/prefix, marks, foreign selectors in other', () => {
  assert.deepEqual(parseIpRules(RULES_N, 4), [
    { family: 4, priority: 0, table: 255, other: [] },
    { family: 4, priority: 10000, table: 100, from: '198.18.77.2/32', other: [] },
    { family: 4, priority: 10001, table: 100, fwmark: { mark: 0x10, mask: 0xff }, other: [] },
    { family: 4, priority: 10002, table: 254, suppressPrefixLength: 0, other: [] },
    { family: 4, priority: 10003, table: 100, from: '1.2.3.4/32', other: ['not'] },
    { family: 4, priority: 10004, from: '1.2.3.0/24', other: ['action'] },
    { family: 4, priority: 10005, from: '1.2.3.0/24', other: ['goto'] },
    { family: 4, priority: 32766, table: 254, other: [] },
  ]);
});

test('parseIpRules: kernel table names, a name from rt_tables, old hex, IPv6, empty and bad output', () => {
  const rules = parseIpRules(
    JSON.stringify([
      { priority: 0, src: 'all', table: 'local' },
      { priority: 100, src: 'all', fwmark: '4c01', fwmask: 'ffff', table: '4201' },
      { priority: 10000, src: '2001:db8:6::2', table: 'isp1' },
      { priority: 32766, src: 'all', table: 'main' },
    ]),
    6,
  );
  assert.deepEqual(
    rules.map((r) => [r.priority, r.table, r.fwmark, r.from]),
    [
      [0, 255, undefined, undefined],
      [100, 4201, { mark: 0x4c01, mask: 0xffff }, undefined],
      [10000, undefined, undefined, '2001:db8:6::2/128'],
      [32766, 254, undefined, undefined],
    ],
  );
  assert.deepEqual(parseIpRules('', 4), []);
  assert.throws(
    () => parseIpRules('Error: ', 4),
    (err) => isLinkmuxError(err, 'LINKMUX_ERR_COMMAND_FAILED'),
  );
});

test('parseIpRoutes: main without "table", numeric types (-N), host routes get their length', () => {
  const routes = parseIpRoutes(
    JSON.stringify([
      { dst: 'default', gateway: '198.18.1.1', dev: 'u1', table: '100', flags: [] },
      { dst: '198.18.1.0/24', dev: 'u1', table: '100', scope: '253', prefsrc: '198.18.1.2', flags: [] },
      { dst: 'default', gateway: '198.18.1.1', dev: 'u1', metric: 100, flags: [] },
      { type: '2', dst: '127.0.0.1', dev: 'lo', table: '255', prefsrc: '127.0.0.1', flags: [] },
      { type: 'unreachable', dst: '10.0.0.0/8', table: '101', flags: [] },
      { dst: '198.18.7.7', dev: 'u1', table: '100', flags: [] },
    ]),
    4,
  );
  assert.deepEqual(routes, [
    { family: 4, table: 100, dst: 'default', dev: 'u1', gateway: '198.18.1.1' },
    { family: 4, table: 100, dst: '198.18.1.0/24', dev: 'u1', src: '198.18.1.2' },
    { family: 4, table: 254, dst: 'default', dev: 'u1', gateway: '198.18.1.1' },
    { family: 4, table: 255, dst: '127.0.0.1/32', dev: 'lo', src: '127.0.0.1', type: '2' },
    { family: 4, table: 101, dst: '10.0.0.0/8', type: 'unreachable' },
    { family: 4, table: 100, dst: '198.18.7.7/32', dev: 'u1' },
  ]);
});

test('the reader always asks with -N', () => {
  assert.deepEqual(ruleShowArgs(6), ['-j', '-N', '-6', 'rule', 'show']);
  assert.deepEqual(routeShowArgs(4), ['-j', '-N', '-4', 'route', 'show', 'table', 'all']);
});
