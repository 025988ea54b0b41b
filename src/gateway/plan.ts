/**
 * The gateway's desired state as data, and the pure function that computes it
 * from the declared uplinks, their health and their weights. Everything the
 * kernel gets (nft ruleset, ip rules, routes) is rendered from a GatewayPlan
 * (render.ts), so the same inputs always give the same text, and applying it
 * twice changes nothing.
 *
 * Numbers kept in one place (GatewayNumbers): uplink i (0-based) gets
 *   mark     markBase + i + 1   (its ct mark and packet mark; markMask selects ours)
 *   table    tableBase + i + 1  (its routing table: default via its gateway)
 *   rules    priority           "lookup main suppress_prefixlength 0" (one for all: LAN and
 *                               other specific routes win over the uplinks' default routes)
 *            priority + 1 + 2i  "fwmark MARK/(markMask|0xff) lookup TABLE" (the mask keeps the
 *                               low byte holding i + 1: under markMask alone every linkmux mark
 *                               would match uplink 0's rule; ip-rules.ts fwmarkMask)
 *            priority + 2 + 2i  "from ADDRESS lookup TABLE" (the uplink's own traffic, health probes)
 */
import { LinkmuxError } from '../util/errors.js';

export const NFT_TABLE = 'linkmux';
export const NFT_FAMILY = 'inet';

export interface GatewayNumbers {
  /** Base of the uplinks' marks; must have no bit in common with 0xff (default 0x4c00). */
  markBase: number;
  /** Which mark bits are linkmux's (default 0xff00). */
  markMask: number;
  /** Base of the routing table ids (default 4200: tables 4201, 4202, …). */
  tableBase: number;
  /** First ip rule priority (default 4200); uplink i uses priority + 1 + 2i and + 2 + 2i. */
  priority: number;
}

export const DEFAULT_GATEWAY_NUMBERS: GatewayNumbers = {
  markBase: 0x4c00,
  markMask: 0xff00,
  tableBase: 4200,
  priority: 4200,
};

export const MAX_GATEWAY_UPLINKS = 64;

export interface UplinkDecl {
  /** Id shown to users (default: the interface name). */
  name: string;
  /** The WAN interface. */
  dev: string;
  /** Next hop on that interface. */
  gateway: string;
  /** This machine's address on the uplink (for the `from` rule); none: no such rule. */
  address?: string | undefined;
  /** Fixed weight from the config; undefined = follow measured capacity. */
  weight?: number | undefined;
}

export type GatewayAction = { kind: 'bypass' } | { kind: 'uplink'; name: string };

export interface GatewayRule {
  match: {
    /** LAN source network (sticky per source). */
    source?: string;
    /** Destination network. */
    destination?: string;
    /** Destination port or "lo-hi" (TCP and UDP). */
    port?: number | string;
  };
  action: GatewayAction;
}

export interface PlannedUplink extends UplinkDecl {
  index: number;
  mark: number;
  table: number;
  /** ip rule priorities: [fwmark rule, from rule]. */
  priorities: [number, number];
  /** Share in the round-robin, an integer ≥ 1; 0 when offline. */
  slots: number;
  online: boolean;
}

export interface GatewayPlan {
  lan: string[];
  uplinks: PlannedUplink[];
  /** Rules in config order; those naming an offline uplink are kept but inactive (`active: false`). */
  rules: Array<GatewayRule & { active: boolean }>;
  numbers: GatewayNumbers;
}

export interface PlanInput {
  lan: readonly string[];
  uplinks: readonly UplinkDecl[];
  rules: readonly GatewayRule[];
  numbers?: GatewayNumbers;
  /** Uplink name → online; missing = online (before the first probe round). */
  online: ReadonlyMap<string, boolean>;
  /** Uplink name → measured weight (any positive scale); used when the declaration has none. */
  measured: ReadonlyMap<string, number>;
}

/** Round-robin slots in total at most this many: fine enough, and a short numgen map. */
export const MAX_SLOTS = 32;

export function planGateway(input: PlanInput): GatewayPlan {
  const numbers = input.numbers ?? DEFAULT_GATEWAY_NUMBERS;
  checkNumbers(numbers, input.uplinks.length);
  const weights = input.uplinks.map((u) => u.weight ?? input.measured.get(u.name) ?? 1);
  const online = input.uplinks.map((u) => input.online.get(u.name) ?? true);
  const slots = quantize(weights.map((w, i) => (online[i] ? w : 0)));
  const uplinks = input.uplinks.map((u, index): PlannedUplink => ({
    ...u,
    index,
    mark: numbers.markBase + index + 1,
    table: numbers.tableBase + index + 1,
    priorities: [numbers.priority + 1 + 2 * index, numbers.priority + 2 + 2 * index],
    slots: slots[index] ?? 0,
    online: online[index] ?? true,
  }));
  const byName = new Map(uplinks.map((u) => [u.name, u]));
  const rules = input.rules.map((r) => ({
    ...r,
    active: r.action.kind === 'bypass' || byName.get(r.action.name)?.online === true,
  }));
  return { lan: [...input.lan], uplinks, rules, numbers };
}

/**
 * Integer slots proportional to the weights, each positive weight at least 1,
 * the total at most MAX_SLOTS (largest remainders). All zero → all zero.
 * The smallest total that splits the weights exactly wins (8/4/2 → 4/2/1,
 * equal → 1 each), so the numgen map stays short; weights with no exact split
 * (measured capacities) get the finest split within MAX_SLOTS.
 */
export function quantize(weights: readonly number[]): number[] {
  const positive = weights.filter((w) => w > 0);
  if (positive.length === 0) return weights.map(() => 0);
  const total = positive.reduce((a, b) => a + b, 0);
  const budget = Math.max(positive.length, MAX_SLOTS);
  for (let slots = positive.length; slots < budget; slots++) {
    const split = apportion(weights, total, slots);
    if (split.every((s, i) => Math.abs(s * total - (weights[i] ?? 0) * slots) <= 1e-9 * total * slots)) {
      return split;
    }
  }
  return reduce(apportion(weights, total, budget));
}

/** `budget` slots by largest remainders, each positive weight at least 1 (budget ≥ their count). */
function apportion(weights: readonly number[], total: number, budget: number): number[] {
  const exact = weights.map((w) => (w > 0 ? (w / total) * budget : 0));
  const slots = exact.map((x, i) => ((weights[i] ?? 0) > 0 ? Math.max(1, Math.floor(x)) : 0));
  let left = budget - slots.reduce((a, b) => a + b, 0);
  // Raising tiny weights to 1 can overshoot (1000/1/1 → 31+1+1): take the excess from the largest.
  while (left < 0) {
    const largest = slots.reduce((best, s, i) => (s > (slots[best] ?? 0) ? i : best), 0);
    slots[largest] = (slots[largest] ?? 0) - 1;
    left++;
  }
  const order = exact
    .map((x, i) => ({ i, rest: x - Math.floor(x) }))
    .filter(({ i }) => (weights[i] ?? 0) > 0)
    .sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    slots[i] = (slots[i] ?? 0) + 1;
    left--;
  }
  return slots;
}

/** Divides by the greatest common divisor: weights 16/16 → 1/1, so the numgen map stays short. */
function reduce(slots: number[]): number[] {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const g = slots.reduce((a, b) => gcd(a, b), 0);
  return g > 1 ? slots.map((s) => s / g) : slots;
}

function checkNumbers(n: GatewayNumbers, count: number): void {
  if (count > MAX_GATEWAY_UPLINKS) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONFIG',
      `gateway: at most ${MAX_GATEWAY_UPLINKS} uplinks, got ${count}`,
    );
  }
  if ((n.markBase & ~n.markMask) !== 0 || ((n.markBase + count) & n.markMask) !== n.markBase) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONFIG',
      `gateway: marks 0x${(n.markBase + 1).toString(16)}–0x${(n.markBase + count).toString(16)} do not fit ` +
        `under mask 0x${n.markMask.toString(16)}: choose a markBase whose low bits are zero`,
    );
  }
}

/** "0x4c01" — how marks appear in nft text, ip rules and messages. */
export { hex } from '../routing/spec.js';
