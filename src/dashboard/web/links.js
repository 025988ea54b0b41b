// Every link the daemon lists in /status (local, node, server or gateway uplinks
// alike): state and why, RTT, rates in and out with a chart of the last five
// minutes, connections, bytes, learned capacity, last failure.
import uPlot from './vendor/uplot.js';
import { html, Component } from './html.js';
import { ago, bits, bytes, rate } from './format.js';
import { HISTORY_SECONDS } from './status-feed.js';

export function Links({ status, history, tick }) {
  if (status.links.length === 0) {
    return html`<p class="empty">This daemon has no links.</p>`;
  }
  return html`<div class="links">
    ${status.links.map((link) => html`<${LinkCard} key=${link.id} link=${link} history=${history} tick=${tick} />`)}
  </div>`;
}

function LinkCard({ link, history, tick }) {
  const failure = link.lastFailure;
  return html`<article
    class="link"
    data-link=${link.id}
    data-state=${link.state}
    data-rate-in=${link.rateIn}
    data-rate-out=${link.rateOut}
  >
    <header>
      <h3>${link.id}</h3>
      <span class="badge ${link.state}" title=${link.stateReason ?? ''}>${link.state}</span>
    </header>
    <p class="desc">${link.description}</p>
    <p class="reason">${link.stateReason ?? 'no state change yet'} · since ${ago(link.since)}</p>
    <${RateChart} id=${link.id} history=${history} tick=${tick} />
    <dl class="stats">
      <div>
        <dt>in</dt>
        <dd class="rate-in">${rate(link.rateIn)}</dd>
      </div>
      <div>
        <dt>out</dt>
        <dd class="rate-out">${rate(link.rateOut)}</dd>
      </div>
      <div>
        <dt>RTT</dt>
        <dd>${link.rttMs === undefined ? '–' : `${Math.round(link.rttMs)} ms`}</dd>
      </div>
      <div>
        <dt>capacity</dt>
        <dd>${link.capacity === undefined ? 'learning' : rate(link.capacity)}</dd>
      </div>
      <div>
        <dt>connections</dt>
        <dd>${link.activeConnections}</dd>
      </div>
      <div>
        <dt>bytes in / out</dt>
        <dd>${bytes(link.bytesIn)} / ${bytes(link.bytesOut)}</dd>
      </div>
    </dl>
    <p class="failure">
      ${
        failure === undefined
          ? html`no failure${link.connectFailures > 0 ? ` (${link.connectFailures} failed connects)` : ''}`
          : html`last failure ${ago(failure.at)}: ${failure.reason} · ${link.connectFailures} failed connects`
      }
    </p>
  </article>`;
}

/**
 * `up --server`: the MPTCP paths to the server, one row per uplink (its endpoint,
 * open subflows and their bytes). Nothing when the status has no mptcp section.
 */
export function MptcpPaths({ mptcp }) {
  if (!mptcp) return null;
  return html`<section class="mptcp">
    <h2>MPTCP paths to ${mptcp.server}</h2>
    <table>
      <thead>
        <tr>
          <th>uplink</th>
          <th>address</th>
          <th>endpoint</th>
          <th>subflows</th>
          <th>bytes in / out</th>
        </tr>
      </thead>
      <tbody>
        ${mptcp.uplinks.map(
          (u) =>
            html`<tr
              key=${u.dev}
              data-uplink=${u.dev}
              data-endpoint=${u.endpoint}
              data-subflows=${u.subflows}
            >
              <td>${u.dev}</td>
              <td>${u.address}</td>
              <td>${u.endpoint ? 'yes' : u.inService ? 'no' : 'no (out of service)'}</td>
              <td class="num">${u.subflows}</td>
              <td class="num">${bytes(u.bytesIn)} / ${bytes(u.bytesOut)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

/** Seconds since the epoch → "14:05" in the browser's time zone. */
function clock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

const IN_COLOR = '#1f8a4c';
const OUT_COLOR = '#3566c8';

/** A uPlot chart of one link's rates, drawn once and fed new columns on every frame. */
class RateChart extends Component {
  componentDidMount() {
    const width = Math.max(200, this.base.clientWidth || 320);
    this.plot = new uPlot(options(width), this.props.history.series(this.props.id), this.base);
    this.resize = new ResizeObserver(() => {
      const w = this.base.clientWidth;
      if (w > 0 && w !== this.plot.width) this.plot.setSize({ width: w, height: this.plot.height });
    });
    this.resize.observe(this.base);
  }

  shouldComponentUpdate(next) {
    // uPlot owns the element's children; preact only hands it data.
    this.plot?.setData(next.history.series(next.id));
    return false;
  }

  componentWillUnmount() {
    this.resize?.disconnect();
    this.plot?.destroy();
  }

  render() {
    return html`<div class="chart" aria-label="rates of the last five minutes"></div>`;
  }
}

function options(width) {
  const axis = {
    stroke: '#777',
    grid: { stroke: '#eee', width: 1 },
    ticks: { show: false },
    font: '10px system-ui',
  };
  return {
    width,
    height: 110,
    legend: { show: false },
    cursor: { show: false },
    scales: {
      x: {
        time: true,
        range: (_u, _min, max) => {
          const end = max ?? Date.now() / 1000;
          return [end - HISTORY_SECONDS, end];
        },
      },
      y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, 1e6) * 1.1] },
    },
    axes: [
      { ...axis, size: 22, space: 70, values: (_u, ticks) => ticks.map(clock) },
      { ...axis, size: 62, values: (_u, ticks) => ticks.map((t) => bits(t)) },
    ],
    series: [
      {},
      { label: 'in', stroke: IN_COLOR, fill: 'rgba(31, 138, 76, 0.12)', width: 1.5, points: { show: false } },
      { label: 'out', stroke: OUT_COLOR, width: 1.5, points: { show: false } },
    ],
  };
}
