/**
 * Shared bits of the netns tier: may it run here (root, Linux, the system tools
 * it drives), loud when it may not, and the built CLI's path.
 *
 * `npm test` installs missing tools first where it can (scripts/system-deps.sh,
 * as root on Debian/Ubuntu); where it cannot, only the tests that need a missing
 * tool are skipped, each file naming the tool — never silently.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What every netns test drives: the testbed (ip, tc, nft) and curl. */
export const BASE_TOOLS = ['ip', 'tc', 'nft', 'curl'] as const;

export function isRoot(): boolean {
  return process.platform === 'linux' && process.getuid?.() === 0;
}

/** Tools of `tools` not found on PATH. */
export function missingTools(tools: readonly string[]): string[] {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  return tools.filter(
    (tool) =>
      !dirs.some((dir) => {
        try {
          accessSync(path.join(dir, tool), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      }),
  );
}

/** True when the netns tests that need `extra` (besides the base tools) can run here. */
export function netnsReady(extra: readonly string[] = []): boolean {
  return skipReason(extra) === false;
}

const warned = new Set<string>();

/** false when the netns tests needing `extra` can run; otherwise the reason, printed loudly once. */
export function skipReason(extra: readonly string[] = []): string | false {
  let why: string | undefined;
  if (!isRoot()) {
    why = 'NETNS TIER SKIPPED: needs Linux and root to create network namespaces';
  } else {
    const missing = missingTools([...BASE_TOOLS, ...extra]);
    if (missing.length > 0) {
      why =
        `NETNS TESTS SKIPPED: missing ${missing.join(', ')}; ` +
        'install them with scripts/system-deps.sh (Debian/Ubuntu) or your package manager';
    }
  }
  if (why === undefined) return false;
  if (!warned.has(why)) {
    warned.add(why);
    console.error(`\n*** ${why} ***\n`);
  }
  return why;
}

/** dist/src/cli/main.js, from dist/test/helpers/netns.js. */
export function cliPath(): string {
  return fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
}
