/**
 * Applies the client's MPTCP path plan (plan.ts) through the Runner and removes
 * it again: endpoints, limits, and the source rules and routes subflows need
 * (net/policy-routing.ts, in linkmux's MPTCP number range).
 *
 * Ownership survives a crash: before any change, the record of what linkmux
 * owns after it (and the limits that were there before) is written to a file in
 * the state directory (written whole, then renamed), so `cleanup()` — also
 * `linkmux up --cleanup` after kill -9 — removes exactly what was added and puts
 * the limits back. Rules and routes are owned by their number range, as
 * `linkmux route setup` owns its own.
 *
 * Guarantees: `apply` with the same uplinks twice runs no command the second
 * time but the two reads; `cleanup` is a no-op the second time; a failed command
 * leaves the record covering everything that may have been added.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { planPolicyRoutes } from '../net/policy-routing.js';
import type { NetInterface } from '../net/interfaces-types.js';
import { LinkmuxError } from '../util/errors.js';
import type { Runner } from '../util/runner.js';
import {
  ENDPOINT_SHOW_ARGS,
  LIMITS_SHOW_ARGS,
  endpointAddArgs,
  endpointDelArgs,
  limitsSetArgs,
  parseEndpoints,
  parseLimits,
  type MptcpLimits,
} from './ip-mptcp.js';
import {
  MPTCP_POLICY,
  planCleanup,
  planPaths,
  type KernelPaths,
  type OwnedRecord,
  type PathUplink,
} from './plan.js';

/** Where the ownership record lives (a file in production, memory in tests). */
export interface RecordStore {
  read(): Promise<OwnedRecord | undefined>;
  write(record: OwnedRecord): Promise<void>;
  remove(): Promise<void>;
}

export const RECORD_FILE = 'mptcp-paths.json';

export const SERVER_RECORD_FILE = 'mptcp-server.json';

export function fileRecordStore(dir: string, file = RECORD_FILE): RecordStore {
  const path = join(dir, file);
  return {
    async read() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch {
        return undefined;
      }
      try {
        const r = JSON.parse(text) as OwnedRecord;
        return r.version === 1 && Array.isArray(r.endpoints) ? r : undefined;
      } catch {
        throw new LinkmuxError(
          'LINKMUX_ERR_CONFIG',
          `${path} is not the JSON linkmux writes: check \`ip mptcp endpoint show\` and delete the file`,
        );
      }
    },
    async write(record) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const tmp = `${path}.tmp`;
      await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, path);
    },
    async remove() {
      await rm(path, { force: true });
    },
  };
}

export function memoryRecordStore(initial?: OwnedRecord): RecordStore & { value: OwnedRecord | undefined } {
  const s = {
    value: initial,
    read: () => Promise.resolve(s.value),
    write: (r: OwnedRecord) => {
      s.value = structuredClone(r);
      return Promise.resolve();
    },
    remove: () => {
      s.value = undefined;
      return Promise.resolve();
    },
  };
  return s;
}

export class MptcpKernel {
  constructor(
    private readonly runner: Runner,
    private readonly store: RecordStore,
  ) {}

  async read(): Promise<KernelPaths> {
    const ip = async (args: string[]) => (await this.runner.run('ip', args)).stdout;
    return {
      endpoints: parseEndpoints(await ip(ENDPOINT_SHOW_ARGS)),
      limits: parseLimits(await ip(LIMITS_SHOW_ARGS)),
    };
  }

  /** Source rules and routes so a subflow from an uplink's address leaves by that uplink. */
  async applyRules(interfaces: readonly NetInterface[]): Promise<string[][]> {
    return planPolicyRoutes(interfaces, MPTCP_POLICY).apply(this.runner);
  }

  /** Brings endpoints and limits to the plan; returns the `ip` argument arrays it ran. */
  async apply(
    uplinks: readonly PathUplink[],
  ): Promise<{ ran: string[][]; skipped: Array<{ dev: string; reason: string }> }> {
    const current = await this.read();
    const before = await this.store.read();
    const changes = planPaths(uplinks, current, before);
    const ran: string[][] = [];
    if (changes.add.length === 0 && changes.remove.length === 0 && !changes.limits) {
      return { ran, skipped: changes.skipped };
    }
    // The record first covers both what we had and what we are about to add, so a crash mid-way loses nothing.
    const union: OwnedRecord = {
      ...changes.record,
      endpoints: [...changes.record.endpoints, ...changes.remove],
    };
    await this.store.write(union);
    const run = async (args: string[]) => {
      await this.runner.run('ip', args);
      ran.push(args);
    };
    if (changes.limits) await run(limitsSetArgs(changes.limits));
    for (const e of changes.remove) await run(endpointDelArgs(e));
    for (const e of changes.add) await run(endpointAddArgs(e));
    await this.store.write(changes.record);
    return { ran, skipped: changes.skipped };
  }

  /**
   * Raises the limits to at least `want` (a server accepting subflows), recording
   * what was there first; cleanup() puts it back. Returns what it ran.
   */
  async raiseLimits(want: MptcpLimits): Promise<string[][]> {
    const { limits } = await this.read();
    const record = await this.store.read();
    const target = {
      subflows: Math.max(limits.subflows, want.subflows),
      addAddrAccepted: Math.max(limits.addAddrAccepted, want.addAddrAccepted),
    };
    if (target.subflows === limits.subflows && target.addAddrAccepted === limits.addAddrAccepted) return [];
    await this.store.write({
      version: 1,
      limitsBefore: record?.limitsBefore ?? limits,
      limitsSet: target,
      endpoints: record?.endpoints ?? [],
    });
    await this.runner.run('ip', limitsSetArgs(target));
    return [limitsSetArgs(target)];
  }

  /** Removes every endpoint linkmux recorded, restores the limits, deletes its rules and routes. */
  async cleanup(opts: { rules?: boolean } = {}): Promise<string[][]> {
    const ran: string[][] = [];
    const record = await this.store.read();
    if (record) {
      const plan = planCleanup(await this.read(), record);
      for (const e of plan.remove) {
        await this.runner.run('ip', endpointDelArgs(e));
        ran.push(endpointDelArgs(e));
      }
      if (plan.limits) {
        await this.runner.run('ip', limitsSetArgs(plan.limits));
        ran.push(limitsSetArgs(plan.limits));
      }
    }
    if (opts.rules ?? true) ran.push(...(await planPolicyRoutes([], MPTCP_POLICY).remove(this.runner)));
    await this.store.remove();
    return ran;
  }
}
