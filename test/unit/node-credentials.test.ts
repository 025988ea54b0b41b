// The SOCKS5 credentials of a linkmux node: "linkmux" (the node picks) and
// "linkmux/<link>" round-trip through nodeUsername/parseNodeUsername, anything
// else is not a node username; the secret checker takes only the exact bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NODE_USERNAME,
  nodeUsername,
  parseNodeUsername,
  secretChecker,
} from '../../src/links/node-credentials.js';
import { newTokenSecret } from '../../src/links/join-token.js';

test('nodeUsername: "linkmux" without a link, "linkmux/<link>" with one', () => {
  assert.equal(NODE_USERNAME, 'linkmux');
  assert.equal(nodeUsername(), 'linkmux');
  assert.equal(nodeUsername(undefined), 'linkmux');
  assert.equal(nodeUsername('eth0'), 'linkmux/eth0');
});

test('parseNodeUsername(nodeUsername(x)) gives x back', () => {
  for (const link of [undefined, 'eth0', 'wwan0', 'enp0s31f6', 'usb0.100', 'a', 'x/y', 'linkmux']) {
    const name = nodeUsername(link);
    assert.deepEqual(parseNodeUsername(name), { link }, name);
  }
});

test('parseNodeUsername: anything else is not a node username', () => {
  for (const username of [
    '',
    'linkmux/',
    'other',
    'Linkmux',
    'LINKMUX/eth0',
    'linkmux ',
    ' linkmux',
    'linkmuxx',
    'linkmux-eth0',
    '/eth0',
    'xlinkmux/eth0',
  ]) {
    assert.equal(parseNodeUsername(username), undefined, JSON.stringify(username));
  }
});

test('secretChecker accepts only the exact secret', () => {
  const secret = newTokenSecret();
  const ok = secretChecker(secret);
  assert.equal(ok(Buffer.from(secret, 'utf8')), true);
  assert.equal(ok(Buffer.from(secret, 'utf8')), true, 'a checker is reusable');
  const wrong = [
    '',
    secret.slice(0, -1),
    secret + 'x',
    ' ' + secret,
    secret.toUpperCase() === secret ? secret.toLowerCase() : secret.toUpperCase(),
    secret.slice(1) + secret[0],
    newTokenSecret(),
  ];
  for (const w of wrong) assert.equal(ok(Buffer.from(w, 'utf8')), false, JSON.stringify(w));
  // The password is compared as bytes: the base64url text, not the 32 bytes it encodes.
  assert.equal(ok(Buffer.from(secret, 'base64url')), false);
  // One checker per secret: another secret's checker refuses this one.
  assert.equal(secretChecker(newTokenSecret())(Buffer.from(secret, 'utf8')), false);
});

test('secretChecker compares UTF-8 bytes, so non-ASCII secrets work', () => {
  const ok = secretChecker('pässwörd');
  assert.equal(ok(Buffer.from('pässwörd', 'utf8')), true);
  assert.equal(ok(Buffer.from('pässwörd', 'latin1')), false);
  assert.equal(ok(Buffer.from('passwort', 'utf8')), false);
});
