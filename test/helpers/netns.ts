/** Shared bits of the netns tier: the root check (loud when skipping) and the built CLI's path. */
import { fileURLToPath } from 'node:url';

export function isRoot(): boolean {
  return process.platform === 'linux' && process.getuid?.() === 0;
}

/** false when the netns tier can run; otherwise the reason, printed loudly once. */
export function skipReason(): string | false {
  if (isRoot()) return false;
  const why = 'NETNS TIER SKIPPED: needs Linux and root to create network namespaces';
  if (!warned) {
    warned = true;
    console.error(`\n*** ${why} ***\n`);
  }
  return why;
}
let warned = false;

/** dist/src/cli/main.js, from dist/test/helpers/netns.js. */
export function cliPath(): string {
  return fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
}
