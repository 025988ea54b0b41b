/**
 * Issue 10, names: `linkmux up` on a testbed with DNS (files.test → the server;
 * the system resolver's queries follow up0, the main default route).
 *
 * (a) up0 silenced by a blackhole (link and carrier up), health targets reachable:
 *     once /status says up0 is offline, 20 new SOCKS5 connections by name
 *     (`--socks5-hostname`), 20 through the HTTP proxy, and a `linkmux get` by name
 *     started after the fault all succeed with the right bytes (sha256). Today the
 *     daemon resolves with the system resolver, through up0, so these fail.
 * (d) a name with only an AAAA record, and an IPv6 literal, on IPv4-only links:
 *     the SOCKS5 reply is 0x04 (host unreachable) and no link is blamed: all stay
 *     online.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import {
  createTestbed,
  FILES_NAME,
  removeLeftovers,
  V6_ONLY_NAME,
  type Testbed,
} from '../../src/testbed/testbed.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';
import {
  fetchThrough,
  runIn,
  sha256In,
  waitAllLinks,
  waitLinkState,
  type ProxyKind,
  blackholeAndWaitOffline,
  linkStatus,
} from '../helpers/netns-run.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SMALL = 's128k.bin';
const BIG = 'f4.bin';
const CONNECTIONS = 20;
const PARALLEL = 5;
let tb: Testbed | undefined;
let daemon: RunningDaemon | undefined;
const socksReply = fileURLToPath(new URL('../helpers/socks-reply-main.js', import.meta.url));

before(async () => {
  if (!netnsReady()) return;
  await removeLeftovers();
  tb = await createTestbed({
    links: 3,
    dns: true,
    files: [
      { name: SMALL, size: 128 * KiB },
      { name: BIG, size: 4 * MiB },
    ],
  });
  daemon = await startDaemon(
    tb,
    cliPath(),
    `
listen: { socks: "127.0.0.1:1080", http: "127.0.0.1:8080", control: "127.0.0.1:9190" }
health:
  interval: 1
  timeout: 0.5
  failThreshold: 3
  riseThreshold: 2
  targets: ["tcp://${tb.serverAddress}:80"]
`,
  );
});

after(async () => {
  try {
    await daemon?.stop();
  } finally {
    await tb?.destroy();
  }
});

/** `count` fetches of SMALL by name, PARALLEL at a time; one line per failure ('' = all intact). */
async function fetchMany(via: ProxyKind, count: number): Promise<string[]> {
  const bed = tb as Testbed;
  const d = daemon as RunningDaemon;
  const want = bed.files[SMALL]?.sha256;
  const failures: string[] = [];
  for (let start = 0; start < count; start += PARALLEL) {
    const batch = Array.from({ length: Math.min(PARALLEL, count - start) }, async (_, j) => {
      const i = start + j;
      const r = await fetchThrough(
        bed,
        d,
        via,
        bed.url(SMALL, 'http', FILES_NAME),
        `/tmp/${bed.prefix}${via}-${i}`,
      );
      if (r.code !== 0) failures.push(`#${i}: curl exit ${r.code} after ${Math.round(r.ms)} ms: ${r.stderr}`);
      else if (r.sha256 !== want) failures.push(`#${i}: sha256 ${r.sha256}, want ${want}`);
    });
    await Promise.all(batch);
  }
  return failures;
}

test('names resolve through the proxy while every link is up', { skip: skipReason() }, async () => {
  await waitAllLinks(daemon as RunningDaemon, 'online', 8_000);
  assert.deepEqual(await fetchMany('socks5-hostname', 3), []);
  assert.deepEqual(await fetchMany('http', 3), []);
});

test(
  'up0 (the main route) blackholed: once it is offline, 20 + 20 connections by name and a linkmux get succeed',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const d = daemon as RunningDaemon;
    await waitAllLinks(d, 'online', 8_000);
    try {
      const stateOf = async () => (await linkStatus(d, 'up0'))?.state;
      await blackholeAndWaitOffline(bed, 0, stateOf, { withinMs: 5_000, log: () => d.log() });
      bed.resetDnsQueries();
      const socks = await fetchMany('socks5-hostname', CONNECTIONS);
      const http = await fetchMany('http', CONNECTIONS);

      const out = `/tmp/${bed.prefix}get-by-name.bin`;
      const get = await runIn(
        bed,
        bed.clientNs,
        process.execPath,
        [cliPath(), 'get', '--quiet', '--overwrite', '-o', out, bed.url(BIG, 'http', FILES_NAME)],
        60_000,
      );
      const getSha = get.code === 0 ? await sha256In(bed, bed.clientNs, out) : '';
      await runIn(bed, bed.clientNs, 'rm', ['-f', out], 5_000);

      const report = [
        `socks5-hostname: ${CONNECTIONS - socks.length}/${CONNECTIONS} ok`,
        ...socks.slice(0, 3),
        `http proxy: ${CONNECTIONS - http.length}/${CONNECTIONS} ok`,
        ...http.slice(0, 3),
        `linkmux get: exit ${get.code}${get.timedOut ? ' (killed at 60 s)' : ''} ${get.stderr.trim().slice(-300)}`,
        `DNS queries seen by the server during the fault: ${bed.dnsQueries().length}`,
      ].join('\n');
      assert.equal(socks.length, 0, report);
      assert.equal(http.length, 0, report);
      assert.equal(get.code, 0, report);
      assert.equal(getSha, bed.files[BIG]?.sha256, `linkmux get intact\n${report}`);
    } finally {
      await bed.unblackhole(0);
    }
    await waitLinkState(d, 'up0', 'online', 8_000);
  },
);

async function replyFor(host: string): Promise<string> {
  const bed = tb as Testbed;
  const [h, p] = (daemon as RunningDaemon).socks.split(':') as [string, string];
  const r = await runIn(bed, bed.clientNs, process.execPath, [socksReply, h, p, host, '80'], 20_000);
  return r.code === 0 ? r.stdout.trim() : `no reply (exit ${r.code}): ${r.stderr.trim()}`;
}

test(
  'IPv6-only destinations on IPv4-only links: SOCKS5 reply 0x04, every link still online',
  { skip: skipReason() },
  async () => {
    const bed = tb as Testbed;
    const d = daemon as RunningDaemon;
    await waitAllLinks(d, 'online', 8_000);
    const replies = {
      [`${V6_ONLY_NAME} (AAAA only)`]: await replyFor(V6_ONLY_NAME),
      '[2001:db8::1]': await replyFor('2001:db8::1'),
    };
    const curl = await runIn(
      bed,
      bed.clientNs,
      'curl',
      ['-sS', '--max-time', '10', '--socks5-hostname', d.socks, `http://${V6_ONLY_NAME}/`],
      15_000,
    );
    // A few health rounds later, nobody blamed a link for the destination's family.
    await new Promise((r) => setTimeout(r, 3_000));
    const states = (await d.status()).links.map((l) => `${l.id}:${l.state}`);
    assert.deepEqual(
      { replies, states },
      {
        replies: { [`${V6_ONLY_NAME} (AAAA only)`]: 'rep=0x04', '[2001:db8::1]': 'rep=0x04' },
        states: bed.uplinks.map((u) => `${u.dev}:online`),
      },
    );
    assert.match(curl.stderr, /unreachable|\(4\)/i, `curl reports host unreachable: ${curl.stderr}`);
  },
);
