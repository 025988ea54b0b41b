// The daemon's status stream (GET /events, server-sent events, one frame a second)
// and the last five minutes of each link's rates for the charts.
//
// EventSource reconnects by itself after the daemon restarts (the server sends
// `retry:`); when the browser gives up (a 503 or a refused first connect closes
// it for good) this opens a new one, backing off to 10 s.

export const HISTORY_SECONDS = 300;

/** Calls onStatus(status) per frame and onState('live' | 'reconnecting'); returns a stop function. */
export function subscribe(url, { onStatus, onState }) {
  let source;
  let timer;
  let backoff = 1000;
  const open = () => {
    source = new EventSource(url);
    source.onopen = () => {
      backoff = 1000;
      onState('live');
    };
    source.onmessage = (ev) => {
      onState('live');
      onStatus(JSON.parse(ev.data));
    };
    source.onerror = () => {
      onState('reconnecting');
      if (source.readyState === EventSource.CLOSED) {
        timer = setTimeout(open, backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    };
  };
  open();
  return () => {
    clearTimeout(timer);
    source.close();
  };
}

/**
 * Rates per link over the last HISTORY_SECONDS, in bits per second, on one time
 * axis (seconds) shared by every link, in the column layout uPlot takes. A link
 * that appears later has nulls before it did. A daemon restart (another
 * startedAt) starts a new history: its counters and links start over.
 */
export class RateHistory {
  constructor() {
    this.reset(undefined);
  }

  reset(startedAt) {
    this.startedAt = startedAt;
    this.times = [];
    this.links = new Map();
  }

  push(status, now = Date.now() / 1000) {
    if (status.startedAt !== this.startedAt) this.reset(status.startedAt);
    const n = this.times.length;
    this.times.push(now);
    for (const link of status.links) {
      let h = this.links.get(link.id);
      if (h === undefined) {
        h = { in: new Array(n).fill(null), out: new Array(n).fill(null) };
        this.links.set(link.id, h);
      }
      h.in.push(link.rateIn * 8);
      h.out.push(link.rateOut * 8);
    }
    for (const h of this.links.values()) {
      if (h.in.length < this.times.length) {
        h.in.push(null);
        h.out.push(null);
      }
    }
    let drop = 0;
    while (drop < this.times.length && this.times[drop] < now - HISTORY_SECONDS) drop++;
    if (drop > 0) {
      this.times.splice(0, drop);
      for (const h of this.links.values()) {
        h.in.splice(0, drop);
        h.out.splice(0, drop);
      }
    }
  }

  /** [times, in, out] for uPlot. */
  series(id) {
    const h = this.links.get(id);
    return h === undefined ? [[], [], []] : [this.times, h.in, h.out];
  }
}
