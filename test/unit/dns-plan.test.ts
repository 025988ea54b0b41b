/**
 * Which link asks which nameserver, in what order (src/dns/plan.ts), and
 * which names a lookup tries. Attempts print as "a>s0 b>s0 a>s1" (link id >
 * server index; "direct" for plain sockets) so a case reads as one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidateNames, planAttempts, type CarrierInfo } from '../../src/dns/plan.js';

function carrier(id: string, families: Array<4 | 6> = [4], subnet?: string): CarrierInfo {
  return {
    id,
    families: new Set(families),
    onLink: (ip) => subnet !== undefined && ip.startsWith(subnet),
  };
}

function plan(
  carriers: CarrierInfo[],
  servers: string[],
  penalized: string[] = [],
  loopbackDirect = true,
): string {
  return planAttempts(
    carriers,
    servers.map((address) => ({ address })),
    new Set(penalized),
    loopbackDirect,
  )
    .map((a) => `${a.carrier < 0 ? 'direct' : carriers[a.carrier]!.id}>s${a.server}`)
    .join(' ');
}

const [a, b, c] = [carrier('a'), carrier('b'), carrier('c')];
const S1 = '192.0.2.53';
const S2 = '198.51.100.53';

const cases: Array<[string, () => string, string]> = [
  ['3 links × 1 server: each link once, in order', () => plan([a, b, c], [S1]), 'a>s0 b>s0 c>s0'],
  ['1 link × 2 servers: the servers in order', () => plan([a], [S1, S2]), 'a>s0 a>s1'],
  [
    '3 links × 2 servers: the 2nd attempt on another link, the 3rd on another server',
    () => plan([a, b, c], [S1, S2]),
    'a>s0 b>s0 a>s1 c>s0 b>s1 c>s1',
  ],
  [
    'a server on a link’s own subnet is asked only through that link',
    () => plan([a, carrier('lan', [4], '192.168.1.'), c], ['192.168.1.1', S2]),
    'lan>s0 a>s1 lan>s1 c>s1',
  ],
  ['a loopback server goes over plain sockets (carrier -1)', () => plan([a, b], ['127.0.0.53']), 'direct>s0'],
  ['::1 is loopback too', () => plan([a, b], ['::1']), 'direct>s0'],
  [
    'loopbackDirect=false: a loopback server is asked through the links',
    () => plan([a, b], ['127.0.0.1'], [], false),
    'a>s0 b>s0',
  ],
  [
    'a loopback server first, then a remote one',
    () => plan([a, b], ['127.0.0.1', S2]),
    'direct>s0 a>s1 b>s1',
  ],
  ['a penalized link goes last', () => plan([a, b, c], [S1], ['a']), 'b>s0 c>s0 a>s0'],
  [
    'penalized links keep their relative order, after the others',
    () => plan([a, b, c], [S1, S2], ['a', 'b']),
    'c>s0 a>s0 c>s1 b>s0 a>s1 b>s1',
  ],
  [
    'an IPv6 server skips IPv4-only links',
    () => plan([a, carrier('v6', [6]), carrier('dual', [4, 6])], ['2001:db8::53']),
    'v6>s0 dual>s0',
  ],
  ['an IPv4 server skips IPv6-only links', () => plan([carrier('v6', [6]), a], [S1]), 'a>s0'],
  ['an IPv6 server with IPv4-only links: no attempt', () => plan([a, b], ['2001:db8::53']), ''],
  ['no links: no attempt', () => plan([], [S1, S2]), ''],
  ['no servers: no attempt', () => plan([a, b], []), ''],
];

for (const [name, run, want] of cases) {
  test(`planAttempts: ${name}`, () => {
    assert.equal(run(), want);
  });
}

const names: Array<[string, string, string[], number, string[]]> = [
  [
    'single label, ndots 1: search domains first',
    'files',
    ['corp.test', 'home.test'],
    1,
    ['files.corp.test', 'files.home.test', 'files'],
  ],
  [
    'enough dots: as it is first',
    'files.example',
    ['corp.test'],
    1,
    ['files.example', 'files.example.corp.test'],
  ],
  ['fewer dots than ndots:3: search first', 'a.b', ['corp.test'], 3, ['a.b.corp.test', 'a.b']],
  ['as many dots as ndots: as it is first', 'a.b.c', ['corp.test'], 2, ['a.b.c', 'a.b.c.corp.test']],
  ['absolute name: as it is, without the dot, never searched', 'files.', ['corp.test'], 1, ['files']],
  ['no search domains', 'files', [], 1, ['files']],
  ['ndots 0: as it is first even without dots', 'files', ['corp.test'], 0, ['files', 'files.corp.test']],
];

for (const [name, host, search, ndots, want] of names) {
  test(`candidateNames: ${name}`, () => {
    assert.deepEqual(candidateNames(host, search, ndots), want);
  });
}
