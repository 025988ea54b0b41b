/** Which destinations `linkmux get` fetches directly rather than over the uplinks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDirectDestination } from '../../src/net/direct-destination.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';

const IFACES: NetInterface[] = [
  {
    name: 'eth0',
    up: true,
    loopback: false,
    gateway: '192.168.1.1',
    addresses: [
      { address: '192.168.1.20', family: 4, prefixLength: 24 },
      { address: '2001:db8:1::20', family: 6, prefixLength: 64 },
    ],
  },
  {
    name: 'wwan0',
    up: true,
    loopback: false,
    addresses: [{ address: '10.64.3.7', family: 4, prefixLength: 32 }],
  },
  {
    name: 'eth1',
    up: false,
    loopback: false,
    addresses: [{ address: '172.16.0.2', family: 4, prefixLength: 16 }],
  },
];

test('loopback, own addresses and on-link subnets go direct; the rest over the uplinks', () => {
  const table: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['localhost', true],
    ['LOCALHOST.', true],
    ['app.localhost', true],
    ['192.168.1.1', true], // the router, on eth0's subnet
    ['192.168.1.20', true], // this machine
    ['[2001:db8:1::99]', true],
    ['10.64.3.7', true], // own address of a /32 link
    ['10.64.3.8', false], // beyond a /32: routed
    ['192.168.2.1', false],
    ['172.16.0.9', false], // eth1 is down
    ['2001:db8:2::1', false],
    ['93.184.216.34', false],
    ['example.org', false], // names are never resolved here
    ['nas.lan', false],
  ];
  for (const [host, direct] of table) assert.equal(isDirectDestination(host, IFACES), direct, host);
});
