/**
 * Issue 10, names and nodes: a node link must receive the NAME, not an address
 * the client resolved (the client's resolver may be the broken one, and the node
 * may see a different, closer answer). Testbed: the client with up0 and a node
 * machine with up1, on one LAN, testbed DNS on. The node runs `linkmux node` with
 * `log: debug`, where its SOCKS5 server logs each relayed CONNECT as
 * "socks5 PEER -> DEST via LINK", DEST as received. The client joins the node and
 * weighs it far above up0, and requests http://files.test/… through its SOCKS5
 * with the name unresolved (--socks5-hostname). The node's health probes are
 * relayed too (to the target's address); the requests are told apart by their
 * "closed: … B down" lines carrying the file.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { createTestbed, FILES_NAME, removeLeftovers, type Testbed } from '../../src/testbed/testbed.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';
import { fetchThrough, waitAllLinks } from '../helpers/netns-run.js';

const FILE = 's256k.bin';
const REQUESTS = 4;
const SIZE = 256 * 1024;
let tb: Testbed | undefined;
let node: RunningDaemon | undefined;
let client: RunningDaemon | undefined;

const healthYaml = (server: string) => `
health:
  interval: 1
  timeout: 0.5
  failThreshold: 3
  riseThreshold: 2
  targets: ["tcp://${server}:80"]
`;

before(async () => {
  if (!netnsReady()) return;
  await removeLeftovers();
  tb = await createTestbed({
    links: 2,
    machines: [0, 1],
    dns: true,
    files: [{ name: FILE, size: SIZE }],
  });
  const m = tb.machines[1]!;
  const flags = ['--listen', `${m.lanAddress}:7300`, '--state-dir', `/tmp/${tb.prefix}node1`, '--name', 'n1'];
  const init = await tb.exec(m.ns, process.execPath, [
    cliPath(),
    'node',
    '--init',
    ...flags,
    '--link',
    'up1',
  ]);
  const token = init.stdout.trim();
  node = await startDaemon(
    tb,
    cliPath(),
    `listen: { control: "127.0.0.1:9190" }\n${healthYaml(tb.serverAddress)}log: debug\n`,
    { ns: m.ns, args: ['node', ...flags, '--link', 'up1'] },
  );
  client = await startDaemon(
    tb,
    cliPath(),
    `
listen: { socks: "127.0.0.1:1080", http: "127.0.0.1:8080", control: "127.0.0.1:9190" }
links: [up0]
join: ["${token}"]
policy: weighted
weights: { up0: 0.001 }
${healthYaml(tb.serverAddress)}`,
  );
});

after(async () => {
  try {
    await client?.stop();
    await node?.stop();
  } finally {
    if (tb) await rm(`/tmp/${tb.prefix}node1`, { recursive: true, force: true });
    await tb?.destroy();
  }
});

test('the node is asked for files.test by name, not for an address', { skip: skipReason() }, async () => {
  const bed = tb as Testbed;
  const c = client as RunningDaemon;
  await waitAllLinks(c, 'online', 10_000);
  const logBefore = (node as RunningDaemon).log().length;
  for (let i = 0; i < REQUESTS; i++) {
    const r = await fetchThrough(
      bed,
      c,
      'socks5-hostname',
      bed.url(FILE, 'http', FILES_NAME),
      `/tmp/${bed.prefix}n-${i}`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.sha256, bed.files[FILE]?.sha256, `request ${i} intact`);
  }
  const relayed = (node as RunningDaemon)
    .log()
    .slice(logBefore)
    .split('\n')
    .map((l) => /socks5 \S+ -> (\S+) closed: \d+ B up, (\d+) B down/.exec(l))
    .filter((m) => m !== null && Number(m[2]) >= SIZE)
    .map((m) => m?.[1] ?? '');
  assert.ok(relayed.length > 0, `the node relayed some of the ${REQUESTS} requests (weights favour it)`);
  assert.deepEqual(
    [...new Set(relayed)],
    [`${FILES_NAME}:80`],
    `destinations the node was asked for: ${relayed.join(' ')}`,
  );
});
