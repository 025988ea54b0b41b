import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { formatAge, registerStatus, renderStatus } from '../../src/cli/status-command.js';
import { threeLinkStatus } from '../helpers/daemon-status.js';

test('renderStatus: header lines and one aligned row per link, online, degraded and offline', () => {
  const expected = [
    'linkmux 0.1.0 up 1h02m, policy adaptive, connections 6 active / 1234 total / 3 failed',
    'listening on socks 127.0.0.1:1080, http 127.0.0.1:8080, control /run/linkmux.sock',
    '',
    'LINK  STATE                 RTT     RATE IN    RATE OUT  CONNS  BYTES IN  BYTES OUT     CAPACITY  LAST FAILURE',
    'up0   online for 1h01m    12 ms  8.0 Mbit/s  1.0 Mbit/s      5   5.0 GiB  117.7 MiB   8.0 Mbit/s  -',
    'up1   degraded for 43s   640 ms  2.0 Mbit/s    4 kbit/s      1   2.0 KiB      512 B            -  slow probe (640 ms), 43s ago',
    'up2   offline for 7m03s       -     0 bit/s     0 bit/s      0       0 B        0 B  10.0 Mbit/s  probe timeout after 1000 ms, 5s ago',
    '',
  ].join('\n');
  assert.equal(renderStatus(threeLinkStatus()), expected);
});

test('renderStatus: ages come from the daemon clock, so the same status always renders the same text', () => {
  const s = threeLinkStatus();
  assert.equal(renderStatus(s), renderStatus(structuredClone(s)));
});

test('renderStatus: no links and no listeners still render, without a table', () => {
  const s = { ...threeLinkStatus(), links: [], listen: {}, uptimeSeconds: 5 };
  assert.equal(
    renderStatus(s),
    'linkmux 0.1.0 up 5s, policy adaptive, connections 6 active / 1234 total / 3 failed\nlistening on -\n\nno links\n',
  );
});

test('renderStatus: an unparsable time drops the age instead of printing NaN', () => {
  const s = threeLinkStatus();
  const up1 = s.links[1];
  assert.ok(up1?.lastFailure);
  up1.since = 'not a time';
  up1.lastFailure.at = 'never';
  const row = renderStatus(s)
    .split('\n')
    .find((l) => l.startsWith('up1'));
  assert.ok(row);
  assert.match(row, /^up1 +degraded +640 ms .* slow probe \(640 ms\)$/);
  assert.doesNotMatch(renderStatus(s), /NaN/);
});

test('renderStatus: sub-10 ms RTTs keep a decimal', () => {
  const s = threeLinkStatus();
  s.links[0]!.rttMs = 0.27;
  assert.match(renderStatus(s), /^up0 +online for 1h01m +0\.3 ms /m);
});

test('formatAge: seconds, minutes, hours, days; negative is 0', () => {
  const cases: [number, string][] = [
    [-3, '0s'],
    [0, '0s'],
    [59.9, '59s'],
    [60, '1m00s'],
    [3599, '59m59s'],
    [3600, '1h00m'],
    [86399, '23h59m'],
    [86400, '1d00h'],
    [3 * 86400 + 4 * 3600 + 59, '3d04h'],
  ];
  for (const [s, want] of cases) assert.equal(formatAge(s), want, `formatAge(${s})`);
});

test('renderStatus: a node line when this machine lends its uplinks', () => {
  const s = {
    ...threeLinkStatus(),
    node: {
      listen: ['192.168.1.20:7300'],
      fingerprint: 'ab'.repeat(32),
      lends: ['up0', 'up1'],
      relayed: { active: 2, total: 40, failed: 1 },
      tlsFailures: 3,
      authFailures: 4,
    },
  };
  assert.equal(
    renderStatus(s).split('\n')[2],
    'node on 192.168.1.20:7300, lends up0, up1, certificate sha256:abababababababab…; ' +
      'relayed 2 active / 40 total / 1 failed; refused 4 at authentication, 3 at TLS',
  );
});

test('renderStatus: unverified links are in the table and explained once under it', () => {
  const s = threeLinkStatus();
  const reason = 'every link failed its probes to tcp://1.1.1.1:443: set health.targets';
  s.links = s.links.map((l) =>
    l.id === 'up2' ? l : { ...l, state: 'unverified' as const, stateReason: reason },
  );
  const text = renderStatus(s);
  assert.match(text, /^up0\s+unverified for/m);
  assert.match(text, /^up1\s+unverified for/m);
  const notes = text.split('\n').filter((l) => l.includes('unverified (in service)'));
  assert.deepEqual(notes, [`up0, up1 unverified (in service): ${reason}`]);
});

test('status --help names every daemon it reads: up, node and gateway', () => {
  const program = new Command('linkmux').exitOverride();
  let help = '';
  program.configureOutput({ writeOut: (s) => (help += s) });
  registerStatus(program);
  assert.throws(() => program.parse(['status', '--help'], { from: 'user' }), {
    code: 'commander.helpDisplayed',
  });
  const description = help.split('\n').slice(0, 4).join(' ');
  for (const daemon of ['linkmux up', 'linkmux node', 'linkmux gateway']) {
    assert.ok(description.includes(daemon), `the description names ${daemon}:\n${help}`);
  }
  assert.match(
    help,
    /It reads any running linkmux daemon: `linkmux up`, `linkmux node` or `linkmux gateway`/,
  );
});
