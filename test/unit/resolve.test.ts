import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResolver, ipLiteral, pickAddress } from '../../src/net/resolve.js';
import { isLinkmuxError } from '../../src/util/errors.js';

const V4 = { address: '93.184.216.34', family: 4 };
const V4b = { address: '93.184.216.35', family: 4 };
const V6 = { address: '2606:2800:220:1::1', family: 6 };
const both = new Set<4 | 6>([4, 6]);
const only4 = new Set<4 | 6>([4]);
const only6 = new Set<4 | 6>([6]);

const pickCases: Array<[string, Array<{ address: string; family: number }>, Set<4 | 6>, string]> = [
  ['IPv4 preferred even when IPv6 comes first', [V6, V4, V4b], both, V4.address],
  ['first IPv4 in resolver order', [V4b, V4], both, V4b.address],
  ['name has only IPv6', [V6], both, V6.address],
  ['link has only IPv6', [V4, V6], only6, V6.address],
  ['link has only IPv4', [V6, V4], only4, V4.address],
];

for (const [name, candidates, families, want] of pickCases) {
  test(`pickAddress: ${name}`, () => {
    assert.equal(pickAddress('example.com', candidates, families).address, want);
  });
}

test('pickAddress: no address of a family the link has is a NO_ROUTE error naming the host', () => {
  assert.throws(
    () => pickAddress('v6only.example', [V6], only4),
    (err) =>
      isLinkmuxError(err, 'LINKMUX_ERR_NO_ROUTE') &&
      err.message.includes('v6only.example') &&
      err.message.includes('IPv6 only') &&
      err.message.includes('link has IPv4'),
  );
});

test('ipLiteral: IPv4, IPv6, bracketed IPv6; names are not literals', () => {
  assert.deepEqual(ipLiteral('10.0.0.1'), { address: '10.0.0.1', family: 4 });
  assert.deepEqual(ipLiteral('::1'), { address: '::1', family: 6 });
  assert.deepEqual(ipLiteral('[2001:db8::1]'), { address: '2001:db8::1', family: 6 });
  assert.equal(ipLiteral('example.com'), undefined);
  assert.equal(ipLiteral('[example.com]'), undefined);
});

test('resolver: literals skip the lookup', async () => {
  let lookups = 0;
  const resolve = createResolver(async () => {
    lookups++;
    return [];
  });
  assert.deepEqual(await resolve('127.0.0.1', both), { address: '127.0.0.1', family: 4 });
  assert.deepEqual(await resolve('[::1]', both), { address: '::1', family: 6 });
  assert.equal(lookups, 0);
});

test('resolver: picks from the lookup results', async () => {
  const resolve = createResolver(async (host) => {
    assert.equal(host, 'example.com');
    return [V6, V4];
  });
  assert.deepEqual(await resolve('example.com', both), { address: V4.address, family: 4 });
});

for (const [code, hint] of [
  ['ENOTFOUND', /no such host/],
  ['EAI_AGAIN', /did not answer/],
  ['ESERVFAIL', /DNS settings/],
] as const) {
  test(`resolver: ${code} becomes LINKMUX_ERR_DNS with a hint`, async () => {
    const resolve = createResolver(async () => {
      throw Object.assign(new Error(`getaddrinfo ${code} nosuch.example`), { code });
    });
    await assert.rejects(
      resolve('nosuch.example', both),
      (err) =>
        isLinkmuxError(err, 'LINKMUX_ERR_DNS') &&
        err.message.includes('nosuch.example') &&
        hint.test(err.message),
    );
  });
}

test('system resolver: localhost resolves without leaving the machine', async () => {
  const { systemResolver } = await import('../../src/net/resolve.js');
  const got = await systemResolver('localhost', both);
  assert.ok(got.address === '127.0.0.1' || got.address === '::1', got.address);
});
