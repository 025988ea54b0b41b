// The linkmux dashboard: the daemon's links from the status stream (/events) and
// its downloads through the aria2 JSON-RPC (/jsonrpc, or /?rpc=URL).
import { html, render, Component } from './html.js';
import { Links, MptcpPaths } from './links.js';
import { Downloads } from './downloads.js';
import { RateHistory, subscribe } from './status-feed.js';
import { duration, rate } from './format.js';

const rpcEndpoint = new URLSearchParams(location.search).get('rpc') ?? 'jsonrpc';

class App extends Component {
  constructor(props) {
    super(props);
    this.state = { status: undefined, conn: 'connecting', tick: 0 };
    this.history = new RateHistory();
  }

  componentDidMount() {
    this.stop = subscribe('events', {
      onStatus: (status) => {
        this.history.push(status);
        this.setState({ status, tick: this.state.tick + 1 });
      },
      onState: (conn) => {
        if (conn !== this.state.conn) this.setState({ conn });
      },
    });
  }

  componentWillUnmount() {
    this.stop?.();
  }

  render(_props, { status, conn, tick }) {
    return html`<header class="top">
        <h1>linkmux</h1>
        <span class="conn ${conn}" data-conn=${conn}>${CONN_TEXT[conn]}</span>
        ${status && html`<${Summary} status=${status} />`}
      </header>
      <main>
        <section>
          <h2>Links</h2>
          ${
            status === undefined
              ? html`<p class="empty">Waiting for the daemon…</p>`
              : html`<${Links} status=${status} history=${this.history} tick=${tick} />`
          }
        </section>
        ${status && html`<${MptcpPaths} mptcp=${status.mptcp} />`}
        <${Downloads} endpoint=${rpcEndpoint} />
      </main>`;
  }
}

const CONN_TEXT = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'daemon unreachable, reconnecting…',
};

function Summary({ status }) {
  const rateIn = status.links.reduce((sum, l) => sum + l.rateIn, 0);
  const rateOut = status.links.reduce((sum, l) => sum + l.rateOut, 0);
  const c = status.connections;
  const node = status.node;
  return html`<span class="summary" data-started=${status.startedAt}>
    v${status.version} · up ${duration(status.uptimeSeconds)} · policy ${status.policy} · ↓ ${rate(rateIn)} ↑
    ${rate(rateOut)} · ${c.active} connections (${c.total} total, ${c.failed} failed)
    ${node && ` · lending ${node.lends.length} links to ${node.relayed.active} relayed connections`}
  </span>`;
}

render(html`<${App} />`, document.getElementById('app'));
