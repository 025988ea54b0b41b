/**
 * The RPC's download list on disk (`<stateDir>/rpc-session.json`), so a
 * restarted daemon lists finished results and resumes unfinished jobs. The
 * bytes themselves are the engine's business (`<out>.part` + `<out>.linkmux`);
 * this file only says which jobs exist, their options and their state.
 *
 * Guarantees: written atomically (temp file, fsync, rename) with mode 0600
 * (request headers such as cookies may be in it); a corrupt file is moved aside
 * (`.corrupt`) with a warning rather than stopping the daemon.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { systemCode, describe } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { GID_RE } from './aria2-values.js';
import type { JobRecord } from './queue.js';

export const SESSION_FILE = 'rpc-session.json';

const recordSchema = z.object({
  gid: z.string().regex(GID_RE),
  uris: z.array(z.string()).min(1),
  options: z.object({
    dir: z.string(),
    out: z.string().optional(),
    connectionsPerLink: z.number().int().min(1).max(16),
    checksum: z.object({ algorithm: z.string(), hex: z.string() }).optional(),
    headers: z.record(z.string(), z.string()),
    raw: z.record(z.string(), z.string()),
  }),
  status: z.enum(['active', 'waiting', 'paused', 'complete', 'error', 'removed']),
  output: z.string().optional(),
  finalUri: z.string().optional(),
  totalLength: z.number().nonnegative(),
  completedLength: z.number().nonnegative(),
  ranged: z.boolean().optional(),
  done: z.array(z.object({ start: z.number(), end: z.number() })).optional(),
  errorCode: z.string().optional(),
  errorMessage: z.string().optional(),
});

const sessionSchema = z.object({
  format: z.literal('linkmux-rpc-session'),
  version: z.literal(1),
  stoppedTotal: z.number().int().nonnegative(),
  jobs: z.array(recordSchema),
});

export interface Session {
  stoppedTotal: number;
  /** Active first, then the waiting queue in order, then stopped oldest first. */
  jobs: JobRecord[];
}

export class SessionStore {
  readonly path: string;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {
    this.path = join(dir, SESSION_FILE);
  }

  async load(): Promise<Session> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if (systemCode(err) === 'ENOENT') return { stoppedTotal: 0, jobs: [] };
      throw err;
    }
    try {
      const doc = sessionSchema.parse(JSON.parse(text));
      return { stoppedTotal: doc.stoppedTotal, jobs: doc.jobs as JobRecord[] };
    } catch (err) {
      const aside = `${this.path}.corrupt`;
      this.logger.warn(`rpc: ${this.path} is corrupt (${describe(err)}); moved to ${aside}, starting empty`);
      await rename(this.path, aside).catch(() => {});
      return { stoppedTotal: 0, jobs: [] };
    }
  }

  /** Queues a write of `session`; writes never overlap and the last one wins. */
  save(session: Session): Promise<void> {
    const text = `${JSON.stringify({ format: 'linkmux-rpc-session', version: 1, ...session })}\n`;
    this.writing = this.writing
      .then(() => this.write(text))
      .catch((err: unknown) => {
        this.logger.warn(`rpc: cannot save ${this.path}: ${describe(err)}`);
      });
    return this.writing;
  }

  private async write(text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
  }
}
