/**
 * The routing room: linkmux's one policy-routing engine. Planners turn what
 * they know into desired state; this applies it.
 *
 *   planner (pure)                      routing
 *   net/policy-routing.ts  (route setup) ─┐
 *   gateway/ip-rules.ts    (gateway)     ─┼─> DesiredRouting + Ownership
 *   mptcp/ (endpoints, to come)          ─┘        │
 *                      reader.ts: ip -j -N rule show / route show table all (4 and 6)
 *                      diff.ts:   ownership by range → RoutingChange[]
 *                      apply.ts:  run the changes through the Runner; cleanup
 *
 *   spec.ts       RuleSpec, RouteSpec (wanted); KernelRule, KernelRoute (read back);
 *                 RoutingChange and its one `ip` spelling (changeArgs, renderChange)
 *   sim-kernel.ts SimKernel: a Runner that holds rules and routes (and an
 *                 rt_tables) and answers `ip` like iproute2 6.1, for tests
 *
 * Adding a resource kind (MPTCP endpoints: `ip mptcp endpoint add ADDR dev IF
 * subflow`): a spec type in DesiredRouting, a reader (`ip -j mptcp endpoint
 * show`), a diff and a cleanup over its owned range (endpoint ids), and a
 * RoutingChange variant with its arguments in changeArgs. applyRouting and
 * removeRouting stay as they are: read, diff, run.
 *
 * Guarantees: applyRouting reads the kernel, then changes only what differs
 * (the same desired state twice runs nothing the second time, and stale
 * owned rules and routes of earlier runs go); it stops at the first failure
 * and rethrows, leaving the rollback to the caller (the gateway removes all
 * of its state, nft included). removeRouting deletes everything owned, tries
 * every change even when one fails, and is a no-op the second time. Nothing
 * outside the caller's ownership is ever changed.
 */
import { LinkmuxError, describe } from '../util/errors.js';
import type { Runner } from '../util/runner.js';
import { cleanupChanges, diffRouting, type Ownership } from './diff.js';
import { readRouting } from './reader.js';
import { changeArgs, type DesiredRouting, type RoutingChange } from './spec.js';

/** Brings linkmux's part of the kernel to `desired`; returns the changes it ran. */
export async function applyRouting(
  runner: Runner,
  desired: DesiredRouting,
  owned: Ownership,
): Promise<RoutingChange[]> {
  const changes = diffRouting(desired, await readRouting(runner), owned);
  for (const c of changes) await runner.run('ip', changeArgs(c));
  return changes;
}

/** Deletes every rule and route `owned` covers; returns the changes it ran. */
export async function removeRouting(runner: Runner, owned: Ownership): Promise<RoutingChange[]> {
  const changes = cleanupChanges(await readRouting(runner), owned);
  const errors: string[] = [];
  for (const c of changes) {
    try {
      await runner.run('ip', changeArgs(c));
    } catch (err) {
      errors.push(describe(err));
    }
  }
  if (errors.length > 0) {
    throw new LinkmuxError('LINKMUX_ERR_COMMAND_FAILED', `cleanup was incomplete: ${errors.join('; ')}`);
  }
  return changes;
}
