// Downloads, driven entirely through aria2's JSON-RPC methods the way AriaNg
// drives aria2: tellActive + tellWaiting + tellStopped + getGlobalStat once a
// second, addUri, pause, unpause, remove, removeDownloadResult. So the section
// works with linkmux's /jsonrpc and with a real aria2c alike.
//
// Polling stops when there is no RPC at the endpoint (a daemon without it) or
// the secret is refused, until the user retries or changes the secret: a page
// left open does not hammer a daemon with requests that cannot succeed.
import { html, Component } from './html.js';
import { Aria2 } from './aria2.js';
import { bytes, duration, rate } from './format.js';

const KEYS = [
  'gid',
  'status',
  'totalLength',
  'completedLength',
  'downloadSpeed',
  'connections',
  'errorCode',
  'errorMessage',
  'files',
  'dir',
];
const POLL_MS = 1000;
const SECRET_KEY = 'linkmux.rpcSecret';
const PAGE = 100;

export class Downloads extends Component {
  constructor(props) {
    super(props);
    this.state = {
      items: [],
      global: undefined,
      problem: undefined,
      stopped: false,
      message: '',
      secret: readSecret(),
      url: '',
      dir: '',
      out: '',
    };
    this.rpc = new Aria2(props.endpoint, this.state.secret);
    this.failures = 0;
  }

  componentDidMount() {
    this.poll();
  }

  componentWillUnmount() {
    clearTimeout(this.timer);
    this.unmounted = true;
  }

  async poll() {
    clearTimeout(this.timer);
    let delay = POLL_MS;
    try {
      // One call first: a daemon without the RPC or a wrong secret costs one failed request, not four.
      const global = await this.rpc.call('aria2.getGlobalStat');
      const [active, waiting, stopped] = await Promise.all([
        this.rpc.call('aria2.tellActive', KEYS),
        this.rpc.call('aria2.tellWaiting', 0, PAGE, KEYS),
        this.rpc.call('aria2.tellStopped', 0, PAGE, KEYS),
      ]);
      this.failures = 0;
      this.setState({
        items: [...active, ...waiting, ...stopped],
        global,
        problem: undefined,
        stopped: false,
      });
    } catch (err) {
      const stop = err.kind === 'absent' || err.kind === 'unauthorized';
      this.failures++;
      delay = Math.min(POLL_MS * 2 ** this.failures, 10_000);
      this.setState({ problem: describeProblem(err, this.props.endpoint), stopped: stop });
      if (stop) return;
    }
    if (!this.unmounted) this.timer = setTimeout(() => this.poll(), delay);
  }

  retry = () => {
    this.failures = 0;
    this.poll();
  };

  setSecret = (ev) => {
    const secret = ev.target.value;
    writeSecret(secret);
    this.rpc = new Aria2(this.props.endpoint, secret);
    this.setState({ secret });
    this.retry();
  };

  add = async (ev) => {
    ev.preventDefault();
    const url = this.state.url.trim();
    if (url === '') return;
    const options = {};
    if (this.state.dir.trim() !== '') options.dir = this.state.dir.trim();
    if (this.state.out.trim() !== '') options.out = this.state.out.trim();
    try {
      const gid = await this.rpc.call('aria2.addUri', [url], options);
      this.setState({ url: '', out: '', message: `added ${gid}` });
      this.retry();
    } catch (err) {
      this.setState({ message: `not added: ${err.message}` });
    }
  };

  act = async (method, gid) => {
    try {
      await this.rpc.call(method, gid);
      this.setState({ message: '' });
    } catch (err) {
      this.setState({ message: `${method.replace('aria2.', '')} ${gid}: ${err.message}` });
    }
    this.retry();
  };

  render({ endpoint }, s) {
    const g = s.global;
    return html`<section class="downloads" data-rpc=${endpoint}>
      <header>
        <h2>Downloads</h2>
        ${g && html`<span class="summary">${globalSummary(g)}</span>`}
      </header>
      <form class="add" onSubmit=${this.add}>
        <input
          name="url"
          type="url"
          required
          placeholder="https://example.org/big.iso"
          value=${s.url}
          onInput=${(e) => this.setState({ url: e.target.value })}
        />
        <input
          name="dir"
          placeholder="directory (default: the daemon's)"
          value=${s.dir}
          onInput=${(e) => this.setState({ dir: e.target.value })}
        />
        <input
          name="out"
          placeholder="file name (optional)"
          value=${s.out}
          onInput=${(e) => this.setState({ out: e.target.value })}
        />
        <button type="submit">Add</button>
      </form>
      <details class="rpc" open=${s.problem !== undefined && s.stopped}>
        <summary>RPC: ${endpoint}</summary>
        <form onSubmit=${(e) => e.preventDefault()}>
          <label
            >secret
            <input
              name="secret"
              type="password"
              autocomplete="off"
              value=${s.secret}
              onChange=${this.setSecret}
          /></label>
        </form>
      </details>
      ${
        s.problem &&
        html`<p class="problem">
          ${s.problem} ${s.stopped && html`<button type="button" onClick=${this.retry}>Retry</button>`}
        </p>`
      }
      ${s.message && html`<p class="message">${s.message}</p>`}
      ${s.items.length === 0 && s.problem === undefined && html`<p class="empty">No downloads.</p>`}
      <ul class="list">
        ${s.items.map((d) => html`<${DownloadRow} key=${d.gid} d=${d} act=${this.act} />`)}
      </ul>
    </section>`;
  }
}

function DownloadRow({ d, act }) {
  const total = Number(d.totalLength);
  const done = Number(d.completedLength);
  const speed = Number(d.downloadSpeed);
  const pct = total > 0 ? (100 * done) / total : 0;
  const file = d.files?.[0];
  const name = (file?.path && file.path.split('/').pop()) || file?.uris?.[0]?.uri || d.gid;
  const finished = d.status === 'complete' || d.status === 'error' || d.status === 'removed';
  return html`<li
    class="download"
    data-gid=${d.gid}
    data-status=${d.status}
    data-completed=${done}
    data-total=${total}
  >
    <div class="line">
      <strong class="name" title=${file?.path ?? ''}>${name}</strong>
      <span class="badge ${d.status}">${d.status}</span>
      <span class="actions">
        ${
          d.status === 'active' || d.status === 'waiting'
            ? html`<button type="button" data-action="pause" onClick=${() => act('aria2.pause', d.gid)}>
                Pause
              </button>`
            : null
        }
        ${
          d.status === 'paused'
            ? html`<button type="button" data-action="resume" onClick=${() => act('aria2.unpause', d.gid)}>
                Resume
              </button>`
            : null
        }
        ${
          finished
            ? html`<button
                type="button"
                data-action="clear"
                onClick=${() => act('aria2.removeDownloadResult', d.gid)}
              >
                Clear
              </button>`
            : html`<button type="button" data-action="remove" onClick=${() => act('aria2.remove', d.gid)}>
                Remove
              </button>`
        }
      </span>
    </div>
    <progress max="100" value=${pct}></progress>
    <div class="line small">
      <span>${pct.toFixed(1)} % of ${total > 0 ? bytes(total) : 'unknown size'} (${bytes(done)})</span>
      ${d.status === 'active' && html`<span>${activeLine(d, total, done, speed)}</span>`}
      ${d.status === 'error' && html`<span class="problem">error ${d.errorCode}: ${d.errorMessage}</span>`}
      ${d.status === 'complete' && file?.path && html`<span>saved as ${file.path}</span>`}
    </div>
  </li>`;
}

function globalSummary(g) {
  return `${rate(Number(g.downloadSpeed))} · ${g.numActive} active · ${g.numWaiting} waiting · ${g.numStopped} stopped`;
}

function activeLine(d, total, done, speed) {
  const eta = duration(speed > 0 ? (total - done) / speed : NaN);
  return `${rate(speed)} · ${d.connections} connections · ETA ${eta}`;
}

function describeProblem(err, endpoint) {
  switch (err.kind) {
    case 'absent':
      return `No aria2 RPC at ${endpoint}: this daemon does not serve one (enable rpc in its config), or open /?rpc=URL.`;
    case 'unauthorized':
      return 'The RPC refused the secret: set it under "RPC" above.';
    case 'unreachable':
      return `The RPC at ${endpoint} does not answer; retrying.`;
    default:
      return `RPC error: ${err.message}`;
  }
}

function readSecret() {
  try {
    return localStorage.getItem(SECRET_KEY) ?? '';
  } catch {
    return '';
  }
}

function writeSecret(secret) {
  try {
    if (secret === '') localStorage.removeItem(SECRET_KEY);
    else localStorage.setItem(SECRET_KEY, secret);
  } catch {
    // Storage disabled: the secret lasts as long as the page.
  }
}
