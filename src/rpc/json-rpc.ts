/**
 * JSON-RPC 2.0 framing as aria2 speaks it: one request or a batch per message,
 * `token:SECRET` as the first parameter of every `aria2.*` method, and aria2's
 * error shapes (code 1 for a method's failure, "Unauthorized", "No such method:
 * NAME"; -32700 "Parse error." and -32600 "Invalid Request." for framing).
 *
 * Guarantees: the secret is compared in constant time and never appears in a
 * reply or a log line; a handler's unexpected exception becomes a code-1 error
 * without its stack; `system.multicall` runs each call through the same checks.
 */
import { timingSafeEqual, createHash } from 'node:crypto';

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/** aria2's "something went wrong in the method" error. */
export const fail = (message: string) => new RpcError(1, message);

export type Handler = (params: unknown[]) => unknown;

export interface MethodTable {
  readonly [name: string]: Handler;
}

export type JsonId = string | number | null;

export interface RpcResponse {
  id: JsonId;
  jsonrpc: '2.0';
  result?: unknown;
  error?: { code: number; message: string };
}

export interface Dispatcher {
  /** Answers one parsed message (an object or a batch). `status` is the HTTP status aria2 would send. */
  dispatch(message: unknown): Promise<{ body: RpcResponse | RpcResponse[]; status: number }>;
  /** Answers raw text (parse errors included). */
  dispatchText(text: string): Promise<{ body: RpcResponse | RpcResponse[]; status: number }>;
  readonly methodNames: readonly string[];
}

const NOTIFICATIONS = [
  'aria2.onDownloadStart',
  'aria2.onDownloadPause',
  'aria2.onDownloadStop',
  'aria2.onDownloadComplete',
  'aria2.onDownloadError',
  'aria2.onBtDownloadComplete',
] as const;

export function createDispatcher(methods: MethodTable, secret: string | undefined): Dispatcher {
  const secretHash = secret === undefined ? undefined : digest(`token:${secret}`);
  const names = [
    ...Object.keys(methods),
    'system.multicall',
    'system.listMethods',
    'system.listNotifications',
  ];

  /** Runs one call: token check for aria2.*, then the handler. Throws RpcError. */
  async function call(method: unknown, rawParams: unknown): Promise<unknown> {
    if (typeof method !== 'string') throw new RpcError(-32600, 'Invalid Request.');
    if (rawParams !== undefined && !Array.isArray(rawParams)) throw new RpcError(-32602, 'Invalid params.');
    const params = [...((rawParams as unknown[] | undefined) ?? [])];
    if (method === 'system.listMethods') return [...names];
    if (method === 'system.listNotifications') return [...NOTIFICATIONS];
    if (method === 'system.multicall') return multicall(params);
    if (method.startsWith('aria2.')) {
      // aria2 strips a token parameter even when no secret is set.
      const first = params[0];
      const token = typeof first === 'string' && first.startsWith('token:') ? first : undefined;
      if (token !== undefined) params.shift();
      if (secretHash && !(token !== undefined && timingSafeEqual(digest(token), secretHash))) {
        throw fail('Unauthorized');
      }
    }
    const handler = Object.hasOwn(methods, method) ? methods[method] : undefined;
    if (!handler) throw fail(`No such method: ${method}`);
    try {
      return await handler(params);
    } catch (err) {
      if (err instanceof RpcError) throw err;
      throw fail(err instanceof Error ? err.message : String(err));
    }
  }

  async function multicall(params: unknown[]): Promise<unknown[]> {
    const calls = params[0];
    if (!Array.isArray(calls)) throw fail('The parameter at 0 has wrong type.');
    const out: unknown[] = [];
    for (const c of calls) {
      const o = (c ?? {}) as { methodName?: unknown; params?: unknown };
      try {
        if (o.methodName === 'system.multicall') throw fail('Recursive system.multicall forbidden.');
        out.push([await call(o.methodName, o.params)]);
      } catch (err) {
        out.push(errorOf(err));
      }
    }
    return out;
  }

  async function one(message: unknown): Promise<{ body: RpcResponse; status: number }> {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return { body: errorResponse(null, new RpcError(-32600, 'Invalid Request.')), status: 400 };
    }
    const m = message as { id?: unknown; method?: unknown; params?: unknown };
    const id = isId(m.id) ? m.id : null;
    try {
      const result = await call(m.method, m.params);
      return { body: { id, jsonrpc: '2.0', result }, status: 200 };
    } catch (err) {
      return { body: errorResponse(id, err), status: 400 };
    }
  }

  const dispatch: Dispatcher['dispatch'] = async (message) => {
    if (Array.isArray(message)) {
      const body: RpcResponse[] = [];
      for (const m of message) body.push((await one(m)).body);
      return { body, status: 200 };
    }
    return one(message);
  };

  return {
    methodNames: names,
    dispatch,
    async dispatchText(text) {
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        return { body: errorResponse(null, new RpcError(-32700, 'Parse error.')), status: 500 };
      }
      return dispatch(message);
    },
  };
}

function errorOf(err: unknown): { code: number; message: string } {
  if (err instanceof RpcError) return { code: err.code, message: err.message };
  return { code: 1, message: err instanceof Error ? err.message : String(err) };
}

function errorResponse(id: JsonId, err: unknown): RpcResponse {
  return { id, jsonrpc: '2.0', error: errorOf(err) };
}

function isId(v: unknown): v is JsonId {
  return typeof v === 'string' || typeof v === 'number' || v === null;
}

/** Equal-length digests, so timingSafeEqual never throws and length leaks nothing. */
function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** A notification frame, as aria2 pushes it over WebSocket. */
export function notification(method: string, gid: string): string {
  return JSON.stringify({ jsonrpc: '2.0', method, params: [{ gid }] });
}
