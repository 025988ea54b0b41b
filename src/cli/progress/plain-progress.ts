/**
 * Progress for logs (stderr is not a terminal): a line every few seconds,
 * notices as they come, and the closing summary. `--json` uses jsonProgress.
 */
import type { ProgressSink } from '../../download/progress.js';
import { formatBytes, formatRate } from '../../util/format.js';
import { summaryLines } from './summary.js';

export function plainProgress(
  write: (s: string) => void = (s) => process.stderr.write(s),
  everyMs = 5_000,
): ProgressSink {
  let last = 0;
  return {
    start(info) {
      write(
        `linkmux: ${info.url} → ${info.output} (${info.size !== undefined ? formatBytes(info.size) : 'size unknown'}) over ${info.links.join(', ')}\n`,
      );
    },
    update(s) {
      if (s.elapsedMs - last < everyMs) return;
      last = s.elapsedMs;
      const pct = s.size ? ` (${((100 * s.done) / s.size).toFixed(1)}%)` : '';
      const links = s.links.map((l) => `${l.id} ${formatRate(l.rate)}`).join(', ');
      write(`linkmux: ${formatBytes(s.done)}${pct} at ${formatRate(s.rate)} [${links}]\n`);
    },
    notice: (m) => write(`linkmux: ${m}\n`),
    finish: (summary) => {
      for (const line of summaryLines(summary)) write(`${line}\n`);
    },
    abort: () => {},
  };
}

/** One JSON object per line on stdout: {"event":"start"|"progress"|"notice"|"done", …}. */
export function jsonProgress(
  write: (s: string) => void = (s) => process.stdout.write(s),
  everyMs = 1_000,
): ProgressSink {
  let last = -Infinity;
  const emit = (event: string, data: object) => write(`${JSON.stringify({ event, ...data })}\n`);
  return {
    start: (info) => emit('start', info),
    update(s) {
      if (s.elapsedMs - last < everyMs) return;
      last = s.elapsedMs;
      emit('progress', s);
    },
    notice: (message) => emit('notice', { message }),
    finish: (summary) => emit('done', summary),
    abort: () => {},
  };
}
