/**
 * /etc/hosts, honoured before any query (as libc does with `hosts: files dns`).
 *
 * Guarantees: `parseHosts` is pure and skips malformed lines; names match
 * case-insensitively, with or without a trailing dot; the file is re-read at
 * most once per `recheckMs` (on its mtime), so 200 lookups in flight cost one
 * stat, not 200 trips through libuv's thread pool; a missing file is empty.
 */
import { readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';

export type HostsTable = ReadonlyMap<string, ReadonlyArray<{ address: string; family: 4 | 6 }>>;

export function parseHosts(text: string): HostsTable {
  const table = new Map<string, Array<{ address: string; family: 4 | 6 }>>();
  for (const raw of text.split('\n')) {
    const [address, ...names] = raw.replace(/#.*$/, '').trim().split(/\s+/);
    if (address === undefined || names.length === 0) continue;
    const bare = address.replace(/%.*$/, '');
    const family = net.isIP(bare);
    if (family !== 4 && family !== 6) continue;
    for (const name of names) {
      const key = normalizeName(name);
      const list = table.get(key) ?? [];
      if (!list.some((e) => e.address === bare)) list.push({ address: bare, family });
      table.set(key, list);
    }
  }
  return table;
}

export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

export interface HostsFileOptions {
  path?: string;
  clock?: Clock;
  /** How long a read stays trusted before the file's mtime is checked again (ms, default 5000). */
  recheckMs?: number;
}

export class HostsFile {
  private table: HostsTable = new Map();
  private mtimeMs = -1;
  private checkedAt = -Infinity;
  private reading: Promise<void> | undefined;
  private readonly path: string;
  private readonly clock: Clock;
  private readonly recheckMs: number;

  constructor(opts: HostsFileOptions = {}) {
    this.path = opts.path ?? '/etc/hosts';
    this.clock = opts.clock ?? systemClock;
    this.recheckMs = opts.recheckMs ?? 5_000;
  }

  async lookup(name: string): Promise<ReadonlyArray<{ address: string; family: 4 | 6 }> | undefined> {
    if (this.clock.now() - this.checkedAt >= this.recheckMs) {
      this.reading ??= this.refresh().finally(() => (this.reading = undefined));
    }
    // Lookups that arrive while a read is under way wait for it too: on the
    // first read the table is still empty, and a hosts name would go to DNS.
    if (this.reading) await this.reading;
    return this.table.get(normalizeName(name));
  }

  private async refresh(): Promise<void> {
    this.checkedAt = this.clock.now();
    try {
      const st = await stat(this.path);
      if (st.mtimeMs === this.mtimeMs) return;
      this.table = parseHosts(await readFile(this.path, 'utf8'));
      this.mtimeMs = st.mtimeMs;
    } catch {
      this.table = new Map();
      this.mtimeMs = -1;
    }
  }
}
