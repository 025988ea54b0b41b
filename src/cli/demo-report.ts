/**
 * What `linkmux demo` prints about its two downloads. Both numbers come from
 * the downloads' own summaries (`linkmux get --json`, its `done` event): bytes
 * over the transfer's time, the same mean `linkmux get` prints. The demo once
 * also timed the child process from outside (Node start-up and link discovery
 * included) and printed that too, so one run showed two different means.
 */
import type { DownloadSummary } from '../download/progress.js';
import { LinkmuxError } from '../util/errors.js';
import { formatBytes, formatRate } from '../util/format.js';

/** The `done` summary among `linkmux get --json` output lines. */
export function doneSummary(jsonLines: string): DownloadSummary {
  for (const line of jsonLines.split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    const event = JSON.parse(line) as { event?: string } & DownloadSummary;
    if (event.event === 'done') return event;
  }
  throw new LinkmuxError('LINKMUX_ERR_COMMAND_FAILED', 'the demo download printed no summary');
}

/** One line per download (rate and time), then each link's share of the multi-link run, then the ratio. */
export function demoResultLines(one: DownloadSummary, all: DownloadSummary, links: number): string[] {
  const rate = (s: DownloadSummary) => `${formatRate(s.meanRate)} mean (${s.seconds.toFixed(1)} s)`;
  const width = Math.max(4, ...all.links.map((l) => l.id.length));
  const shares = all.links.map((l) => {
    const pct = all.fetched > 0 ? ((100 * l.bytes) / all.fetched).toFixed(0) : '0';
    return `      ${l.id.padEnd(width)} ${formatBytes(l.bytes).padStart(10)} ${pct.padStart(3)}%`;
  });
  const ratio = one.meanRate > 0 ? all.meanRate / one.meanRate : 0;
  return [
    `    one link: ${rate(one)}`,
    `    all ${links} links: ${rate(all)}`,
    ...shares,
    `linkmux was ${ratio.toFixed(2)}× faster than one link (ideal: ${links}×)`,
  ];
}
