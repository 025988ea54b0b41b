/**
 * Least-connections: a new connection goes to the eligible link with the fewest
 * open connections, first in snapshot order on a tie. Stateless; blind to
 * capacity, so it suits equal links carrying similar connections.
 */
import type { LinkSnapshot, Policy } from './snapshot.js';
import { eligible } from './snapshot.js';

export class LeastConnectionsPolicy implements Policy {
  readonly name = 'least-connections';

  pick(links: readonly LinkSnapshot[]): string | undefined {
    let best: LinkSnapshot | undefined;
    for (const link of eligible(links)) if (!best || link.active < best.active) best = link;
    return best?.id;
  }
}
