// A minimal aria2 JSON-RPC 2.0 client over HTTP POST: the calls AriaNg makes,
// with `token:SECRET` first when a secret is set. The endpoint is linkmux's own
// /jsonrpc unless the page was opened as /?rpc=URL (a loopback URL; the server's
// Content-Security-Policy admits that origin and no other).

export class RpcError extends Error {
  /** kind: 'absent' (no RPC at that endpoint), 'unreachable', 'unauthorized' or 'error'. */
  constructor(kind, message, code) {
    super(message);
    this.kind = kind;
    this.code = code;
  }
}

export class Aria2 {
  constructor(endpoint, secret = '') {
    this.endpoint = endpoint;
    this.secret = secret;
    this.seq = 0;
  }

  async call(method, ...params) {
    const body = {
      jsonrpc: '2.0',
      id: `lmx${++this.seq}`,
      method,
      params: this.secret ? [`token:${this.secret}`, ...params] : params,
    };
    let res;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (err) {
      throw new RpcError('unreachable', `cannot reach ${this.endpoint}: ${err.message}`);
    }
    if (res.status === 404 || res.status === 405) {
      throw new RpcError('absent', `no aria2 RPC at ${this.endpoint} (HTTP ${res.status})`);
    }
    let reply;
    try {
      reply = await res.json();
    } catch {
      throw new RpcError('error', `${this.endpoint} answered HTTP ${res.status} without JSON`);
    }
    if (reply.error) {
      const unauthorized = reply.error.message === 'Unauthorized';
      throw new RpcError(unauthorized ? 'unauthorized' : 'error', reply.error.message, reply.error.code);
    }
    return reply.result;
  }
}
