/** `--checksum ALGO=HEX`: parsing, and verification of a finished file by streaming it once. */
import { createHash, getHashes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { LinkmuxError } from '../util/errors.js';

export interface Checksum {
  /** Node's name for the algorithm: sha256, sha512, sha1, md5 … */
  algorithm: string;
  hex: string;
}

const ALIASES: Record<string, string> = {
  'sha-256': 'sha256',
  'sha-512': 'sha512',
  'sha-1': 'sha1',
  'sha-384': 'sha384',
};

export function parseChecksum(text: string): Checksum {
  const m = /^([A-Za-z0-9-]+)=([0-9a-fA-F]+)$/.exec(text.trim());
  const usage = 'use --checksum ALGO=HEX, e.g. --checksum sha-256=9f86d08…';
  if (!m) throw new LinkmuxError('LINKMUX_ERR_USAGE', `malformed checksum "${text}": ${usage}`);
  const name = (m[1] ?? '').toLowerCase();
  const algorithm = ALIASES[name] ?? name;
  if (!getHashes().includes(algorithm)) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `unknown checksum algorithm "${m[1]}": use sha-256, sha-512, sha-1 or md5`,
    );
  }
  const hex = (m[2] ?? '').toLowerCase();
  const expectedLength = createHash(algorithm).digest('hex').length;
  if (hex.length !== expectedLength) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `a ${m[1]} checksum has ${expectedLength} hex digits, "${hex.slice(0, 16)}…" has ${hex.length}: ${usage}`,
    );
  }
  return { algorithm, hex };
}

export async function hashFile(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Returns "algo=hex" when the file matches; throws LINKMUX_ERR_CHECKSUM otherwise. */
export async function verifyChecksum(path: string, expected: Checksum): Promise<string> {
  const actual = await hashFile(path, expected.algorithm);
  if (actual !== expected.hex) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CHECKSUM',
      `checksum mismatch: expected ${expected.algorithm}=${expected.hex}, got ${actual}; ` +
        `the data is kept in ${path} for inspection; check the checksum, or rerun with --overwrite to download again`,
    );
  }
  return `${expected.algorithm}=${actual}`;
}
