/**
 * A light AbortController for the per-connection dial path (the SOCKS5
 * request, each link of a dial's race, each link's connect deadline).
 *
 * Why not Node's: on Node 20 every AbortSignal outlives V8's young-generation
 * GC (Node makes it from an EventTarget whose prototype it then changes, and
 * such objects are copied, then promoted, by each scavenge), so three signals
 * per connect were promoted to old space and cost ~3 µs each plus their share
 * of the full GCs that followed (docs/architecture.md, "Connect overhead").
 *
 * Its signal has what linkmux's dial code and `events.once(…, { signal })`
 * use: `aborted`, `reason`, `throwIfAborted()`, `onabort`, and
 * add/removeEventListener for 'abort' (listeners run once each, in order; a
 * listener added twice runs once; one added while the signal is already
 * aborted never runs, as with Node's).
 * It is not a branded AbortSignal: `AbortSignal.any`, undici and `fetch`
 * refuse it, so it must not leave the dial path; a signal that must reach
 * such an API is made with Node's AbortController.
 */

type AbortListener = (this: AbortSignal, ev: Event) => void;

class DialSignal {
  aborted = false;
  reason: unknown = undefined;
  onabort: AbortListener | null = null;
  private listeners: AbortListener[] | undefined;

  addEventListener(type: string, listener: AbortListener | null): void {
    if (type !== 'abort' || typeof listener !== 'function' || this.aborted) return;
    this.listeners ??= [];
    if (!this.listeners.includes(listener)) this.listeners.push(listener); // added twice: once, as with EventTarget
  }

  removeEventListener(type: string, listener: AbortListener | null): void {
    if (type !== 'abort' || !this.listeners) return;
    const i = this.listeners.indexOf(listener as AbortListener);
    if (i >= 0) this.listeners.splice(i, 1);
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** Runs the listeners once; a throwing one is reported like an uncaught error, the rest still run. */
  fire(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners ?? [];
    this.listeners = undefined;
    const event = { type: 'abort', target: this } as unknown as Event;
    const self = this as unknown as AbortSignal;
    for (const fn of [...(this.onabort ? [this.onabort] : []), ...listeners]) {
      try {
        fn.call(self, event);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}

export class DialAbort {
  private readonly light = new DialSignal();

  /** Typed as AbortSignal for the dial path's interfaces (see the module comment for its limits). */
  get signal(): AbortSignal {
    return this.light as unknown as AbortSignal;
  }

  abort(reason: unknown = abortError()): void {
    this.light.fire(reason);
  }
}

function abortError(): Error {
  return Object.assign(new Error('This operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}
