/**
 * Loopback fixtures for integration tests: links bound to distinct 127.0.0.x
 * source addresses (so the server can tell them apart), temp dirs, random files.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalLink } from '../../src/links/local-link.js';
import { silentLogger } from '../../src/util/logger.js';

/** n links on loopback, bound by source address 127.0.0.2, .3, … */
export function loopbackLinks(n: number): LocalLink[] {
  return Array.from(
    { length: n },
    (_, i) =>
      new LocalLink(
        {
          name: `lo${i}`,
          up: true,
          loopback: true,
          addresses: [{ address: `127.0.0.${i + 2}`, family: 4, prefixLength: 8 }],
        },
        { mode: 'address', logger: silentLogger },
      ),
  );
}

export async function tempDir(prefix = 'lmx-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function randomFile(dir: string, name: string, size: number): Promise<string> {
  const data = randomBytes(size);
  await writeFile(join(dir, name), data);
  return sha256(data);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return sha256(await readFile(path));
}

/** `p`, or a failure naming `what` if it has not settled within `ms`: a stage that hangs says which one it was. */
export function within<T>(p: Promise<T>, what: string, ms = 2_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
