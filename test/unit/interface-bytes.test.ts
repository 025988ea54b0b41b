// sysfs counters of network interfaces: real reads of this machine's loopback,
// and names that are not interface names never reach the file system.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { interfaceRxBytes, sysfsIfindex } from '../../src/net/interface-bytes.js';

const sysfs = existsSync('/sys/class/net/lo/statistics/rx_bytes');

test(
  'loopback: a received-byte counter and ifindex 1 from sysfs',
  { skip: sysfs ? false : 'no sysfs here' },
  () => {
    const rx = interfaceRxBytes('lo');
    assert.equal(typeof rx, 'number');
    assert.ok((rx ?? -1) >= 0);
    assert.equal(sysfsIfindex('lo'), 1);
  },
);

test('a missing device, and names that are not interface names, give undefined without throwing', () => {
  for (const dev of ['no-such-dev0', '', '.', '..', '../lo', 'lo/../lo', 'a'.repeat(16), 'sp ace']) {
    assert.equal(interfaceRxBytes(dev), undefined, dev);
    assert.equal(sysfsIfindex(dev), undefined, dev);
  }
});
