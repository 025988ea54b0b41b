/**
 * A throw-away self-signed certificate for an IP address (its own CA, so
 * clients trust it with --ca / --cacert), valid two days: used by the
 * testbed's HTTPS server and by tests. Made in-process (util/x509.ts), so the
 * testbed needs no openssl.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSelfSigned } from '../util/x509.js';

const DAY_MS = 24 * 3600 * 1000;

/** Writes key.pem (0600) and cert.pem into `dir` and returns them. */
export async function makeSelfSignedCert(
  dir: string,
  address = '127.0.0.1',
): Promise<{ key: string; cert: string; certPath: string; keyPath: string }> {
  const now = Date.now();
  const { certPem, keyPem } = await createSelfSigned({
    commonName: address,
    ipAddresses: [address],
    ca: true,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 2 * DAY_MS),
  });
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  await writeFile(keyPath, keyPem, { mode: 0o600 });
  await writeFile(certPath, certPem);
  return { key: keyPem, cert: certPem, certPath, keyPath };
}
