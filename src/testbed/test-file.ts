/**
 * Deterministic pseudo-random test files. The same (size, seed) always gives the
 * same bytes on every machine, so a test can compare sha-256 sums instead of
 * shipping fixtures. The bytes are AES-128-CTR keystream (key and IV derived from
 * the seed), which runs at disk speed: 256 MiB takes well under a second of CPU.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';

const BLOCK = 1024 * 1024;

/** Writes `size` deterministic bytes to dir/name and returns their sha-256 (hex). */
export async function makeTestFile(
  dir: string,
  name: string,
  size: number,
  seed: number | string = 1,
): Promise<string> {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`makeTestFile: bad size ${size}`);
  await mkdir(dir, { recursive: true });
  const keyMaterial = createHash('sha256')
    .update(`linkmux-test-file:${String(seed)}`)
    .digest();
  const cipher = createCipheriv('aes-128-ctr', keyMaterial.subarray(0, 16), keyMaterial.subarray(16, 32));
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(BLOCK);
  const fh = await open(path.join(dir, name), 'w');
  try {
    for (let left = size; left > 0; left -= BLOCK) {
      const block = cipher.update(left >= BLOCK ? zeros : zeros.subarray(0, left));
      hash.update(block);
      await fh.write(block);
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}
