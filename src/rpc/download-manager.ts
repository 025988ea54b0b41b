/**
 * The RPC's downloads: a queue bounded by max-concurrent-downloads whose jobs
 * run on the engine of `linkmux get` (download/downloader.ts) over the links
 * the daemon gives it, persisted in the state dir.
 *
 *   addUri ─► queue (waiting) ─► schedule() ─► download({continue: true}) ─► complete | error
 *                 ▲                                │ pause/remove: abort (the control file keeps the bytes)
 *                 └──────── unpause ◄──────────────┘
 *
 * Guarantees: every job resumes from its control file (`<out>.linkmux`), so a
 * pause, a removal or a daemon restart never refetches a saved byte; the final
 * path chosen on the first start is kept, so a resume writes the same file;
 * state changes are saved to the session file at once, progress every few
 * seconds; stop() aborts running jobs and saves them as waiting (first in the
 * queue) for the next start. Logs carry redacted URLs only.
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Link } from '../links/link.js';
import { type DownloadOptions } from '../download/downloader.js';
import type { DownloadSummary, ProgressSink } from '../download/progress.js';
import { HttpStatusError } from '../download/retry-policy.js';
import { LinkmuxError, describe, isLinkmuxError, redactUrl } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { aria2ErrorCode, newGid, type Gid } from './aria2-values.js';
import { fail } from './json-rpc.js';
import { applyGlobal, jobOptions, type GlobalOptions } from './job-options.js';
import { DownloadQueue, type JobRecord, type JobStatus, type PositionHow } from './queue.js';
import { RateLimit } from './rate-limit.js';
import type { SessionStore } from './session-store.js';
import type { LiveJob } from './status-view.js';

export type Notification =
  | 'aria2.onDownloadStart'
  | 'aria2.onDownloadPause'
  | 'aria2.onDownloadStop'
  | 'aria2.onDownloadComplete'
  | 'aria2.onDownloadError';

export interface DownloadManagerOptions {
  /** The links a job starts on (the daemon's usable links, read at each start). */
  links: () => Link[];
  global: GlobalOptions;
  store: SessionStore;
  logger: Logger;
  /** The engine (tests inject a fake). */
  run?: (opts: DownloadOptions) => Promise<DownloadSummary>;
  /** Stopped results kept (aria2's max-download-result). Default 1000. */
  maxResults?: number;
  /** How often running jobs' progress is saved (ms). Default 5000. */
  saveIntervalMs?: number;
  connectTimeoutMs?: number;
}

interface Running {
  ctl: AbortController;
  live: LiveJob;
  /** What the record becomes when the aborted run unwinds (undefined: it failed or finished). */
  stopAs?: 'paused' | 'removed' | 'waiting';
  done: Promise<void>;
}

export class DownloadManager extends EventEmitter<{ notification: [Notification, Gid] }> {
  readonly queue = new DownloadQueue();
  private readonly running = new Map<Gid, Running>();
  private global: GlobalOptions;
  private readonly limit: RateLimit;
  private saveTimer: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(private readonly opts: DownloadManagerOptions) {
    super();
    this.global = { ...opts.global };
    this.limit = new RateLimit(() => this.global.maxOverallDownloadLimit);
  }

  /** Loads the session file; unfinished jobs are queued again (those that were running first). */
  async start(): Promise<void> {
    const s = await this.opts.store.load();
    this.queue.stoppedTotal = s.stoppedTotal;
    const wasActive = s.jobs.filter((j) => j.status === 'active');
    for (const j of wasActive) this.queue.add({ ...j, status: 'waiting' });
    for (const j of s.jobs) if (j.status !== 'active') this.queue.add(j);
    if (s.jobs.length > 0) {
      this.opts.logger.info(
        `rpc: ${s.jobs.length} download(s) from ${this.opts.store.path} (${wasActive.length} resumed)`,
      );
    }
    this.progressTimer = setInterval(() => {
      if (this.running.size > 0) this.save();
    }, this.opts.saveIntervalMs ?? 5000);
    this.progressTimer.unref();
    this.schedule();
  }

  /** Aborts running jobs (they stay queued for the next start) and saves the session. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.progressTimer);
    clearTimeout(this.saveTimer);
    const runs = [...this.running.values()];
    for (const r of runs) {
      r.stopAs ??= 'waiting';
      r.ctl.abort();
    }
    await Promise.allSettled(runs.map((r) => r.done));
    await this.opts.store.save(this.session());
  }

  get globalOptions(): GlobalOptions {
    return { ...this.global };
  }

  live(gid: Gid): LiveJob | undefined {
    return this.running.get(gid)?.live;
  }

  add(uris: string[], input: Record<string, unknown>, position?: number): Gid {
    for (const u of uris) {
      let url: URL;
      try {
        url = new URL(u);
      } catch {
        throw fail('No URI to download.');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw fail(`linkmux downloads http and https URIs only: ${redactUrl(url)}`);
      }
    }
    if (uris.length === 0) throw fail('No URI to download.');
    const options = jobOptions(input, this.global);
    const paused = input.pause === 'true';
    const rec: JobRecord = {
      gid: newGid((g) => this.queue.has(g)),
      uris: [...uris],
      options,
      status: paused ? 'paused' : 'waiting',
      totalLength: 0,
      completedLength: 0,
    };
    this.queue.add(rec, position);
    this.opts.logger.info(`rpc: added ${rec.gid} ${redactUrl(uris[0] as string)}`);
    this.changed();
    return rec.gid;
  }

  pause(gid: Gid): Gid {
    const rec = this.queue.find(gid);
    if (rec.status === 'waiting') {
      this.queue.setStatus(gid, 'paused');
    } else if (rec.status === 'active') {
      this.queue.setStatus(gid, 'paused', true);
      const r = this.running.get(gid);
      if (r) {
        r.stopAs = 'paused';
        r.ctl.abort();
      }
    } else {
      throw fail(`GID#${gid} cannot be paused now`);
    }
    this.emit('notification', 'aria2.onDownloadPause', gid);
    this.changed();
    return gid;
  }

  pauseAll(): void {
    for (const r of [...this.queue.activeList(), ...this.queue.waitingList()]) {
      if (r.status !== 'paused') this.pause(r.gid);
    }
  }

  unpause(gid: Gid): Gid {
    const rec = this.queue.find(gid);
    if (rec.status !== 'paused') throw fail(`GID#${gid} cannot be unpaused now`);
    this.queue.setStatus(gid, 'waiting');
    this.changed();
    return gid;
  }

  unpauseAll(): void {
    for (const r of this.queue.waitingList())
      if (r.status === 'paused') this.queue.setStatus(r.gid, 'waiting');
    this.changed();
  }

  remove(gid: Gid): Gid {
    const rec = this.queue.find(gid);
    if (rec.status === 'complete' || rec.status === 'error' || rec.status === 'removed') {
      throw fail(`Active Download not found for GID#${gid}`);
    }
    const r = this.running.get(gid);
    if (r) {
      r.stopAs = 'removed';
      r.ctl.abort();
      this.queue.setStatus(gid, 'removed');
    } else if (rec.status === 'active') {
      this.queue.setStatus(gid, 'removed');
    } else {
      // Like aria2: a download removed before it runs leaves no result (its partial files stay).
      this.queue.drop(gid);
    }
    this.emit('notification', 'aria2.onDownloadStop', gid);
    this.changed();
    return gid;
  }

  removeResult(gid: Gid): void {
    this.queue.removeResult(gid);
    this.changed();
  }

  purge(): void {
    this.queue.purge();
    this.changed();
  }

  move(gid: Gid, pos: number, how: PositionHow): number {
    const at = this.queue.move(gid, pos, how);
    this.changed();
    return at;
  }

  changeOption(gid: Gid, input: Record<string, unknown>): void {
    const rec = this.queue.find(gid);
    if (rec.status === 'complete' || rec.status === 'error' || rec.status === 'removed') {
      throw fail(`Cannot change option for GID#${gid}: not active or waiting`);
    }
    // dir/out of a job that already chose its file would orphan the partial data: kept.
    const next = jobOptions(input, this.global, rec.options);
    if (rec.output) {
      next.dir = rec.options.dir;
      if (rec.options.out !== undefined) next.out = rec.options.out;
      else delete next.out;
    }
    rec.options = next;
    this.changed();
  }

  changeGlobal(input: Record<string, unknown>): void {
    this.global = applyGlobal(this.global, input);
    this.changed();
  }

  /** aria2's saveSession: the session file is always kept, this forces a write now. */
  async saveNow(): Promise<void> {
    await this.opts.store.save(this.session());
  }

  stats() {
    let speed = 0;
    for (const r of this.running.values()) speed += r.live.speed;
    return {
      downloadSpeed: speed,
      numActive: this.queue.activeList().length,
      numWaiting: this.queue.waitingList().length,
      numStopped: this.queue.stoppedList().length,
      numStoppedTotal: this.queue.stoppedTotal,
    };
  }

  private session() {
    return { stoppedTotal: this.queue.stoppedTotal, jobs: this.queue.all() };
  }

  private changed(): void {
    this.schedule();
    this.save();
  }

  /** Coalesces saves: at most one write per 200 ms. */
  private save(): void {
    if (this.saveTimer || this.stopping) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.opts.store.save(this.session());
    }, 200);
  }

  private schedule(): void {
    if (this.stopping) return;
    this.queue.trimStopped(this.opts.maxResults ?? 1000);
    for (const rec of this.queue.toStart(this.global.maxConcurrentDownloads)) {
      if (!this.running.has(rec.gid)) this.launch(rec);
    }
  }

  private launch(rec: JobRecord): void {
    const gid = rec.gid;
    this.queue.setStatus(gid, 'active');
    const live: LiveJob = { done: rec.completedLength, speed: 0, connections: 0, links: [] };
    const ctl = new AbortController();
    const run: Running = { ctl, live, done: Promise.resolve() };
    this.running.set(gid, run);
    this.emit('notification', 'aria2.onDownloadStart', gid);
    run.done = this.runJob(rec, live, ctl.signal).then(
      () => this.finished(rec, run, undefined),
      (err: unknown) => this.finished(rec, run, err),
    );
  }

  private async runJob(rec: JobRecord, live: LiveJob, signal: AbortSignal): Promise<void> {
    const links = this.opts.links();
    if (links.length === 0) throw new LinkmuxError('LINKMUX_ERR_NO_LINKS', 'no usable link to download over');
    const o = rec.options;
    const output = rec.output ?? o.out;
    const dir = rec.output
      ? dirname(rec.output)
      : o.out !== undefined
        ? dirname(resolve(o.dir, o.out))
        : o.dir;
    await mkdir(dir, { recursive: true }).catch((err: unknown) => {
      throw new LinkmuxError('LINKMUX_ERR_IO', `cannot create the directory ${dir}: ${describe(err)}`, {
        cause: err,
      });
    });
    const progress: ProgressSink = {
      start: (info) => {
        rec.output = info.output;
        rec.totalLength = info.size ?? 0;
        rec.ranged = info.ranges;
        this.save();
      },
      update: (s) => {
        live.done = s.done;
        live.speed = s.rate;
        live.connections = s.links.reduce((n, l) => n + l.active, 0);
        live.links = s.links;
        if (s.ranges) live.ranges = s.ranges;
        rec.completedLength = s.done;
        if (s.ranges) rec.done = s.ranges;
        if (s.size !== undefined) rec.totalLength = s.size;
      },
      notice: (m) => this.opts.logger.debug(`rpc: ${rec.gid}: ${m}`),
      finish: (summary) => {
        rec.completedLength = summary.size;
        rec.totalLength = summary.size;
      },
      abort: () => {},
    };
    const run = this.opts.run ?? (await import('../download/downloader.js')).download;
    await run({
      urls: rec.uris,
      links,
      output,
      // An absolute output (chosen on a previous start) ignores dir.
      dir: rec.output ? undefined : o.dir,
      continue: true,
      // A server without Range support cannot resume: its partial file is started over.
      overwrite: rec.ranged === false,
      connectionsPerLink: o.connectionsPerLink,
      checksum: o.checksum,
      ...(Object.keys(o.headers).length > 0 ? { headers: o.headers } : {}),
      throttle: (n) => this.limit.take(n),
      ...(this.opts.connectTimeoutMs ? { connectTimeoutMs: this.opts.connectTimeoutMs } : {}),
      progress,
      signal,
    });
  }

  private finished(rec: JobRecord, run: Running, err: unknown): void {
    const gid = rec.gid;
    this.running.delete(gid);
    run.live.speed = 0;
    const inQueue = this.queue.get(gid) === rec;
    if (err === undefined) {
      if (inQueue) this.queue.setStatus(gid, 'complete');
      else rec.status = 'complete';
      rec.completedLength = rec.totalLength;
      this.opts.logger.info(`rpc: ${gid} complete: ${rec.output ?? ''}`);
      this.emit('notification', 'aria2.onDownloadComplete', gid);
    } else if (run.stopAs === 'waiting') {
      if (inQueue) this.queue.setStatus(gid, 'waiting', true);
    } else if (run.stopAs === undefined) {
      rec.errorCode = aria2ErrorCode(
        isLinkmuxError(err) ? err.code : undefined,
        err instanceof HttpStatusError ? err.status : undefined,
      );
      rec.errorMessage = describe(err);
      if (inQueue) this.queue.setStatus(gid, 'error');
      this.opts.logger.warn(`rpc: ${gid} failed: ${rec.errorMessage}`);
      this.emit('notification', 'aria2.onDownloadError', gid);
    }
    // stopAs 'paused' / 'removed': the record already moved when the call was made.
    this.changed();
  }

  /** For status views: the status a record shows. */
  statusOf(gid: Gid): JobStatus | undefined {
    return this.queue.get(gid)?.status;
  }
}
