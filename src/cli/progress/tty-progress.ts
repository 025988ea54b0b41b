/**
 * The live display of `linkmux get` on a terminal: one bar for the file (done,
 * rate, ETA) and one line per link (bytes, rate, connections), redrawn in
 * place by cli-progress, then a closing summary table.
 */
import cliProgress from 'cli-progress';
import type { DownloadSummary, ProgressSink, ProgressSnapshot, StartInfo } from '../../download/progress.js';
import { formatBytes, formatDuration, formatRate } from '../../util/format.js';
import { summaryLines } from './summary.js';

export function ttyProgress(stream: NodeJS.WriteStream = process.stderr): ProgressSink {
  let multi: cliProgress.MultiBar | undefined;
  let total: cliProgress.SingleBar | undefined;
  const perLink = new Map<string, cliProgress.SingleBar>();
  const pendingNotices: string[] = [];
  return {
    start(info: StartInfo) {
      multi = new cliProgress.MultiBar(
        {
          stream,
          format: ' {name} {bar} {pct} {doneH}/{sizeH}  {rateH}  {eta}',
          barsize: 28,
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          autopadding: true,
          fps: 8,
        },
        cliProgress.Presets.shades_classic,
      );
      total = multi.create(info.size ?? 1, info.resumedBytes, blank('total'));
      for (const id of info.links) {
        perLink.set(id, multi.create(1, 0, blank(id), { format: ' {name} {info}' }));
      }
    },
    update(s: ProgressSnapshot) {
      const size = s.size ?? s.done;
      total?.setTotal(Math.max(size, 1));
      const eta = s.rate > 0 && s.size !== undefined ? formatDuration((s.size - s.done) / s.rate) : '--:--';
      total?.update(s.done, {
        name: 'total',
        pct: s.size ? `${((100 * s.done) / s.size).toFixed(1).padStart(5)}%` : '',
        doneH: formatBytes(s.done),
        sizeH: s.size !== undefined ? formatBytes(s.size) : '?',
        rateH: formatRate(s.rate),
        eta: `ETA ${eta}`,
      });
      for (const l of s.links) {
        perLink.get(l.id)?.update(0, {
          name: l.id,
          info: `${l.state.padEnd(6)} ${formatRate(l.rate).padStart(12)}  ${formatBytes(l.bytes).padStart(10)}  ${l.active} conn`,
        });
      }
      flushNotices();
    },
    notice(message: string) {
      pendingNotices.push(message);
      if (!multi) flushNotices();
    },
    finish(summary: DownloadSummary) {
      multi?.stop();
      flushNotices();
      for (const line of summaryLines(summary)) stream.write(`${line}\n`);
    },
    abort() {
      multi?.stop();
      flushNotices();
    },
  };

  function flushNotices() {
    while (pendingNotices.length > 0) {
      const m = `linkmux: ${pendingNotices.shift()}`;
      if (multi) multi.log(`${m}\n`);
      else stream.write(`${m}\n`);
    }
  }
}

function blank(name: string) {
  return { name, pct: '', doneH: '', sizeH: '', rateH: '', eta: '', info: '' };
}
