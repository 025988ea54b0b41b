/**
 * The states a link can be in, as every room sees them: the health checker
 * decides them (src/health), the scheduler and the gateway act on them, status
 * and metrics show them. Here, in the links room, so that none of those has to
 * import the health checker to name a state.
 *
 * - online: in service, probes pass;
 * - degraded: used only when no online link exists (a failed or slow probe, a
 *   passive failure);
 * - unverified: in service, but every link fails its probes at once, so the
 *   probe targets are suspect (see src/health/suspicion.ts);
 * - offline: no new connections.
 */
export type LinkState = 'online' | 'degraded' | 'unverified' | 'offline';

/** Every state, in order from best to worst (for tables, metrics and docs). */
export const LINK_STATES: readonly LinkState[] = Object.freeze([
  'online',
  'degraded',
  'unverified',
  'offline',
]);
