/**
 * The PoolDialer's count of connections per link: every connection from the
 * moment its connect starts until its socket closes (`connectionsOn`), and the
 * busy ones among them (`busyOn`): those that moved bytes within the last
 * second or started within the last two, which is what the policies see.
 *
 * Why cached: telling busy from idle means reading every open socket's byte
 * counters (Node's `bytesWritten` getter copies the write queue), and a policy
 * asks on every dial; with 2,000 tunnels open that scan cost more than the
 * rest of a connect. The scan runs at most once per `SCAN_EVERY_MS` per link;
 * between scans a new connection counts as busy at once (it is fresh) and one
 * that closes stops counting at once, so a burst of dials still spreads over
 * the links exactly; only "started or stopped moving bytes" is seen up to
 * `SCAN_EVERY_MS` late, against a window of a second.
 */
import type { Clock } from '../util/clock.js';

/** A connection is busy while it moves bytes, and during its first seconds. */
export const BUSY_WINDOW_MS = 1_000;
export const FRESH_MS = 2_000;
/** Longest age of a link's busy count. */
export const SCAN_EVERY_MS = 250;

export interface Tracked {
  socket: { bytesRead: number; bytesWritten: number } | undefined;
  openedAt: number;
  lastBytes: number;
  lastMoved: number;
  /** The scan that last counted it (or the one current when it was held). */
  epoch: number;
  /** Counted busy in that scan. */
  busy: boolean;
}

interface PerLink {
  open: Set<Tracked>;
  busy: number;
  scannedAt: number;
  epoch: number;
}

export class LinkUsage {
  private readonly links = new Map<string, PerLink>();

  constructor(private readonly clock: Clock) {}

  /** Counts a connection on `id` from now on (release it with `drop`). */
  hold(id: string): Tracked {
    const now = this.clock.now();
    let l = this.links.get(id);
    if (!l) this.links.set(id, (l = { open: new Set(), busy: 0, scannedAt: -Infinity, epoch: 0 }));
    const t: Tracked = {
      socket: undefined,
      openedAt: now,
      lastBytes: 0,
      lastMoved: now,
      epoch: l.epoch,
      busy: true,
    };
    l.open.add(t);
    l.busy++;
    return t;
  }

  drop(id: string, t: Tracked): void {
    const l = this.links.get(id);
    if (!l?.open.delete(t)) return;
    if (t.busy && t.epoch === l.epoch) l.busy--;
  }

  /** Open connections (and connects in progress) on the link. */
  connectionsOn(id: string): number {
    return this.links.get(id)?.open.size ?? 0;
  }

  /** Connections on the link that moved bytes lately or are new (see the module comment). */
  busyOn(id: string): number {
    const l = this.links.get(id);
    if (!l) return 0;
    const now = this.clock.now();
    if (now - l.scannedAt < SCAN_EVERY_MS && now >= l.scannedAt) return l.busy;
    l.scannedAt = now;
    l.epoch++;
    l.busy = 0;
    for (const t of l.open) {
      const bytes = t.socket ? t.socket.bytesRead + t.socket.bytesWritten : 0;
      if (bytes !== t.lastBytes) {
        t.lastBytes = bytes;
        t.lastMoved = now;
      }
      t.epoch = l.epoch;
      t.busy = now - t.openedAt < FRESH_MS || now - t.lastMoved < BUSY_WINDOW_MS;
      if (t.busy) l.busy++;
    }
    return l.busy;
  }
}
