#!/usr/bin/env node
// Runs the test tiers in order on the compiled tests (dist/test). First, as root
// on Linux, it installs the system tools the netns tier drives when they are
// missing (scripts/system-deps.sh: apt-get on Debian/Ubuntu); elsewhere, or when
// that fails, the tests that need a missing tool are skipped, each naming it.
// Then unit and
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

if (want('netns') && process.platform === 'linux') {
  const script = new URL('./system-deps.sh', import.meta.url).pathname;
  const root = process.getuid?.() === 0;
  // As root: install what is missing. Otherwise only report (the netns tier is skipped anyway).
  const deps = spawnSync('bash', root ? [script] : [script, '--check'], { stdio: 'inherit' });
  if (root && deps.status !== 0) {
    console.error(
      '\n*** could not install every system tool: the netns tests that need one are skipped ***\n',
    );
  }
}

const fast = ['unit', 'integration']
  .filter(want)
  .map((t) => `dist/test/${t}`)
  .filter((d) => existsSync(d));
if (fast.length > 0) status = run([...common, '--test-concurrency=2', ...fast]) || status;

if (want('netns')) {
  const root = process.platform === 'linux' && process.getuid?.() === 0;
  if (!root) {
    console.error(
      '\n*** NETNS TIER SKIPPED: it needs Linux and root (network namespaces). CI runs it as root. ***\n',
    );
  } else if (existsSync('dist/test/netns')) {
    status = run([...common, '--test-concurrency=1', 'dist/test/netns']) || status;
  }
}
process.exit(status);
