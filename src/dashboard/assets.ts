/**
 * The dashboard's static files: the page and its modules (src/dashboard/web,
 * shipped as they are: package.json "files" lists that folder) and the vendored
 * libraries straight from the package's own node_modules (preact, htm, uPlot),
 * so nothing is bundled and nothing is fetched from elsewhere at run time.
 *
 * Files are read on first request and kept in memory (about 200 KB in all). Each
 * carries a strong ETag and `cache-control: no-cache`: the browser revalidates
 * (a 304 on loopback), so a linkmux upgrade never runs with a stale module.
 * Only the names of this table and plain file names inside the web folder are
 * served, so no request can reach another file.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Web file names: lower-case words, one extension we know. */
const WEB_NAME = /^[a-z0-9][a-z0-9-]*\.(?:html|js|css|svg)$/;

/**
 * The web folder: next to this module when run from source, else (compiled into
 * dist/src/dashboard) the shipped source folder three levels up.
 */
export function webDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'web'), path.resolve(here, '../../../src/dashboard/web')];
  return candidates.find((d) => existsSync(path.join(d, 'index.html'))) ?? (candidates[1] as string);
}

/** URL name under /assets/vendor/ → file in node_modules. */
export function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const dirOf = (pkg: string) => path.dirname(require.resolve(pkg));
  return {
    'preact.js': path.join(dirOf('preact'), 'preact.module.js'),
    'htm.js': path.join(dirOf('htm'), 'htm.module.js'),
    'uplot.js': path.join(dirOf('uplot'), 'uPlot.esm.js'),
    'uplot.css': path.join(dirOf('uplot'), 'uPlot.min.css'),
  };
}

export class AssetStore {
  private readonly cache = new Map<string, Promise<Asset | undefined>>();
  private readonly vendor: Record<string, string>;

  constructor(private readonly dir: string = webDir()) {
    this.vendor = vendorFiles();
  }

  /** The asset for a URL path ("/" is the page), or undefined when there is none. */
  get(urlPath: string): Promise<Asset | undefined> {
    const file = this.fileFor(urlPath);
    if (file === undefined) return Promise.resolve(undefined);
    let hit = this.cache.get(file);
    if (hit === undefined) {
      hit = load(file);
      this.cache.set(file, hit);
    }
    return hit;
  }

  private fileFor(urlPath: string): string | undefined {
    if (urlPath === '/' || urlPath === '/index.html') return path.join(this.dir, 'index.html');
    if (urlPath.startsWith('/assets/vendor/')) return this.vendor[urlPath.slice('/assets/vendor/'.length)];
    if (urlPath.startsWith('/assets/')) {
      const name = urlPath.slice('/assets/'.length);
      return WEB_NAME.test(name) ? path.join(this.dir, name) : undefined;
    }
    return undefined;
  }
}

async function load(file: string): Promise<Asset | undefined> {
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    return undefined;
  }
  // The vendored modules name source maps we do not serve; a browser with its
  // developer tools open would ask for them and log 404s.
  if (file.endsWith('.js')) {
    body = Buffer.from(body.toString('utf8').replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, '\n'));
  }
  const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { body, type, etag };
}
