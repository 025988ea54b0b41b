/**
 * LinkResolver on loopback, the answers: queries leave through a fake link's
 * UDP socket to a programmable DNS server on 127.0.0.1 — caching by TTL,
 * negative caching, one query for many callers, TCP after truncation, spoofed
 * replies ignored, address families, the system fallback, search domains.
 * (Deadlines and the burst of unresolvable names: dns-resolver-deadlines.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsCache } from '../../src/dns/cache.js';
import { FakeClock } from '../../src/util/clock.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { SPOOFED } from '../helpers/dns-responder.js';
import { BOTH, FakeLink, V4, V6, dnsFixture, timed } from '../helpers/dns-fixture.js';

/** Nothing here may hang CI. */
const T = { timeout: 10_000 };
const isDnsError = (what: RegExp) => (err: unknown) =>
  isLinkmuxError(err, 'LINKMUX_ERR_DNS') && what.test(err.message);

test(
  'resolves through the link; a second lookup is served from the cache; after the TTL it asks again',
  T,
  async () => {
    const clock = new FakeClock(1_000_000);
    const link = new FakeLink('live');
    const f = await dnsFixture({ links: [link], resolver: { clock, cache: new DnsCache({ clock }) } });
    try {
      f.server.set('files.test', { a: ['192.0.2.10'], ttl: 30 });

      assert.deepEqual(await f.resolver.lookup('files.test', V4), [{ address: '192.0.2.10', family: 4 }]);
      assert.equal(f.server.count('files.test'), 1);
      assert.equal(link.datagramsSent, 1, 'the query left through the link');

      assert.deepEqual(await f.resolver.resolve('FILES.test.', V4), { address: '192.0.2.10', family: 4 });
      assert.equal(f.server.count('files.test'), 1, 'served from the cache (any case, trailing dot)');
      assert.equal(f.resolver.stats().cacheHits, 1);

      clock.advance(29_999);
      await f.resolver.lookup('files.test', V4);
      assert.equal(f.server.count('files.test'), 1, 'still cached 1 ms before the TTL');

      f.server.set('files.test', { a: ['192.0.2.11'], ttl: 30 });
      clock.advance(1);
      assert.deepEqual(await f.resolver.lookup('files.test', V4), [{ address: '192.0.2.11', family: 4 }]);
      assert.equal(f.server.count('files.test'), 2, 'asked again once the TTL ran out');
      assert.equal(link.open.size, 0, 'every socket closed');
    } finally {
      await f.close();
    }
  },
);

test(
  'NXDOMAIN is cached for the SOA negative TTL, then asked again; the error says "no such host"',
  T,
  async () => {
    const clock = new FakeClock(1_000_000);
    const f = await dnsFixture({ resolver: { clock, cache: new DnsCache({ clock }) } });
    try {
      f.server.set('nope.test', { rcode: 'NXDOMAIN', negativeTtl: 45 });
      const noSuchHost = isDnsError(/cannot resolve nope\.test: no such host/);

      await assert.rejects(f.resolver.lookup('nope.test', V4), noSuchHost);
      assert.equal(f.server.count('nope.test'), 1);
      await assert.rejects(f.resolver.lookup('nope.test', V4), noSuchHost);
      assert.equal(f.server.count('nope.test'), 1, 'the negative answer is cached');

      clock.advance(44_999);
      await assert.rejects(f.resolver.lookup('nope.test', V4), noSuchHost);
      assert.equal(f.server.count('nope.test'), 1, 'still cached 1 ms before the SOA minimum');

      clock.advance(1);
      await assert.rejects(f.resolver.lookup('nope.test', V4), noSuchHost);
      assert.equal(f.server.count('nope.test'), 2, 'asked again after the negative TTL');
    } finally {
      await f.close();
    }
  },
);

test('NODATA for every family asked is a DNS error that says which family is missing', T, async () => {
  const f = await dnsFixture();
  try {
    f.server.set('empty.test', { negativeTtl: 60 });
    await assert.rejects(
      f.resolver.lookup('empty.test', BOTH),
      isDnsError(/cannot resolve empty\.test: it has no IPv4 or IPv6 address/),
    );
  } finally {
    await f.close();
  }
});

test('SERVFAIL from the only server is a DNS error within the deadline, not a hang', T, async () => {
  const f = await dnsFixture({ resolver: { perTryMs: 200, totalMs: 1_000 } });
  try {
    f.server.set('broken.test', { rcode: 'SERVFAIL' });
    const r = await timed(() => f.resolver.lookup('broken.test', V4));
    assert.equal(r.ok, false);
    assert.ok(isDnsError(/no nameserver answered/)(!r.ok && r.error), String(!r.ok && r.error));
    assert.ok(r.ms < 1_000 + 150, `took ${r.ms.toFixed(0)} ms`);
  } finally {
    await f.close();
  }
});

test('concurrent lookups of one name send one query', T, async () => {
  let release!: () => void;
  const hold = new Promise<void>((r) => (release = r));
  const f = await dnsFixture();
  try {
    f.server.set('busy.test', { a: ['192.0.2.20'], hold });
    const all = Array.from({ length: 20 }, () => f.resolver.lookup('busy.test', V4));
    await f.server.waitForQueries(1);
    // Every caller got past /etc/hosts with the first one (one shared read) and joined its query.
    await new Promise((r) => setImmediate(r));
    release();
    for (const got of await Promise.all(all)) assert.deepEqual(got, [{ address: '192.0.2.20', family: 4 }]);
    assert.equal(f.server.count('busy.test'), 1);
    assert.equal(f.resolver.stats().queries, 1);
  } finally {
    release();
    await f.close();
  }
});

test('a truncated UDP answer is asked again over TCP through the link’s connect', T, async () => {
  const link = new FakeLink('live');
  const f = await dnsFixture({ links: [link] });
  try {
    const many = Array.from({ length: 40 }, (_, i) => `192.0.2.${i + 1}`);
    f.server.set('big.test', { a: many, truncate: true });
    const got = await f.resolver.lookup('big.test', V4);
    assert.deepEqual(
      got.map((a) => a.address),
      many,
    );
    assert.equal(f.server.count('big.test', { transport: 'udp' }), 1);
    assert.equal(f.server.count('big.test', { transport: 'tcp' }), 1);
    assert.equal(link.connects, 1, 'TCP went through the link');
  } finally {
    await f.close();
  }
});

for (const spoof of ['wrong-id', 'wrong-port'] as const) {
  test(`a spoofed reply (${spoof}) that arrives first is ignored; the real answer wins`, T, async () => {
    const f = await dnsFixture();
    try {
      f.server.set('bank.test', { a: ['192.0.2.30'], spoofFirst: spoof });
      assert.deepEqual(await f.resolver.lookup('bank.test', V4), [{ address: '192.0.2.30', family: 4 }]);
      assert.notEqual((await f.resolver.resolve('bank.test', V4)).address, SPOOFED);
    } finally {
      await f.close();
    }
  });
}

test(
  'families: IPv6-only name with {4} → NO_ROUTE; with {4,6} → its IPv6; a dual name → IPv4 first',
  T,
  async () => {
    const f = await dnsFixture();
    try {
      f.server.set('v6only.test', { aaaa: ['2001:db8::40'] });
      f.server.set('dual.test', { a: ['192.0.2.41'], aaaa: ['2001:db8::41'] });

      await assert.rejects(
        f.resolver.lookup('v6only.test', V4),
        (err) => isLinkmuxError(err, 'LINKMUX_ERR_NO_ROUTE') && /IPv6 addresses only/.test(err.message),
      );
      assert.deepEqual(await f.resolver.lookup('v6only.test', BOTH), [
        { address: '2001:db8::40', family: 6 },
      ]);
      assert.deepEqual(await f.resolver.lookup('v6only.test', V6), [{ address: '2001:db8::40', family: 6 }]);

      const dual = await f.resolver.lookup('dual.test', BOTH);
      assert.deepEqual(dual[0], { address: '192.0.2.41', family: 4 });
      assert.deepEqual(await f.resolver.resolve('dual.test', BOTH), { address: '192.0.2.41', family: 4 });
      assert.deepEqual(await f.resolver.resolve('dual.test', V6), { address: '2001:db8::41', family: 6 });
    } finally {
      await f.close();
    }
  },
);

test('literals, localhost and /etc/hosts never reach the server', T, async () => {
  const f = await dnsFixture({ hostsText: '192.0.2.50 printer.lan\n2001:db8::50 printer.lan\n' });
  try {
    assert.deepEqual(await f.resolver.lookup('192.0.2.1', BOTH), [{ address: '192.0.2.1', family: 4 }]);
    assert.deepEqual(await f.resolver.lookup('[2001:db8::1]', BOTH), [{ address: '2001:db8::1', family: 6 }]);
    assert.deepEqual(await f.resolver.lookup('api.localhost', V4), [{ address: '127.0.0.1', family: 4 }]);
    assert.deepEqual(await f.resolver.lookup('Printer.LAN', BOTH), [
      { address: '192.0.2.50', family: 4 },
      { address: '2001:db8::50', family: 6 },
    ]);
    assert.equal(f.server.asked.length, 0);
  } finally {
    await f.close();
  }
});

test('no link can carry UDP: the injected system lookup answers, under totalMs', T, async () => {
  const relay = new FakeLink('relay', { udp: false });
  const asked: string[] = [];
  const f = await dnsFixture({
    links: [relay],
    resolver: {
      totalMs: 500,
      systemLookup: async (host) => {
        asked.push(host);
        return [
          { address: '2001:db8::60', family: 6 },
          { address: '192.0.2.60', family: 4 },
        ];
      },
    },
  });
  try {
    const r = await timed(() => f.resolver.lookup('sys.test', V4));
    assert.ok(r.ok, String(!r.ok && r.error));
    assert.deepEqual(r.value, [{ address: '192.0.2.60', family: 4 }]);
    assert.ok(r.ms < 500, `took ${r.ms.toFixed(0)} ms`);
    assert.deepEqual(asked, ['sys.test']);
    assert.equal(f.server.asked.length, 0, 'the nameserver was not asked');
    assert.equal(relay.udpOpened, 0);
  } finally {
    await f.close();
  }
});

test('no link can carry UDP and the system lookup hangs: LINKMUX_ERR_DNS by totalMs', T, async () => {
  const f = await dnsFixture({
    links: [new FakeLink('relay', { udp: false })],
    resolver: { totalMs: 300, systemLookup: () => new Promise(() => {}) },
  });
  try {
    const r = await timed(() => f.resolver.lookup('hang.test', V4));
    assert.ok(
      isDnsError(/system resolver did not answer in time/)(!r.ok && r.error),
      String(!r.ok && r.error),
    );
    assert.ok(r.ms >= 290 && r.ms < 300 + 150, `took ${r.ms.toFixed(0)} ms`);
  } finally {
    await f.close();
  }
});

test('search domains from resolv.conf: "files" resolves as files.corp.test', T, async () => {
  const f = await dnsFixture({
    resolver: { readSystem: async () => ({ nameservers: [], search: ['corp.test'], ndots: 1 }) },
  });
  try {
    f.server.set('files.corp.test', { a: ['192.0.2.70'] });
    assert.deepEqual(await f.resolver.lookup('files', V4), [{ address: '192.0.2.70', family: 4 }]);
    assert.equal(f.server.count('files.corp.test'), 1);
    assert.equal(f.server.count('files'), 0, 'found with the search domain, the bare name not asked');

    // A dotted name is asked as it is first; NXDOMAIN there → the search domain.
    f.server.set('db.eu.corp.test', { a: ['192.0.2.71'] });
    assert.deepEqual(await f.resolver.lookup('db.eu', V4), [{ address: '192.0.2.71', family: 4 }]);
    assert.deepEqual(
      f.server.asked.slice(-2).map((q) => q.name.toLowerCase()),
      ['db.eu', 'db.eu.corp.test'],
    );
  } finally {
    await f.close();
  }
});
