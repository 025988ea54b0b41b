/**
 * A throw-away self-signed certificate for an IP address (its own CA, so
 * clients trust it with --ca / --cacert): used by the testbed's HTTPS server and
 * by tests. Runs the same openssl command the testbed plans (certCommands).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ExecRunner, type Runner } from '../util/runner.js';
import { certCommands } from './topology.js';

export async function makeSelfSignedCert(
  dir: string,
  address = '127.0.0.1',
  runner: Runner = new ExecRunner(),
): Promise<{ key: string; cert: string; certPath: string }> {
  for (const c of certCommands(dir, address)) await runner.run(c.cmd, c.args);
  const certPath = join(dir, 'cert.pem');
  return {
    key: await readFile(join(dir, 'key.pem'), 'utf8'),
    cert: await readFile(certPath, 'utf8'),
    certPath,
  };
}
