/**
 * "Everything through this link while it is in service, else the usual
 * policy": how `up --server` sends every connection through the MPTCP server
 * (which already spreads each one over every uplink) yet keeps working, with
 * connection-level balancing over the other links, while the server is down.
 * Pure, like every policy; rules (`direct`, `link:…`) still come first.
 */
import { inService, type Policy } from './snapshot.js';

export function preferLink(id: string, fallback: Policy): Policy {
  return {
    name: `${fallback.name} (through ${id} first)`,
    pick(links, ctx) {
      const preferred = links.find((l) => l.id === id);
      if (preferred && inService(preferred.state)) return id;
      return (
        fallback.pick(
          links.filter((l) => l.id !== id),
          ctx,
        ) ?? (preferred && preferred.state !== 'offline' ? id : undefined)
      );
    },
  };
}
