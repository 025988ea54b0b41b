/**
 * Every address of every interface of this host, kept fresh enough to judge
 * "is this destination the host itself?".
 *
 * Re-read policy (chosen over netlink monitoring, which Node lacks): the list
 * is read with os.networkInterfaces() (a getifaddrs() call, microseconds) at
 * most once per `maxAgeMs` (default 2 s) when asked, AND again at once when an
 * address is about to be let through while the list is older than
 * `recheckMs` (default 250 ms). So an address added by DHCP a moment ago is
 * caught on its first use, and a flood of checks costs one read per interval.
 *
 * Caveat: getifaddrs (through libuv) skips interfaces that are down, yet
 * Linux keeps their addresses local; such an address is refused again as soon
 * as its interface comes up. Loopback (127/8, ::1) and unspecified addresses
 * are refused by the callers' range checks whatever this list says.
 *
 * Guarantees: addresses are held in their canonical spelling (ip-ranges.ts),
 * so IPv4-mapped and other spellings of an own address match; zones dropped.
 */
import os from 'node:os';
import { canonicalIp } from './address.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';

export type AddressReader = () => string[];

/** Every address of every (up) interface, as os.networkInterfaces() lists them. */
export const systemAddressReader: AddressReader = () =>
  Object.values(os.networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((a) => a.address.replace(/%.*$/, ''));

export class HostAddresses {
  private set = new Set<string>();
  private readAt = -Infinity;

  constructor(
    private readonly read: AddressReader = systemAddressReader,
    private readonly clock: Clock = systemClock,
    private readonly maxAgeMs = 2_000,
    private readonly recheckMs = 250,
  ) {}

  /** True when `ip` is (now) an address of this host. */
  has(ip: string): boolean {
    const c = canonicalIp(ip);
    if (!c) return false;
    const age = this.clock.now() - this.readAt;
    if (age >= this.maxAgeMs) this.refresh();
    if (this.set.has(c.ip)) return true;
    // About to let it through: a list a moment old may miss a new address.
    if (age >= this.recheckMs && this.readAt !== this.clock.now()) {
      this.refresh();
      return this.set.has(c.ip);
    }
    return false;
  }

  /** The addresses known now (canonical spelling), re-read if stale. */
  list(): string[] {
    if (this.clock.now() - this.readAt >= this.maxAgeMs) this.refresh();
    return [...this.set];
  }

  private refresh(): void {
    const next = new Set<string>();
    try {
      for (const a of this.read()) {
        const c = canonicalIp(a);
        if (c) next.add(c.ip);
      }
    } catch {
      // Keep the last list rather than forgetting every address on a read error.
      return;
    }
    this.set = next;
    this.readAt = this.clock.now();
  }
}
