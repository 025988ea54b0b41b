/**
 * Link-local addresses: they cannot reach the internet and cannot be a link's
 * source, so discovery drops them. A module of its own so that both interface
 * discovery and policy routing use it without importing each other.
 */

/** fe80::/10 and 169.254.0.0/16. */
export function isLinkLocal(address: string): boolean {
  const a = address.toLowerCase();
  return /^fe[89ab][0-9a-f]:/.test(a) || a.startsWith('169.254.');
}
