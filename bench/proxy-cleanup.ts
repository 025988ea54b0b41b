/**
 * bench:proxy's cleanups: everything a part starts registers its stop here, and
 * it runs once, from the part's `finally` or from SIGINT/SIGTERM.
 */

// ── cleanup, also on SIGINT/SIGTERM ─────────────────────────────────────────

const cleanups: (() => Promise<void>)[] = [];
let stopping = false;

export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups[cleanups.length - 1] as () => Promise<void>;
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup: ${String(err)}`);
    }
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${sig}: cleaning up (curls, daemons, relay, testbed)…`);
    setTimeout(() => process.exit(1), 30_000).unref();
    void runCleanups().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  });
}

/** Registers `fn` as a cleanup that runs at most once, from `finally` or from a signal. */
export function registerCleanup(fn: () => Promise<void>): { run: () => Promise<void> } {
  let running: Promise<void> | undefined;
  const run = () => {
    const i = cleanups.indexOf(run);
    if (i >= 0) cleanups.splice(i, 1);
    return (running ??= fn());
  };
  cleanups.push(run);
  return { run };
}

export function checkStopping(): void {
  if (stopping) throw new Error('interrupted');
}

// ── part 1: the testbed ─────────────────────────────────────────────────────
