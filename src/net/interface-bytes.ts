/**
 * A network interface's received-byte counter, read from sysfs
 * (/sys/class/net/DEV/statistics/rx_bytes): one small synchronous read, cheap
 * enough to take before and after every health round, with no subprocess.
 *
 * sysfs shows the devices of the network namespace it was mounted in, which is
 * not always this process's (`nsenter --net` keeps the old mount; `ip netns
 * exec` remounts it). `sysfsIfindex` lets a caller check a device against the
 * ifindex its own netlink view reports before trusting the counter.
 *
 * Guarantees: never throws; undefined for a name that is not an interface name,
 * a device that does not exist, or a system without sysfs.
 */
import { readFileSync } from 'node:fs';

/** Linux interface names: 1-15 bytes, no "/" (a path component here), not "." or "..". */
function sysfsPath(dev: string, file: string): string | undefined {
  if (!/^[\x21-\x7e]{1,15}$/.test(dev) || dev.includes('/') || dev === '.' || dev === '..') return undefined;
  return `/sys/class/net/${dev}/${file}`;
}

function readNumber(path: string | undefined): number | undefined {
  if (path === undefined) return undefined;
  try {
    const n = Number(readFileSync(path, 'ascii').trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes the device has received since it was created, or undefined. */
export function interfaceRxBytes(dev: string): number | undefined {
  return readNumber(sysfsPath(dev, 'statistics/rx_bytes'));
}

/** The device's ifindex as sysfs shows it, or undefined. */
export function sysfsIfindex(dev: string): number | undefined {
  return readNumber(sysfsPath(dev, 'ifindex'));
}
