import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  certificateFingerprint,
  defaultStateDir,
  loadOrCreateIdentity,
} from '../../src/relay/node-identity.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { createLogger } from '../../src/util/logger.js';

async function withTmp(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'linkmux-identity-'));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

/** Asserts a LINKMUX_ERR_CONFIG that names `file` and points at --rotate. */
function configErrorNaming(file: string) {
  return (err: unknown) => {
    assert.ok(isLinkmuxError(err, 'LINKMUX_ERR_CONFIG'), `expected LINKMUX_ERR_CONFIG, got ${String(err)}`);
    assert.match(err.message, new RegExp(file.replace('.', '\\.')));
    assert.match(err.message, /linkmux node --init --rotate/);
    return true;
  };
}

test('first load creates cert, key and secret with private modes', async () => {
  await withTmp(async (root) => {
    const dir = join(root, 'nested', 'state');
    const now = new Date('2030-06-01T00:00:00Z');
    const id = await loadOrCreateIdentity(dir, { name: 'box1', now });

    assert.equal(id.created, true);
    assert.equal(id.dir, dir);
    assert.match(id.fingerprint, /^[0-9a-f]{64}$/);
    assert.match(id.secret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(id.secret, 'base64url').length, 32);

    assert.equal(await mode(dir), 0o700);
    assert.equal(await mode(join(dir, 'node-key.pem')), 0o600);
    assert.equal(await mode(join(dir, 'node-secret')), 0o600);
    assert.equal(await readFile(join(dir, 'node-cert.pem'), 'utf8'), id.certPem);
    assert.equal(await readFile(join(dir, 'node-key.pem'), 'utf8'), id.keyPem);
    assert.equal((await readFile(join(dir, 'node-secret'), 'utf8')).trim(), id.secret);

    const cert = new X509Certificate(id.certPem);
    assert.equal(cert.subject, 'CN=linkmux-node box1');
    assert.equal(cert.issuer, cert.subject, 'self-signed');
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(cert.ca, false);
    assert.equal(new Date(cert.validTo).getUTCFullYear(), 2050);
    assert.ok(new Date(cert.validFrom) <= now);
    assert.equal(id.fingerprint, cert.fingerprint256.replaceAll(':', '').toLowerCase());
    assert.equal(certificateFingerprint(id.certPem), id.fingerprint);
  });
});

test('a second load returns the same identity without regenerating it', async () => {
  await withTmp(async (dir) => {
    const first = await loadOrCreateIdentity(dir, { name: 'a' });
    const again = await loadOrCreateIdentity(dir, { name: 'ignored' });
    assert.equal(again.created, false);
    assert.deepEqual({ ...again, created: true }, first);
  });
});

test('rotate replaces certificate, key and secret', async () => {
  await withTmp(async (dir) => {
    const old = await loadOrCreateIdentity(dir, { name: 'a' });
    const rotated = await loadOrCreateIdentity(dir, { name: 'a', rotate: true });
    assert.equal(rotated.created, true);
    assert.notEqual(rotated.fingerprint, old.fingerprint);
    assert.notEqual(rotated.secret, old.secret);
    assert.notEqual(rotated.keyPem, old.keyPem);
    const reloaded = await loadOrCreateIdentity(dir);
    assert.equal(reloaded.fingerprint, rotated.fingerprint);
    assert.equal(reloaded.secret, rotated.secret);
  });
});

for (const file of ['node-cert.pem', 'node-key.pem', 'node-secret']) {
  test(`a missing ${file} is refused, naming it, and --rotate recovers`, async () => {
    await withTmp(async (dir) => {
      await loadOrCreateIdentity(dir);
      await unlink(join(dir, file));
      await assert.rejects(loadOrCreateIdentity(dir), configErrorNaming(file));
      const fresh = await loadOrCreateIdentity(dir, { rotate: true });
      assert.equal(fresh.created, true);
      assert.equal((await loadOrCreateIdentity(dir)).fingerprint, fresh.fingerprint);
    });
  });
}

test('corrupt files are refused with the file named', async () => {
  await withTmp(async (dir) => {
    const id = await loadOrCreateIdentity(dir);
    const cases: [string, string][] = [
      ['node-cert.pem', '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n'],
      ['node-cert.pem', id.certPem.slice(0, 200)],
      ['node-key.pem', 'garbage'],
      ['node-secret', 'too-short\n'],
    ];
    for (const [file, text] of cases) {
      const path = join(dir, file);
      const good = await readFile(path, 'utf8');
      await writeFile(path, text);
      await assert.rejects(loadOrCreateIdentity(dir), configErrorNaming(file));
      await writeFile(path, good);
    }
    assert.equal((await loadOrCreateIdentity(dir)).fingerprint, id.fingerprint);
  });
});

test('a key from another identity is refused as not matching the certificate', async () => {
  await withTmp(async (root) => {
    const a = join(root, 'a');
    const b = join(root, 'b');
    await loadOrCreateIdentity(a);
    const other = await loadOrCreateIdentity(b);
    await writeFile(join(a, 'node-key.pem'), other.keyPem);
    await assert.rejects(loadOrCreateIdentity(a), (err: unknown) => {
      configErrorNaming('node-key.pem')(err);
      assert.match((err as Error).message, /does not belong to the certificate/);
      return true;
    });
  });
});

test('group- or world-readable key and secret only warn, and never print the secret', async () => {
  await withTmp(async (dir) => {
    const id = await loadOrCreateIdentity(dir);
    const lines: string[] = [];
    const logger = createLogger('debug', (l) => lines.push(l));

    await loadOrCreateIdentity(dir, { logger });
    assert.deepEqual(lines, [], 'no warning for 0600 files');

    await chmod(join(dir, 'node-key.pem'), 0o640);
    await chmod(join(dir, 'node-secret'), 0o644);
    const again = await loadOrCreateIdentity(dir, { logger });
    assert.equal(again.fingerprint, id.fingerprint);
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /warn: .*node-key\.pem .*0640.*chmod 600/);
    assert.match(lines[1] ?? '', /warn: .*node-secret .*0644.*chmod 600/);
    assert.ok(!lines.join('').includes(id.secret));
  });
});

test('defaultStateDir: env override, root, XDG, home', () => {
  const home = { HOME: '/home/u' };
  assert.equal(defaultStateDir({ ...home, LINKMUX_STATE_DIR: '/srv/lm' }, 0), '/srv/lm');
  assert.equal(defaultStateDir({ ...home, XDG_STATE_HOME: '/x' }, 0), '/var/lib/linkmux');
  assert.equal(defaultStateDir({ ...home, XDG_STATE_HOME: '/x/state' }, 1000), '/x/state/linkmux');
  assert.equal(
    defaultStateDir({ ...home, XDG_STATE_HOME: 'relative' }, 1000),
    '/home/u/.local/state/linkmux',
  );
  assert.equal(defaultStateDir(home, 1000), '/home/u/.local/state/linkmux');
});

test('certificateFingerprint refuses a non-certificate with LINKMUX_ERR_CONFIG', () => {
  assert.throws(
    () => certificateFingerprint('nope'),
    (err: unknown) => isLinkmuxError(err, 'LINKMUX_ERR_CONFIG'),
  );
});

test('the generated cert and key serve TLS and the peer sees the pinned fingerprint', async () => {
  await withTmp(async (dir) => {
    const id = await loadOrCreateIdentity(dir, { name: 'tls' });
    const server = createServer({ cert: id.certPem, key: id.keyPem }, (s) => s.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    let socket: TLSSocket | undefined;
    try {
      const { port } = server.address() as AddressInfo;
      socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      await once(socket, 'secureConnect');
      const peer = socket.getPeerX509Certificate();
      assert.ok(peer, 'the server presented a certificate');
      assert.equal(peer.fingerprint256.replaceAll(':', '').toLowerCase(), id.fingerprint);
      const [data] = (await once(socket, 'data')) as [Buffer];
      assert.equal(data.toString(), 'ok');
    } finally {
      socket?.destroy();
      server.close();
    }
  });
});
