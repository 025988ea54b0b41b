/**
 * The network address of an address and prefix length, in canonical text
 * ("198.18.1.2", 24 → "198.18.1.0"; "2001:db8:2::2", 64 → "2001:db8:2::").
 * Pure; throws on text that is not an IP address.
 */
import net from 'node:net';

/** The network address of `address/prefixLength`, in canonical text. */
export function networkOf(address: string, prefixLength: number): string {
  if (net.isIP(address) === 4) {
    const n = address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    const masked = n & maskOf(32, prefixLength);
    return [24n, 16n, 8n, 0n].map((s) => String((masked >> s) & 0xffn)).join('.');
  }
  const masked = ipv6ToBigInt(address) & maskOf(128, prefixLength);
  const hextets = Array.from({ length: 8 }, (_, i) =>
    ((masked >> BigInt(112 - 16 * i)) & 0xffffn).toString(16),
  );
  return new URL(`http://[${hextets.join(':')}]/`).hostname.slice(1, -1);
}

function maskOf(bits: number, prefixLength: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return (all << BigInt(bits - prefixLength)) & all;
}

function ipv6ToBigInt(address: string): bigint {
  // The URL parser expands nothing, but validates and canonicalises; expand "::" ourselves.
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const middle = Array<string>(8 - left.length - right.length).fill('0');
  const parts = tail === undefined ? left : [...left, ...middle, ...right];
  return parts.reduce((acc, h) => (acc << 16n) | BigInt(parseInt(h, 16)), 0n);
}
