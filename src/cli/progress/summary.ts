/** The closing summary of a download, as text lines (shared by the terminal and plain displays). */
import type { DownloadSummary } from '../../download/progress.js';
import { formatBytes, formatDuration, formatRate } from '../../util/format.js';

export function summaryLines(s: DownloadSummary): string[] {
  const lines = [
    `saved ${s.output} (${formatBytes(s.size)}) in ${formatDuration(s.seconds)}, ${formatRate(s.meanRate)} mean` +
      (s.resumedBytes > 0 ? `, ${formatBytes(s.resumedBytes)} resumed` : ''),
  ];
  const width = Math.max(4, ...s.links.map((l) => l.id.length));
  for (const l of s.links) {
    const share = s.fetched > 0 ? ((100 * l.bytes) / s.fetched).toFixed(1) : '0.0';
    lines.push(
      `  ${l.id.padEnd(width)}  ${formatBytes(l.bytes).padStart(10)}  ${share.padStart(5)}%  ${formatRate(l.meanRate).padStart(12)}` +
        (l.failed ? '  (failed)' : ''),
    );
  }
  if (s.checksum) lines.push(`  checksum ok: ${s.checksum}`);
  return lines;
}
