/**
 * The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium,
 * driven by puppeteer-core) inside the testbed's client namespace, looking at a
 * `linkmux up` with 3 × 8 Mbit/s uplinks. Checks that the page loads with no
 * console errors and shows every link of the daemon; that the rates move while
 * downloads run through the proxy; that add-URL starts a download that completes
 * intact; that the daemon's CPU rises by < 2 % of a core with one page open; and
 * that the page survives the daemon restarting. Saves a screenshot
 * (LINKMUX_DASHBOARD_SCREENSHOT, default $TMPDIR/linkmux-dashboard.png).
 *
 * Which aria2 JSON-RPC the download section drives (LINKMUX_DASHBOARD_RPC):
 * - `linkmux` (the default): the page at / drives the daemon's own /jsonrpc (config `rpc:`).
 * - `aria2c`: Debian's real
 *   `aria2c --enable-rpc` on 127.0.0.1:6800 in the client namespace, downloading
 *   from the testbed server through linkmux's HTTP proxy, and the page opened as
 *   /?rpc=http://127.0.0.1:6800/jsonrpc. The page speaks to it exactly as it will
 *   to linkmux: the same methods, `token:SECRET` first.
 *
 * Chromium only ever reaches loopback and the testbed: the client namespace's
 * uplinks end in ISP namespaces that drop everything outside 198.18.0.0/15.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Browser, Page } from 'puppeteer-core';
import { createTestbed, removeLeftovers, type Testbed } from '../../src/testbed/testbed.js';
import { cliPath, netnsReady, skipReason } from '../helpers/netns.js';
import { startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon.js';
import { launchBrowser } from '../helpers/browser.js';

const MiB = 1024 * 1024;
const FILE = 'f12.bin';
const CONTROL = '127.0.0.1:9190';
const SECRET = 'dashboard-test-secret';
const RPC_TARGET = process.env.LINKMUX_DASHBOARD_RPC === 'aria2c' ? 'aria2c' : 'linkmux';
const ARIA2_RPC = 'http://127.0.0.1:6800/jsonrpc';
const SCREENSHOT = process.env.LINKMUX_DASHBOARD_SCREENSHOT ?? path.join(tmpdir(), 'linkmux-dashboard.png');
const CPU_SECONDS = Number(process.env.LINKMUX_DASHBOARD_CPU_SECONDS ?? 30);

const skip = skipReason(['chromium']);
const skipRpc = RPC_TARGET === 'aria2c' ? skipReason(['chromium', 'aria2c']) : skip;

let tb: Testbed | undefined;
let daemon: RunningDaemon | undefined;
let aria2: ChildProcess | undefined;
let browser: Browser | undefined;
let page: Page | undefined;
let dir: string | undefined;
/** Console errors and page exceptions, as "phase: text". */
const errors: string[] = [];

function yaml(bed: Testbed): string {
  return `
listen: { socks: "127.0.0.1:1080", http: "127.0.0.1:8080", control: "${CONTROL}" }
health:
  interval: 1
  timeout: 0.5
  failThreshold: 3
  riseThreshold: 2
  targets: ["tcp://${bed.serverAddress}:80"]
${RPC_TARGET === 'linkmux' ? `rpc: { enabled: true, listen: false, secret: "${SECRET}" }\n` : ''}`;
}

const pageUrl = () =>
  `http://${CONTROL}/${RPC_TARGET === 'aria2c' ? `?rpc=${encodeURIComponent(ARIA2_RPC)}` : ''}`;

before(async () => {
  if (!netnsReady(['chromium'])) return;
  await removeLeftovers();
  tb = await createTestbed({ links: 3, rateMbit: 8, files: [{ name: FILE, size: 12 * MiB }] });
  daemon = await startDaemon(tb, cliPath(), yaml(tb));
  dir = await mkdtemp(path.join(tmpdir(), 'lmx-dashboard-'));
  if (RPC_TARGET === 'aria2c' && skipRpc === false) aria2 = await startAria2(tb, dir);
  browser = await launchBrowser({ ns: tb.clientNs });
  page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url ?? ''})`);
  });
  page.on('pageerror', (e) => errors.push(`exception: ${e instanceof Error ? e.message : String(e)}`));
  // The RPC secret, as a user would have typed it once (the page keeps it in localStorage).
  await page.evaluateOnNewDocument(`localStorage.setItem('linkmux.rpcSecret', ${JSON.stringify(SECRET)})`);
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    try {
      aria2?.kill('SIGTERM');
      await daemon?.stop();
    } finally {
      await tb?.destroy();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    }
  }
});

/** aria2c's RPC in the client namespace, fetching through linkmux's HTTP proxy; resolves once it answers. */
async function startAria2(bed: Testbed, into: string): Promise<ChildProcess> {
  const child = bed.spawn(
    bed.clientNs,
    'aria2c',
    [
      '--enable-rpc',
      '--rpc-listen-port=6800',
      `--rpc-secret=${SECRET}`,
      '--rpc-allow-origin-all',
      '--no-conf',
      `--dir=${into}`,
      '--all-proxy=http://127.0.0.1:8080',
      '--split=3',
      '--max-connection-per-server=3',
      '--min-split-size=1M',
      '--disable-ipv6',
      '--quiet',
    ],
    { stdio: 'ignore' },
  );
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: '1',
    method: 'aria2.getVersion',
    params: [`token:${SECRET}`],
  });
  await waitFor(
    'aria2c RPC answers',
    10_000,
    () =>
      bed
        .exec(bed.clientNs, 'curl', ['-sS', '--max-time', '1', '-d', body, ARIA2_RPC])
        .then((r) => r.stdout)
        .catch(() => ''),
    (out) => out.includes('"version"'),
  );
  return child;
}

/** Each link card's id, state and rates as the page shows them. */
function cards(p: Page) {
  return p.$$eval('[data-link]', (els) =>
    els.map((e) => ({
      id: e.getAttribute('data-link') ?? '',
      state: e.getAttribute('data-state') ?? '',
      rateIn: Number(e.getAttribute('data-rate-in')),
      rateOut: Number(e.getAttribute('data-rate-out')),
    })),
  );
}

async function sleep(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
}

test('the page loads with no console errors and shows every link of the daemon', { skip }, async () => {
  const p = page as Page;
  const d = daemon as RunningDaemon;
  await p.goto(pageUrl(), { waitUntil: 'load', timeout: 15_000 });
  await p.waitForSelector('[data-conn="live"]', { timeout: 10_000 });
  await p.waitForFunction("document.querySelectorAll('[data-link]').length >= 3", { timeout: 10_000 });
  const status = await d.status();
  const shown = await cards(p);
  assert.deepEqual(
    shown.map((c) => c.id).sort(),
    status.links.map((l) => l.id).sort(),
    'every link of /status',
  );
  assert.equal(shown.length, 3);
  for (const c of shown) assert.match(c.state, /^(online|degraded|unverified|offline)$/);
  // Let the page poll the RPC and draw a few frames before judging the console.
  await sleep(3000);
  const charts = await p.$$eval('[data-link] .chart canvas', (els) => els.length);
  assert.equal(charts, 3, 'one uPlot chart per link');
  if (skipRpc === false) {
    assert.equal(await p.$('.downloads .problem'), null, 'the download section reached the RPC');
  }
  assert.deepEqual(errors, [], 'no console errors or exceptions');
  console.log(`dashboard: ${shown.map((c) => `${c.id}=${c.state}`).join(' ')}; RPC target: ${RPC_TARGET}`);
});

test('the rates move while downloads run through the proxy', { skip }, async () => {
  const p = page as Page;
  const bed = tb as Testbed;
  const idle = await cards(p);
  const peak = new Map<string, number>();
  const running = Promise.all(
    [0, 1, 2].map(() =>
      bed.exec(bed.clientNs, 'curl', [
        '-sS',
        '--fail',
        '--max-time',
        '30',
        '--socks5',
        '127.0.0.1:1080',
        '-o',
        '/dev/null',
        bed.url(FILE),
      ]),
    ),
  );
  let shot = false;
  const deadline = Date.now() + 40_000;
  let done = false;
  running.then(
    () => (done = true),
    () => (done = true),
  );
  while (!done && Date.now() < deadline) {
    for (const c of await cards(p)) peak.set(c.id, Math.max(peak.get(c.id) ?? 0, c.rateIn));
    const total = [...peak.values()].reduce((a, b) => a + b, 0);
    if (!shot && total * 8 > 12e6) {
      await p.screenshot({ path: SCREENSHOT, fullPage: true });
      shot = true;
    }
    await sleep(250);
  }
  await running;
  const mbit = (b: number) => ((b * 8) / 1e6).toFixed(1);
  console.log(
    `dashboard rates: idle ${idle.map((c) => `${c.id} ${mbit(c.rateIn)}`).join(', ')} Mbit/s; ` +
      `peak while downloading ${[...peak].map(([id, r]) => `${id} ${mbit(r)}`).join(', ')} Mbit/s`,
  );
  const moved = [...peak.values()].filter((r) => r * 8 > 2e6);
  assert.ok(moved.length >= 2, 'at least two links showed > 2 Mbit/s in');
  const total = [...peak.values()].reduce((a, b) => a + b, 0);
  assert.ok(total * 8 > 12e6, `the page showed ${mbit(total)} Mbit/s at best over 3 × 8 Mbit/s`);
  const drawn = await p.$$eval('[data-link] .chart canvas', (els) => els.length);
  assert.equal(drawn, 3);
  assert.deepEqual(errors, [], 'no console errors or exceptions');
});

test(`add-URL starts a download that completes intact (RPC: ${RPC_TARGET})`, { skip: skipRpc }, async () => {
  const p = page as Page;
  const bed = tb as Testbed;
  const into = dir as string;
  await p.type('form.add input[name="url"]', bed.url(FILE));
  await p.type('form.add input[name="dir"]', into);
  await p.type('form.add input[name="out"]', FILE);
  await p.click('form.add button[type="submit"]');
  await p.waitForSelector('.download[data-status="active"], .download[data-status="complete"]', {
    timeout: 10_000,
  });
  let progressSeen = 0;
  let shot = false;
  for (let i = 0; i < 240; i++) {
    const rows = await p.$$eval('.download', (els) =>
      els.map((e) => ({
        status: e.getAttribute('data-status'),
        done: Number(e.getAttribute('data-completed')),
        total: Number(e.getAttribute('data-total')),
      })),
    );
    const row = rows[0];
    if (row && row.total > 0 && row.done > 0 && row.done < row.total) progressSeen++;
    if (!shot && row && row.done > row.total / 3) {
      await p.screenshot({ path: SCREENSHOT, fullPage: true });
      shot = true;
    }
    if (row?.status === 'complete' || row?.status === 'error') break;
    await sleep(250);
  }
  const status = await p.$eval('.download', (e) => e.getAttribute('data-status'));
  assert.equal(status, 'complete', await p.$eval('.download', (e) => e.textContent ?? ''));
  assert.ok(progressSeen >= 2, `the page showed progress ${progressSeen} times`);
  const file = path.join(into, FILE);
  assert.equal((await stat(file)).size, bed.files[FILE]?.size);
  const sha = createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
  assert.equal(sha, bed.files[FILE]?.sha256, 'the downloaded file is intact');
  // Clear the finished result through the page, as a user would.
  await p.click('.download [data-action="clear"]');
  await p.waitForFunction("document.querySelectorAll('.download').length === 0", { timeout: 5_000 });
  assert.deepEqual(errors, [], 'no console errors or exceptions');
  console.log(
    `dashboard add-URL via ${RPC_TARGET}: ${FILE} complete, sha-256 matches; screenshot ${SCREENSHOT}`,
  );
});

/** utime + stime of `pid`, in seconds. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc(5) are the 12th and 13th after "(comm) ".
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

test(
  `one open dashboard costs the daemon < 2 % of a core (${CPU_SECONDS} s each way)`,
  { skip },
  async () => {
    const d = daemon as RunningDaemon;
    const b = browser as Browser;
    const pid = d.child.pid as number;
    assert.match(await readFile(`/proc/${pid}/comm`, 'utf8'), /node/, 'the daemon pid is node itself');
    await (page as Page).close();
    page = undefined;
    await sleep(2000);
    let t0 = await cpuSeconds(pid);
    await sleep(CPU_SECONDS * 1000);
    const without = (await cpuSeconds(pid)) - t0;
    const p = await b.newPage();
    page = p;
    p.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url ?? ''})`);
    });
    await p.goto(pageUrl(), { waitUntil: 'load', timeout: 15_000 });
    await p.waitForSelector('[data-conn="live"]', { timeout: 10_000 });
    await sleep(2000);
    t0 = await cpuSeconds(pid);
    await sleep(CPU_SECONDS * 1000);
    const withPage = (await cpuSeconds(pid)) - t0;
    const rise = (withPage - without) / CPU_SECONDS;
    console.log(
      `dashboard CPU: daemon ${((100 * without) / CPU_SECONDS).toFixed(2)} % of a core without the page, ` +
        `${((100 * withPage) / CPU_SECONDS).toFixed(2)} % with one page open (RPC target ${RPC_TARGET}): ` +
        `rise ${(100 * rise).toFixed(2)} % (limit 2 %)`,
    );
    assert.ok(rise < 0.02, `the daemon's CPU rose by ${(100 * rise).toFixed(2)} % of a core`);
    assert.deepEqual(errors, [], 'no console errors or exceptions');
  },
);

test('the page survives the daemon restarting', { skip }, async () => {
  const p = page as Page;
  const bed = tb as Testbed;
  const before = await p.$eval('[data-started]', (e) => e.getAttribute('data-started'));
  await (daemon as RunningDaemon).stop();
  await p.waitForSelector('[data-conn="reconnecting"]', { timeout: 10_000 });
  await sleep(1500);
  daemon = await startDaemon(bed, cliPath(), yaml(bed));
  const ms = await waitFor(
    'the page shows the restarted daemon',
    20_000,
    async () => ({
      conn: await p.$eval('[data-conn]', (e) => e.getAttribute('data-conn')),
      started: await p.$eval('[data-started]', (e) => e.getAttribute('data-started')).catch(() => ''),
      links: (await cards(p)).length,
    }),
    (v) => v.conn === 'live' && v.started !== before && v.links === 3,
  );
  console.log(`dashboard: live again ${ms} ms after the restarted daemon answered`);
  // Errors while the daemon was down (refused reconnects) are expected; none after.
  errors.length = 0;
  const t1 = await p.$eval('.summary', (e) => e.textContent ?? '');
  await sleep(2500);
  const t2 = await p.$eval('.summary', (e) => e.textContent ?? '');
  assert.notEqual(t1, t2, 'frames keep coming after the restart');
  assert.deepEqual(errors, [], 'no console errors once reconnected');
});
