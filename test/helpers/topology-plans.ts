// The testbed plans the topology tests compare with expected text (test/unit/topology*.test.ts).
import { planTopology } from '../../src/testbed/topology.js';

/** Two links at 8 and 4 Mbit/s. */
export const plan = planTopology({ prefix: 't-', links: 2, rateMbit: [8, 4] });

/** Three machines on one LAN, each with its own uplink (what `linkmux node` needs). */
export const lanPlan = planTopology({ prefix: 't-', machines: [0, 1, 2] });

/** One uplink and one LAN-only host routed through the client (what `linkmux gateway` needs). */
export const hostPlan = planTopology({ prefix: 't-', links: 1, lanHosts: 1 });
