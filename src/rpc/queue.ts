/**
 * The download queue's bookkeeping, with no I/O: which downloads are active,
 * which wait (and in what order), which stopped, and the decisions aria2 makes
 * on them — what to start under `max-concurrent-downloads`, where
 * changePosition moves a download, what the stopped list keeps.
 *
 * Invariants: every record is in exactly one of the three lists, the list that
 * matches its status (waiting holds "waiting" and "paused", in queue order;
 * stopped holds "complete", "error" and "removed", oldest first).
 */
import type { Checksum } from '../download/checksum.js';
import { fail } from './json-rpc.js';
import type { Gid } from './aria2-values.js';
import type { JobOptions } from './job-options.js';

export type JobStatus = 'active' | 'waiting' | 'paused' | 'complete' | 'error' | 'removed';

export interface JobRecord {
  gid: Gid;
  uris: string[];
  options: JobOptions;
  status: JobStatus;
  /** The final path, once the engine chose it (so a resume writes the same file). */
  output?: string;
  /** The URL after redirects. */
  finalUri?: string;
  totalLength: number;
  completedLength: number;
  /** False when the server ignores Range: such a download restarts from zero. */
  ranged?: boolean;
  /** Byte ranges on disk at the last report ([start, end) each): the bitfield of a paused job. */
  done?: { start: number; end: number }[];
  errorCode?: string;
  errorMessage?: string;
}

export type { Checksum };

export type PositionHow = 'POS_SET' | 'POS_CUR' | 'POS_END';

export class DownloadQueue {
  private readonly jobs = new Map<Gid, JobRecord>();
  private active: Gid[] = [];
  private waiting: Gid[] = [];
  private stopped: Gid[] = [];
  /** Downloads that ever stopped (aria2's numStoppedTotal). */
  stoppedTotal = 0;

  has(gid: Gid): boolean {
    return this.jobs.has(gid);
  }

  get(gid: Gid): JobRecord | undefined {
    return this.jobs.get(gid);
  }

  /** Like get, with aria2's error for an unknown GID. */
  find(gid: Gid): JobRecord {
    const r = this.jobs.get(gid);
    if (!r) throw fail(`GID ${gid} is not found`);
    return r;
  }

  /** Adds a record in the list its status says; `position` places a waiting one in the queue. */
  add(rec: JobRecord, position?: number): void {
    this.jobs.set(rec.gid, rec);
    this.listOf(rec.status).push(rec.gid);
    if (position !== undefined && this.isWaiting(rec.status)) {
      this.waiting.pop();
      this.waiting.splice(Math.max(0, Math.min(position, this.waiting.length)), 0, rec.gid);
    }
  }

  activeList(): JobRecord[] {
    return this.active.map((g) => this.jobs.get(g) as JobRecord);
  }

  waitingList(): JobRecord[] {
    return this.waiting.map((g) => this.jobs.get(g) as JobRecord);
  }

  stoppedList(): JobRecord[] {
    return this.stopped.map((g) => this.jobs.get(g) as JobRecord);
  }

  /** The waiting (not paused) downloads to start now, in queue order. */
  toStart(maxConcurrent: number): JobRecord[] {
    const room = maxConcurrent - this.active.length;
    if (room <= 0) return [];
    return this.waitingList()
      .filter((r) => r.status === 'waiting')
      .slice(0, room);
  }

  /** Moves a record to `status`, between lists as needed. `front` puts a waiting one first. */
  setStatus(gid: Gid, status: JobStatus, front = false): void {
    const rec = this.find(gid);
    const from = this.listOf(rec.status);
    const to = this.listOf(status);
    if (from !== to) {
      from.splice(from.indexOf(gid), 1);
      if (front) to.unshift(gid);
      else to.push(gid);
      if (to === this.stopped) this.stoppedTotal++;
    }
    rec.status = status;
  }

  /** changePosition: returns the new index in the waiting queue. */
  move(gid: Gid, pos: number, how: PositionHow): number {
    const i = this.waiting.indexOf(gid);
    if (i < 0) throw fail(`GID#${gid} not found in the waiting queue.`);
    const n = this.waiting.length;
    const target = how === 'POS_SET' ? pos : how === 'POS_CUR' ? i + pos : n - 1 + pos;
    const j = Math.max(0, Math.min(n - 1, target));
    this.waiting.splice(i, 1);
    this.waiting.splice(j, 0, gid);
    return j;
  }

  /** removeDownloadResult: only a stopped download's result can go. */
  removeResult(gid: Gid): void {
    const i = this.stopped.indexOf(gid);
    if (i < 0) throw fail(`Could not remove download result of GID#${gid}`);
    this.stopped.splice(i, 1);
    this.jobs.delete(gid);
  }

  /** Forgets a waiting or paused download entirely (aria2 keeps no result for those). */
  drop(gid: Gid): void {
    const i = this.waiting.indexOf(gid);
    if (i < 0) throw fail(`GID#${gid} is not waiting`);
    this.waiting.splice(i, 1);
    this.jobs.delete(gid);
  }

  purge(): void {
    for (const g of this.stopped) this.jobs.delete(g);
    this.stopped = [];
  }

  /** Keeps the newest `max` stopped results (aria2's max-download-result). */
  trimStopped(max: number): void {
    while (this.stopped.length > max) this.jobs.delete(this.stopped.shift() as Gid);
  }

  all(): JobRecord[] {
    return [...this.activeList(), ...this.waitingList(), ...this.stoppedList()];
  }

  private isWaiting(s: JobStatus): boolean {
    return s === 'waiting' || s === 'paused';
  }

  private listOf(s: JobStatus): Gid[] {
    return s === 'active' ? this.active : this.isWaiting(s) ? this.waiting : this.stopped;
  }
}
