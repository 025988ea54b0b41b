/**
 * Headless Chromium (Debian's /usr/bin/chromium) for the dashboard tests, driven
 * by puppeteer-core over a pipe (no debugging port to reach). With `ns` it runs
 * inside that testbed namespace (`ip netns exec`), where loopback and the
 * testbed are all the network there is. Every launch turns off what would make
 * Chromium call out on its own (updates, sync, metrics, field trials).
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Flags that keep a headless Chromium quiet on the network. */
export const QUIET_FLAGS = [
  '--headless=new',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-domain-reliability',
  '--metrics-recording-only',
  '--disable-field-trial-config',
  '--disable-breakpad',
  '--disable-extensions',
  '--disable-default-apps',
  '--disable-gpu',
  '--mute-audio',
  '--hide-scrollbars',
  '--password-store=basic',
  '--use-mock-keychain',
];

/** Launches Chromium (inside `ns` when given); the caller closes it in `finally`. */
export async function launchBrowser(
  opts: { ns?: string; width?: number; height?: number } = {},
): Promise<Browser> {
  const size = `--window-size=${opts.width ?? 1280},${opts.height ?? 900}`;
  const root = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  const flags = [...QUIET_FLAGS, ...root, size, 'about:blank'];
  const base = {
    pipe: true,
    ignoreDefaultArgs: true,
    timeout: 30_000,
    protocolTimeout: 30_000,
    defaultViewport: { width: opts.width ?? 1280, height: opts.height ?? 900 },
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  };
  if (opts.ns === undefined) return puppeteer.launch({ ...base, executablePath: CHROMIUM, args: flags });
  // `ip netns exec` execs Chromium in place, so the pipe's fds 3 and 4 reach it.
  return puppeteer.launch({
    ...base,
    executablePath: onPath('ip'),
    args: ['netns', 'exec', opts.ns, CHROMIUM, ...flags],
  });
}

function onPath(tool: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    try {
      accessSync(path.join(dir, tool), constants.X_OK);
      return path.join(dir, tool);
    } catch {
      // next
    }
  }
  return tool;
}
