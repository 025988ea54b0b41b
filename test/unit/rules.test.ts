/**
 * RuleSet and isPrivateAddress with tables: domain names exact and by suffix,
 * IPv4/IPv6 networks, ports and ranges, every given field having to hold,
 * first match winning, the private-destination shortcut (and what is NOT
 * private: the 198.18.0.0/15 benchmark range the testbed uses), and malformed
 * rules refused with LINKMUX_ERR_CONFIG naming rules[i].
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RuleSet, isPrivateAddress } from '../../src/proxy/rules.js';
import type { Route, RouteQuery, Rule } from '../../src/proxy/rules.js';
import { isLinkmuxError } from '../../src/util/errors.js';

const q = (ip: string, port = 443, name?: string): RouteQuery => ({ ip, port, ...(name ? { name } : {}) });
const POLICY: Route = { kind: 'policy', reason: 'default' };
const PRIVATE: Route = { kind: 'direct', reason: 'private destination' };
const byRule = (n: number): Route => ({ kind: 'deny', reason: `rule ${n}` });

/** One rule denying what it matches; everything else falls to the policy (privateDirect off). */
function denies(match: Rule['match']): RuleSet {
  return new RuleSet([{ match, action: 'deny' }], false);
}

test('domain: "example.org" is that name only, ".example.org" the name and its subdomains', () => {
  const cases: Array<[Rule['match'], RouteQuery, boolean]> = [
    [{ domain: 'example.org' }, q('203.0.113.1', 443, 'example.org'), true],
    [{ domain: 'example.org' }, q('203.0.113.1', 443, 'EXAMPLE.org.'), true], // case and root dot
    [{ domain: 'example.org' }, q('203.0.113.1', 443, 'www.example.org'), false],
    [{ domain: 'example.org' }, q('203.0.113.1', 443, 'notexample.org'), false],
    [{ domain: '.example.org' }, q('203.0.113.1', 443, 'example.org'), true],
    [{ domain: '.example.org' }, q('203.0.113.1', 443, 'www.example.org'), true],
    [{ domain: '.example.org' }, q('203.0.113.1', 443, 'a.b.c.example.org'), true],
    [{ domain: '.example.org' }, q('203.0.113.1', 443, 'badexample.org'), false],
    [{ domain: '.example.org' }, q('203.0.113.1', 443, 'example.org.evil.net'), false],
    [{ domain: 'Example.ORG' }, q('203.0.113.1', 443, 'example.org'), true], // rule case ignored
    // A domain rule needs the name the client asked for: an IP-only request never matches it.
    [{ domain: '.example.org' }, q('203.0.113.1'), false],
  ];
  for (const [match, query, hit] of cases) {
    assert.deepEqual(
      denies(match).route(query),
      hit ? byRule(1) : POLICY,
      `${JSON.stringify(match)} vs ${JSON.stringify(query)}`,
    );
  }
});

test('cidr: IPv4 and IPv6 networks, a bare address is one host, families never cross', () => {
  const cases: Array<[string, string, boolean]> = [
    ['10.1.0.0/16', '10.1.2.3', true],
    ['10.1.0.0/16', '10.1.255.255', true],
    ['10.1.0.0/16', '10.2.0.1', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['203.0.113.7', '203.0.113.7', true], // no prefix: /32
    ['203.0.113.7', '203.0.113.8', false],
    ['203.0.113.0/24', '2001:db8::1', false],
    ['2001:db8::/32', '2001:db8:1::5', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['2001:db8::/32', '203.0.113.1', false],
    ['2001:db8::1', '2001:db8::1', true], // no prefix: /128
    ['2001:db8::1', '2001:db8::2', false],
  ];
  for (const [cidr, ip, hit] of cases) {
    assert.deepEqual(denies({ cidr }).route(q(ip)), hit ? byRule(1) : POLICY, `${cidr} vs ${ip}`);
  }
});

test('port: one port or an inclusive range, given as a number or text', () => {
  const cases: Array<[number | string, number, boolean]> = [
    [443, 443, true],
    [443, 444, false],
    ['443', 443, true],
    ['8000-8999', 8000, true],
    ['8000-8999', 8500, true],
    ['8000-8999', 8999, true],
    ['8000-8999', 7999, false],
    ['8000-8999', 9000, false],
    ['1-65535', 1, true],
    ['22-22', 22, true],
  ];
  for (const [port, dst, hit] of cases) {
    assert.deepEqual(
      denies({ port }).route(q('203.0.113.1', dst)),
      hit ? byRule(1) : POLICY,
      `${port} vs ${dst}`,
    );
  }
});

test('every given field must hold', () => {
  const rules = denies({ domain: '.example.org', cidr: '203.0.113.0/24', port: '443' });
  const cases: Array<[RouteQuery, boolean]> = [
    [q('203.0.113.5', 443, 'www.example.org'), true],
    [q('203.0.113.5', 80, 'www.example.org'), false], // port differs
    [q('198.51.100.5', 443, 'www.example.org'), false], // network differs
    [q('203.0.113.5', 443, 'www.example.net'), false], // name differs
    [q('203.0.113.5', 443), false], // no name given
  ];
  for (const [query, hit] of cases) {
    assert.deepEqual(rules.route(query), hit ? byRule(1) : POLICY, JSON.stringify(query));
  }
});

test('the first matching rule wins; actions become routes; rules come before privateDirect', () => {
  const rules = new RuleSet(
    [
      { match: { port: 443 }, action: 'link:up1' },
      { match: { domain: '.example.org' }, action: 'deny' },
      { match: { cidr: '127.0.0.0/8' }, action: 'policy:sticky' },
      { match: { domain: 'intranet.example.com' }, action: 'direct' },
      { match: { port: '1-65535' }, action: 'policy:round-robin' },
    ],
    true,
  );
  const cases: Array<[RouteQuery, Route]> = [
    [q('203.0.113.1', 443, 'www.example.org'), { kind: 'link', link: 'up1', reason: 'rule 1' }],
    [q('203.0.113.1', 80, 'www.example.org'), { kind: 'deny', reason: 'rule 2' }],
    // Rule 3 wins over privateDirect, which would send loopback direct.
    [q('127.0.0.1', 80), { kind: 'policy', policy: 'sticky', reason: 'rule 3' }],
    [q('203.0.113.1', 80, 'intranet.example.com'), { kind: 'direct', reason: 'rule 4' }],
    [q('203.0.113.1', 80), { kind: 'policy', policy: 'round-robin', reason: 'rule 5' }],
  ];
  for (const [query, route] of cases) assert.deepEqual(rules.route(query), route, JSON.stringify(query));
});

test('privateDirect: loopback, RFC 1918, link-local, mapped and "localhost" go direct; public ones do not', () => {
  const on = new RuleSet([]); // privateDirect is on by default
  const off = new RuleSet([], false);
  const cases: Array<[RouteQuery, boolean]> = [
    [q('127.0.0.1'), true],
    [q('127.200.1.1'), true],
    [q('10.0.0.1'), true],
    [q('10.255.255.255'), true],
    [q('192.168.1.10'), true],
    [q('172.16.0.1'), true],
    [q('169.254.1.1'), true],
    [q('::1'), true],
    [q('fe80::1'), true],
    [q('fd12:3456::1'), true],
    [q('::ffff:10.0.0.1'), true],
    [q('::ffff:127.0.0.1'), true],
    [q('203.0.113.1', 443, 'localhost'), true], // the name alone makes it local
    [q('198.18.0.1'), false], // RFC 2544 benchmarking range: the testbed's uplinks, not a LAN
    [q('198.19.255.254'), false],
    [q('8.8.8.8'), false],
    [q('172.32.0.1'), false],
    [q('192.169.0.1'), false],
    [q('2001:db8::1'), false],
    [q('::ffff:8.8.8.8'), false],
    [q('203.0.113.1', 443, 'localhost.example.org'), false],
  ];
  for (const [query, direct] of cases) {
    assert.deepEqual(on.route(query), direct ? PRIVATE : POLICY, `on: ${JSON.stringify(query)}`);
    assert.deepEqual(off.route(query), POLICY, `off: ${JSON.stringify(query)}`);
  }
});

test('isPrivateAddress', () => {
  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['0.0.0.0', true],
    ['10.0.0.1', true],
    ['100.64.0.1', true], // CGNAT
    ['100.128.0.1', false],
    ['169.254.0.1', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['172.32.0.1', false],
    ['192.168.0.1', true],
    ['192.167.255.255', false],
    ['198.18.0.0', false],
    ['198.19.255.255', false],
    ['1.1.1.1', false],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['fe80::1', true],
    ['febf::1', true],
    ['fec0::1', false],
    ['fc00::1', true],
    ['fdff::1', true],
    ['2001:db8::1', false],
    ['::', false],
    ['::ffff:10.0.0.1', true],
    ['::FFFF:192.168.1.1', true],
    ['::ffff:a00:1', true], // 10.0.0.1, written in hex
    ['::ffff:198.18.0.1', false],
    ['::ffff:8.8.8.8', false],
    ['localhost', false], // not an address: names are the RuleSet's business
    ['', false],
    ['10.0.0.256', false],
  ];
  for (const [ip, expected] of cases) assert.equal(isPrivateAddress(ip), expected, ip);
});

test('malformed rules are LINKMUX_ERR_CONFIG naming rules[i] and the field', () => {
  const ok: Rule = { match: { port: 443 }, action: 'direct' };
  const cases: Array<[Rule, RegExp]> = [
    [{ match: { domain: 'exa mple.org' }, action: 'direct' }, /^rules\[1\]\.match\.domain: /],
    [{ match: { domain: '' }, action: 'direct' }, /^rules\[1\]\.match\.domain: /],
    [{ match: { domain: 'a..b' }, action: 'direct' }, /^rules\[1\]\.match\.domain: /],
    // There are no wildcards: ".example.org" is the way to say it (the config schema agrees).
    [{ match: { domain: '*.example.org' }, action: 'direct' }, /^rules\[1\]\.match\.domain: /],
    [{ match: { cidr: '10.0.0.0/33' }, action: 'direct' }, /^rules\[1\]\.match\.cidr: /],
    [{ match: { cidr: '2001:db8::/129' }, action: 'direct' }, /^rules\[1\]\.match\.cidr: /],
    [{ match: { cidr: 'example.org/8' }, action: 'direct' }, /^rules\[1\]\.match\.cidr: /],
    [{ match: { cidr: '10.0.0.0/8.5' }, action: 'direct' }, /^rules\[1\]\.match\.cidr: /],
    [{ match: { cidr: '10.0.0.0/-1' }, action: 'direct' }, /^rules\[1\]\.match\.cidr: /],
    // An empty prefix is not /0: that would make the rule match every address.
    [{ match: { cidr: '10.0.0.0/' }, action: 'direct' }, /^rules\[1\]\.match\.cidr: /],
    [{ match: { cidr: '10.0.0.0/8/16' }, action: 'direct' }, /^rules\[1\]\.match\.cidr: /],
    [{ match: { cidr: '' }, action: 'direct' }, /^rules\[1\]\.match\.cidr: /],
    [{ match: { port: 0 }, action: 'direct' }, /^rules\[1\]\.match\.port: /],
    [{ match: { port: 65536 }, action: 'direct' }, /^rules\[1\]\.match\.port: /],
    [{ match: { port: '9000-8000' }, action: 'direct' }, /^rules\[1\]\.match\.port: /],
    [{ match: { port: 'https' }, action: 'direct' }, /^rules\[1\]\.match\.port: /],
    [{ match: { port: 443.5 }, action: 'direct' }, /^rules\[1\]\.match\.port: /],
    [{ match: {}, action: 'direct' }, /^rules\[1\]\.match: give at least one/],
    [{ match: { port: 443 }, action: 'proxy' as Rule['action'] }, /^rules\[1\]: action "proxy"/],
    [{ match: { port: 443 }, action: 'link:' }, /^rules\[1\]: action "link:"/],
    [{ match: { port: 443 }, action: 'policy:' }, /^rules\[1\]: action "policy:"/],
  ];
  for (const [bad, message] of cases) {
    assert.throws(
      () => new RuleSet([ok, bad]),
      (err: unknown) => {
        assert.ok(isLinkmuxError(err, 'LINKMUX_ERR_CONFIG'), `${JSON.stringify(bad)}: ${String(err)}`);
        assert.match(err.message, message, JSON.stringify(bad));
        return true;
      },
      JSON.stringify(bad),
    );
  }
  // The well-formed neighbours of the cases above are accepted.
  for (const good of [
    { domain: 'example.org.' },
    { domain: '_srv.example.org' },
    { cidr: '10.0.0.0/0' },
    { cidr: '::/0' },
    { cidr: '10.0.0.0/32' },
    { port: 65535 },
    { port: '1-1' },
  ]) {
    assert.doesNotThrow(() => new RuleSet([{ match: good, action: 'direct' }]), JSON.stringify(good));
  }
});
