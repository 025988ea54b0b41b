/**
 * The client's MPTCP path plan, as pure data: from the uplinks and which of them
 * are in service, the endpoints and limits the kernel should hold, and the
 * changes that get it there from what it holds now.
 *
 *   uplink in service ──► endpoint  ADDR dev IF id N subflow   (the kernel opens a subflow from it)
 *   uplink offline    ──► no endpoint (deleting it closes its subflows: traffic moves at once)
 *   n uplinks         ──► limits subflows ≥ n, add_addr_accepted ≥ n (never lowered below what was there)
 *
 * Ownership: linkmux owns exactly the endpoints recorded in its `OwnedRecord`
 * (id AND address), never an endpoint someone else added — an uplink whose
 * address already has a foreign endpoint keeps that one and gets none of ours.
 * The limits in force before linkmux first raised them are recorded, so cleanup
 * restores them exactly. The source rules subflows need are planned by
 * net/policy-routing.ts (planPolicyRoutes) over linkmux's own MPTCP number range.
 *
 * Guarantees: pure; the same inputs give the same plan; applying the plan twice
 * changes nothing the second time (diff against the current state).
 */
import type { NetInterface } from '../net/interfaces-types.js';
import { MAX_LIMIT, type MptcpEndpoint, type MptcpLimits } from './ip-mptcp.js';

/** Routing tables and rule priorities of the subflows' source rules (clear of route setup's and the gateway's). */
export const MPTCP_POLICY = { tableBase: 4300, priorityBase: 4300 } as const;
/** Endpoint ids linkmux picks from first (any free id 1–255 is used when these are taken). */
export const ENDPOINT_ID_BASE = 200;

export interface PathUplink {
  /** Interface name (the endpoint's dev). */
  dev: string;
  /** Its address (IPv4 or IPv6) the subflows start from. */
  address: string;
  /** In service now (online or unverified): it gets an endpoint. */
  inService: boolean;
}

/** What linkmux added and what was there before: the only things cleanup touches. */
export interface OwnedRecord {
  version: 1;
  /** Limits before linkmux first changed them; absent when it never did. */
  limitsBefore?: MptcpLimits;
  /** The limits linkmux set (cleanup restores limitsBefore only while these are still in force). */
  limitsSet?: MptcpLimits;
  endpoints: Array<Pick<MptcpEndpoint, 'id' | 'address' | 'dev'>>;
}

export interface KernelPaths {
  endpoints: MptcpEndpoint[];
  limits: MptcpLimits;
}

export interface PathChanges {
  add: MptcpEndpoint[];
  remove: Array<Pick<MptcpEndpoint, 'id' | 'address' | 'dev'>>;
  /** New limits, when they must rise. */
  limits?: MptcpLimits;
  /** Uplinks that get no endpoint of ours, and why. */
  skipped: Array<{ dev: string; reason: string }>;
  /** The record after the changes. */
  record: OwnedRecord;
}

/** The uplinks of local links with an address of the server's family (first non-link-local one). */
export function pathUplinks(
  interfaces: readonly NetInterface[],
  inService: (dev: string) => boolean,
  family: 4 | 6 = 4,
): PathUplink[] {
  const out: PathUplink[] = [];
  for (const i of interfaces) {
    const a = i.addresses.find((x) => x.family === family && !/^fe80:/i.test(x.address));
    if (a) out.push({ dev: i.name, address: a.address, inService: inService(i.name) });
  }
  return out;
}

/** The limits n uplinks need: one subflow per uplink (the first included, for re-joins), capped at 8. */
export function neededLimits(uplinks: number, current: MptcpLimits): MptcpLimits {
  const want = Math.min(MAX_LIMIT, Math.max(2, uplinks));
  return {
    subflows: Math.max(current.subflows, want),
    addAddrAccepted: Math.max(current.addAddrAccepted, want),
  };
}

export function planPaths(
  uplinks: readonly PathUplink[],
  current: KernelPaths,
  record: OwnedRecord | undefined,
): PathChanges {
  const owned = (record?.endpoints ?? []).filter((o) =>
    current.endpoints.some((c) => c.id === o.id && c.address === o.address),
  );
  const isOwned = (c: MptcpEndpoint) => owned.some((o) => o.id === c.id && o.address === c.address);
  const skipped: PathChanges['skipped'] = [];
  const add: MptcpEndpoint[] = [];
  const keep: OwnedRecord['endpoints'] = [];
  const used = new Set(current.endpoints.map((e) => e.id));
  for (const u of uplinks) {
    const present = current.endpoints.filter((e) => e.address === u.address);
    const foreign = present.find((e) => !isOwned(e));
    if (foreign) {
      skipped.push({
        dev: u.dev,
        reason: `${u.address} already has endpoint id ${foreign.id}, not linkmux's: kept`,
      });
      continue;
    }
    if (!u.inService) continue;
    const mine = present.find((e) => isOwned(e) && e.dev === u.dev);
    if (mine) {
      keep.push({ id: mine.id, address: mine.address, dev: u.dev });
      continue;
    }
    const id = freeId(used);
    if (id === undefined) {
      skipped.push({ dev: u.dev, reason: 'every endpoint id (1–255) is taken' });
      continue;
    }
    used.add(id);
    add.push({ address: u.address, id, dev: u.dev, flags: ['subflow'] });
    keep.push({ id, address: u.address, dev: u.dev });
  }
  const remove = owned.filter((o) => !keep.some((k) => k.id === o.id && k.address === o.address));
  const wanted = neededLimits(uplinks.length, current.limits);
  const raise =
    wanted.subflows !== current.limits.subflows || wanted.addAddrAccepted !== current.limits.addAddrAccepted;
  const limitsBefore = record?.limitsBefore ?? (raise ? current.limits : undefined);
  const limitsSet = raise ? wanted : record?.limitsSet;
  return {
    add,
    remove,
    ...(raise ? { limits: wanted } : {}),
    skipped,
    record: {
      version: 1,
      ...(limitsBefore ? { limitsBefore } : {}),
      ...(limitsSet ? { limitsSet } : {}),
      endpoints: keep,
    },
  };
}

/** What cleanup does: delete our endpoints still present; restore the limits if ours are still in force. */
export function planCleanup(
  current: KernelPaths,
  record: OwnedRecord,
): { remove: OwnedRecord['endpoints']; limits?: MptcpLimits } {
  const remove = record.endpoints.filter((o) =>
    current.endpoints.some((c) => c.id === o.id && c.address === o.address),
  );
  const ours =
    record.limitsSet !== undefined &&
    current.limits.subflows === record.limitsSet.subflows &&
    current.limits.addAddrAccepted === record.limitsSet.addAddrAccepted;
  return { remove, ...(ours && record.limitsBefore ? { limits: record.limitsBefore } : {}) };
}

function freeId(used: ReadonlySet<number>): number | undefined {
  for (let k = 0; k < 255; k++) {
    const id = ((ENDPOINT_ID_BASE - 1 + k) % 255) + 1;
    if (!used.has(id)) return id;
  }
  return undefined;
}
