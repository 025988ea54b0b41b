#!/usr/bin/env node
// The README Quick start's first line ends here (`npm run demo`, after `npm ci`
// and the build): the system tools the demo drives (scripts/system-deps.sh),
// then `linkmux demo` as root — directly when root, through sudo otherwise. The
// node binary is passed by absolute path, because sudo's PATH does not have an
// nvm-installed node. Extra arguments go to `linkmux demo`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const deps = fileURLToPath(new URL('./system-deps.sh', import.meta.url));
const args = [cli, 'demo', ...process.argv.slice(2)];

if (process.platform !== 'linux') {
  console.error('linkmux demo builds network namespaces: it needs Linux (and root)');
  process.exit(1);
}
const root = process.getuid?.() === 0;
const hasSudo = spawnSync('sh', ['-c', 'command -v sudo'], { stdio: 'ignore' }).status === 0;
if (!root && !hasSudo) {
  console.error(
    `linkmux demo needs root, and there is no sudo here: as root, run\n  ${process.execPath} ${args.join(' ')}`,
  );
  process.exit(1);
}
const installed = spawnSync('bash', [deps], { stdio: 'inherit' });
if (installed.status !== 0) process.exit(installed.status ?? 1);
const run = root
  ? spawnSync(process.execPath, args, { stdio: 'inherit' })
  : spawnSync('sudo', [process.execPath, ...args], { stdio: 'inherit' });
process.exit(run.status ?? 1);
