import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { linkRows, registerLinks, renderLinksTable, rpFilterWarnings } from '../../src/cli/links-command.js';
import type { LinkRow } from '../../src/cli/links-command.js';
import type { NetInterface } from '../../src/net/interfaces-types.js';
import { FakeRunner } from '../../src/util/runner.js';

const IP_ADDR = JSON.stringify([
  {
    ifname: 'lo',
    flags: ['LOOPBACK', 'UP', 'LOWER_UP'],
    operstate: 'UNKNOWN',
    link_type: 'loopback',
    addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }],
  },
  {
    ifname: 'u1',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    operstate: 'UP',
    addr_info: [
      { family: 'inet', local: '198.18.1.2', prefixlen: 24, scope: 'global' },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
    ],
  },
  {
    ifname: 'u2',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    operstate: 'UP',
    addr_info: [
      { family: 'inet', local: '198.18.2.2', prefixlen: 24, scope: 'global' },
      { family: 'inet6', local: '2001:db8:2::2', prefixlen: 64, scope: 'global' },
    ],
  },
  { ifname: 'u3', flags: ['BROADCAST', 'MULTICAST'], operstate: 'DOWN', addr_info: [] },
  {
    ifname: 'u4',
    flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'],
    operstate: 'DOWN',
    addr_info: [{ family: 'inet', local: '198.18.4.2', prefixlen: 24, scope: 'global' }],
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

function fakeIp(): FakeRunner {
  return new FakeRunner({
    'ip -j addr show': IP_ADDR,
    'ip -j route show default': ROUTES,
    'ip -j -6 route show default': '[]',
  });
}

async function run(args: string[], rp: Record<string, number> = {}): Promise<string> {
  let out = '';
  const program = new Command('linkmux').exitOverride();
  registerLinks(program, {
    runner: fakeIp(),
    platform: 'linux',
    write: (s) => (out += s),
    bindSupport: () => ({ available: true }),
    readRpFilter: (dev) => rp[dev],
  });
  await program.parseAsync(['node', 'linkmux', ...args]);
  return out;
}

test('links: table of interfaces with an address, with why-not', async () => {
  assert.equal(
    await run(['links']),
    `INTERFACE  STATE  ADDRESSES                       GATEWAY     METRIC  USABLE
u1         up     198.18.1.2/24                   198.18.1.1  100     yes
u2         up     198.18.2.2/24,2001:db8:2::2/64  198.18.2.1  200     yes
u4         down   198.18.4.2/24                   -           -       no (down)
lan1       up     198.18.5.2/24                   -           -       no (no default route)

links are bound to their interface with SO_BINDTODEVICE
use an interface with: linkmux get --link <interface|address> URL
`,
  );
});

test('links --all adds loopback and address-less interfaces', async () => {
  const out = await run(['links', '--all']);
  assert.match(out, /^lo +up +127\.0\.0\.1\/8 +- +- +no \(loopback\)$/m);
  assert.match(out, /^u3 +down +- +- +- +no \(down\)$/m);
});

test('links --json', async () => {
  const rows = JSON.parse(await run(['links', '--json'])) as unknown[];
  assert.deepEqual(rows[0], {
    name: 'u1',
    state: 'up',
    loopback: false,
    addresses: ['198.18.1.2/24'],
    gateway: '198.18.1.1',
    metric: 100,
    usable: true,
  });
  assert.deepEqual(rows[3], {
    name: 'lan1',
    state: 'up',
    loopback: false,
    addresses: ['198.18.5.2/24'],
    usable: false,
    reason: 'no default route',
  });
});

test('linkRows off Linux: no route needed; renderLinksTable of nothing is just the header', () => {
  const en0: NetInterface = {
    name: 'en0',
    up: true,
    loopback: false,
    addresses: [{ address: '192.168.1.5', family: 4, prefixLength: 24 }],
  };
  assert.equal(linkRows([en0], { all: false, platform: 'darwin' })[0]?.usable, true);
  assert.equal(renderLinksTable([]), 'INTERFACE  STATE  ADDRESSES  GATEWAY  METRIC  USABLE\n');
});

test('links warns about strict rp_filter when several uplinks are usable', async () => {
  const out = await run(['links'], { all: 0, u1: 0, u2: 1 });
  assert.match(
    out,
    /warning: strict reverse-path filtering \(rp_filter=1\) on u2 .*net\.ipv4\.conf\.u2\.rp_filter=2/,
  );
});

const row = (name: string, usable = true): LinkRow => ({
  name,
  state: 'up',
  loopback: false,
  addresses: [],
  usable,
});

test('rpFilterWarnings: effective value is max(all, device); loose and off are fine; one uplink never warns', () => {
  const rows = [row('a'), row('b'), row('c', false)];
  const cases: Array<[Record<string, number>, RegExp | undefined]> = [
    [{ all: 1 }, /on a, b /],
    [{ all: 0, b: 1, c: 1 }, /on b /],
    [{ all: 2, a: 1 }, undefined],
    [{ all: 0, a: 2, b: 0 }, undefined],
    [{}, undefined],
  ];
  for (const [values, want] of cases) {
    const got = rpFilterWarnings(rows, (d) => values[d]);
    if (want) assert.match(got[0] ?? '', want, JSON.stringify(values));
    else assert.deepEqual(got, [], JSON.stringify(values));
  }
  assert.deepEqual(
    rpFilterWarnings([row('a')], () => 1),
    [],
  );
});
