#!/usr/bin/env node
// Runs the test tiers in order on the compiled tests (dist/test): unit and
// integration in parallel, then the netns tier one file at a time (each file
// builds its own namespaces; serial runs keep the 2-core machine's shaping
// honest). The netns tier needs root and Linux: elsewhere it is skipped with a
// loud message, never silently. Pass tier names to run only those
// (node scripts/test.mjs unit integration).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const tiers = process.argv.slice(2);
const want = (t) => tiers.length === 0 || tiers.includes(t);
const run = (args) => spawnSync(process.execPath, args, { stdio: 'inherit' }).status ?? 1;
const common = ['--test', '--test-reporter=spec', '--test-timeout=600000'];
let status = 0;

const fast = ['unit', 'integration']
  .filter(want)
  .map((t) => `dist/test/${t}`)
  .filter((d) => existsSync(d));
if (fast.length > 0) status ||= run([...common, '--test-concurrency=2', ...fast]);

if (want('netns')) {
  const root = process.platform === 'linux' && process.getuid?.() === 0;
  if (!root) {
    console.error(
      '\n*** NETNS TIER SKIPPED: it needs Linux and root (network namespaces). CI runs it as root. ***\n',
    );
  } else if (existsSync('dist/test/netns')) {
    status ||= run([...common, '--test-concurrency=1', 'dist/test/netns']);
  }
}
process.exit(status);
