/**
 * The network address of an address and prefix length, in canonical text
 * ("198.18.1.2", 24 → "198.18.1.0"; "2001:db8:2::2", 64 → "2001:db8:2::").
 * Pure; throws on text that is not an IP address (callers pass addresses read
 * from the kernel). The arithmetic is the address module's (ipaddr.js).
 */
import { LinkmuxError } from '../util/errors.js';
import { networkAddress } from './address.js';

/** The network address of `address/prefixLength`, in canonical text. */
export function networkOf(address: string, prefixLength: number): string {
  const network = networkAddress(address, prefixLength);
  if (network === undefined) {
    throw new LinkmuxError('LINKMUX_ERR_USAGE', `${address}/${prefixLength} is not an IP network`);
  }
  return network;
}
