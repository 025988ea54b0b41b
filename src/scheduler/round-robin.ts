/**
 * Round-robin: each new connection goes to the eligible link after the one
 * picked last, in snapshot order. Ignores load and capacity on purpose — it is
 * the simple, predictable alternative.
 *
 * Guarantees: with a fixed set of eligible links, n picks visit n distinct links;
 * a link that drops out is skipped and the rotation carries on from where it was
 * (remembered by id; when that id has left the snapshot, the link now at its
 * position is next).
 */
import type { LinkSnapshot, Policy } from './snapshot.js';
import { eligible } from './snapshot.js';

export class RoundRobinPolicy implements Policy {
  readonly name = 'round-robin';
  private lastId: string | undefined;
  private lastIndex = -1;

  pick(links: readonly LinkSnapshot[]): string | undefined {
    const candidates = new Set(eligible(links).map((l) => l.id));
    if (candidates.size === 0) return undefined;
    // Start after the last pick; if it left the snapshot, the link that slid into
    // its position is next.
    const byId = this.lastId === undefined ? -1 : links.findIndex((l) => l.id === this.lastId);
    const start = this.lastId === undefined ? -1 : byId >= 0 ? byId : this.lastIndex - 1;
    for (let step = 1; step <= links.length; step++) {
      const index = (((start + step) % links.length) + links.length) % links.length;
      const link = links[index]!;
      if (!candidates.has(link.id)) continue;
      this.lastId = link.id;
      this.lastIndex = index;
      return link.id;
    }
    return undefined; // unreachable: candidates is a non-empty subset of links
  }
}
