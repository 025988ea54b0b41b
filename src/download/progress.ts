/**
 * What the downloader reports while it works. The CLI turns these into a live
 * display, JSON lines or nothing; tests record them.
 */

export interface LinkProgress {
  id: string;
  /** Payload bytes this link delivered in this run. */
  bytes: number;
  /** Bytes/s over the last seconds (0 when idle or unknown). */
  rate: number;
  /** Connections of this link currently receiving a piece. */
  active: number;
  /** 'failed' once every connection of the link gave up. */
  state: 'active' | 'idle' | 'failed';
}

export interface ProgressSnapshot {
  elapsedMs: number;
  /** Bytes on disk, resumed bytes included. */
  done: number;
  size: number | undefined;
  rate: number;
  links: LinkProgress[];
  /** Byte ranges on disk ([start, end) each), when the download uses ranges. */
  ranges?: { start: number; end: number }[];
}

export interface StartInfo {
  url: string;
  output: string;
  size: number | undefined;
  resumedBytes: number;
  links: string[];
  ranges: boolean;
}

export interface LinkSummary {
  id: string;
  bytes: number;
  /** Mean rate while the download ran, bytes/s. */
  meanRate: number;
  failed: boolean;
}

export interface DownloadSummary {
  output: string;
  size: number;
  /** Bytes fetched in this run (excludes resumed bytes). */
  fetched: number;
  resumedBytes: number;
  seconds: number;
  meanRate: number;
  links: LinkSummary[];
  checksum?: string;
}

/**
 * The summary of a finished download, for ranged and single-stream jobs alike:
 * `fetched` is what this run moved (size − resumed), rates are means over `seconds`.
 */
export function buildSummary(r: {
  output: string;
  size: number;
  resumedBytes: number;
  seconds: number;
  links: ReadonlyArray<{ id: string; bytes: number; failed: boolean }>;
  checksum: string | undefined;
}): DownloadSummary {
  const rate = (bytes: number) => (r.seconds > 0 ? bytes / r.seconds : 0);
  const fetched = r.size - r.resumedBytes;
  return {
    output: r.output,
    size: r.size,
    fetched,
    resumedBytes: r.resumedBytes,
    seconds: r.seconds,
    meanRate: rate(fetched),
    links: r.links.map((l) => ({ id: l.id, bytes: l.bytes, meanRate: rate(l.bytes), failed: l.failed })),
    ...(r.checksum ? { checksum: r.checksum } : {}),
  };
}

export interface ProgressSink {
  start(info: StartInfo): void;
  update(snapshot: ProgressSnapshot): void;
  /** A notice for the user (fallbacks, links that failed, retries). */
  notice(message: string): void;
  finish(summary: DownloadSummary): void;
  /** The job ended with an error: tear the display down so the error is readable. */
  abort(): void;
}

export const nullProgress: ProgressSink = {
  start: () => {},
  update: () => {},
  notice: () => {},
  finish: () => {},
  abort: () => {},
};
