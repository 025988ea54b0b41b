/**
 * The policy names a user can choose and the factory that builds them. Names
 * from flags or config are checked here, so an unknown one fails with the list
 * of valid ones; a sticky policy wraps another policy (adaptive by default).
 * Each call returns a fresh policy: stateful ones (round-robin, weighted,
 * sticky) must not be shared between independent schedulers.
 */
import { LinkmuxError } from '../util/errors.js';
import { AdaptivePolicy } from './adaptive.js';
import { HashPolicy } from './hash.js';
import { LeastConnectionsPolicy } from './least-connections.js';
import { RoundRobinPolicy } from './round-robin.js';
import type { Policy } from './snapshot.js';
import { StickyPolicy } from './sticky.js';
import { WeightedPolicy } from './weighted.js';

export const POLICY_NAMES = [
  'adaptive',
  'round-robin',
  'weighted',
  'least-connections',
  'sticky',
  'hash',
] as const;

export type PolicyName = (typeof POLICY_NAMES)[number];

export const DEFAULT_POLICY: PolicyName = 'adaptive';

export interface PolicyOptions {
  /** adaptive (and sticky's adaptive fallback): tie band as a fraction of mean capacity. Default 0.05. */
  tieTolerance?: number;
  /** sticky: the policy placing new destinations. Default 'adaptive'. */
  fallback?: Exclude<PolicyName, 'sticky'>;
  /** sticky: how long an unused destination stays on its link, in ms. Default 600 000. */
  ttlMs?: number;
  /** sticky: most destinations remembered. Default 10 000. */
  maxEntries?: number;
}

export function isPolicyName(name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

export function createPolicy(name: string = DEFAULT_POLICY, opts: PolicyOptions = {}): Policy {
  if (!isPolicyName(name)) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      `unknown scheduling policy "${name}": choose one of ${POLICY_NAMES.join(', ')}`,
    );
  }
  switch (name) {
    case 'adaptive':
      return new AdaptivePolicy(opts.tieTolerance === undefined ? {} : { tieTolerance: opts.tieTolerance });
    case 'round-robin':
      return new RoundRobinPolicy();
    case 'weighted':
      return new WeightedPolicy();
    case 'least-connections':
      return new LeastConnectionsPolicy();
    case 'hash':
      return new HashPolicy();
    case 'sticky': {
      const fallback: string = opts.fallback ?? DEFAULT_POLICY;
      if (fallback === 'sticky') {
        throw new LinkmuxError(
          'LINKMUX_ERR_USAGE',
          'a sticky policy cannot fall back to sticky: choose another fallback, e.g. adaptive',
        );
      }
      return new StickyPolicy({
        fallback: createPolicy(fallback, opts),
        ...(opts.ttlMs === undefined ? {} : { ttlMs: opts.ttlMs }),
        ...(opts.maxEntries === undefined ? {} : { maxEntries: opts.maxEntries }),
      });
    }
  }
}

/**
 * One fresh policy for every name in POLICY_NAMES, all built with the same
 * options: what rules naming `policy:<name>` draw from, so no name a user can
 * write falls back silently to another policy.
 */
export function createPolicySet(opts: PolicyOptions = {}): Record<PolicyName, Policy> {
  return Object.fromEntries(POLICY_NAMES.map((name) => [name, createPolicy(name, opts)])) as Record<
    PolicyName,
    Policy
  >;
}
