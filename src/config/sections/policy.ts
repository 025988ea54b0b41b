/** `sticky`, `failover` and `rules`: how connections are placed on links. */
import { z } from 'zod';
import { POLICY_NAMES } from '../../scheduler/policies.js';
import type { PolicyName } from '../../scheduler/policies.js';
import { cidrMatch, count, domainMatch, duration, portMatch, ruleAction } from '../fields.js';

type FallbackPolicy = Exclude<PolicyName, 'sticky'>;
const FALLBACK_POLICIES = POLICY_NAMES.filter((p): p is FallbackPolicy => p !== 'sticky') as [
  FallbackPolicy,
  ...FallbackPolicy[],
];

export const stickySchema = z
  .strictObject({
    /** How long an unused destination stays on its link, in seconds. Default 600. */
    ttl: duration(1, 7 * 24 * 3600).default(600),
    /** The policy placing destinations not seen yet. Default "adaptive". */
    fallback: z.enum(FALLBACK_POLICIES).default('adaptive'),
  })
  .prefault({});

export const failoverSchema = z
  .strictObject({
    /** Links tried per connection, the first pick included. Default 3. */
    attempts: count(1, 16).default(3),
    /** Seconds a link has alone before the next one joins the connect race. Default 2. */
    stagger: duration(0, 60).default(2),
  })
  .prefault({});

export const ruleSchema = z
  .strictObject({
    /** Every field given must hold; at least one is needed. */
    match: z.strictObject({
      /** ".example.org": the name and its subdomains; "example.org": that name only. */
      domain: domainMatch.optional(),
      /** Destination network, "10.0.0.0/8" or "2001:db8::/32". */
      cidr: cidrMatch.optional(),
      /** Destination port, 443, or a range "8000-8999". */
      port: portMatch.optional(),
    }),
    /** direct | deny | link:<link id> | policy:<policy name>. */
    action: ruleAction,
  })
  .superRefine((rule, ctx) => {
    const m = rule.match;
    if (m.domain === undefined && m.cidr === undefined && m.port === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['match'],
        message: 'give at least one of domain, cidr, port (for everything else, set `policy`)',
      });
    }
  });
