/**
 * SO_RCVLOWAT on a connected TCP socket (Linux, through koffi): the kernel
 * reports the socket readable only once that many bytes are queued (or at FIN
 * or an error), and lowering the mark wakes a reader whose queue is already
 * above it. It is how the relay lets segments pile up in the kernel without an
 * event-loop wakeup per segment (proxy/read-coalescing.ts).
 *
 * Guarantees: nothing is loaded at import time; `receiveLowWater()` is
 * undefined where the option cannot be set (not Linux, koffi missing), and a
 * setter returns false instead of throwing when the kernel refuses.
 */
import { socketLibc } from './bind-device.js';

const SOL_SOCKET = 1;
const SO_RCVLOWAT = 18;

/** Sets the low-water mark of `fd` to `bytes` (≥ 1); false when the kernel refused. */
export type LowWaterSetter = (fd: number, bytes: number) => boolean;

let setter: LowWaterSetter | null | undefined;

export function receiveLowWater(platform: NodeJS.Platform = process.platform): LowWaterSetter | undefined {
  if (setter !== undefined) return setter ?? undefined;
  const l = platform === 'linux' ? socketLibc(platform) : undefined;
  if (!l || !('libc' in l)) {
    setter = null;
    return undefined;
  }
  const { libc } = l;
  // A C int in the machine's byte order.
  const value = new Int32Array(1);
  const bytes = Buffer.from(value.buffer);
  setter = (fd, n) => {
    value[0] = n;
    return libc.setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, bytes, 4) === 0;
  };
  return setter;
}
