import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The dashboard's files: its own (assets/dashboard/ at the package root, plain ES modules that need no
 * build) and the libraries it uses, served from node_modules as installed (the page loads nothing from
 * any other host). Read once, on first use, and kept in memory: together about 200 KiB.
 */

/** Where the page's files are served from. */
export const ASSETS_PATH = '/dashboard/assets/';

/** The package root: this file is at src/api/dashboard/ or, built, dist/api/dashboard/. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DEFAULT_ASSETS_DIR = join(PACKAGE_ROOT, 'assets', 'dashboard');

export interface Asset {
  readonly body: Buffer;
  readonly type: string;
  /** A strong validator of the body, for If-None-Match. */
  readonly etag: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.html': 'text/html; charset=utf-8',
};

/** The page's own files, by name under ASSETS_PATH. Only these are served: nothing is looked up from the path. */
const OWN_FILES = ['app.js', 'chart.js', 'view.js', 'boot.js', 'app.css', 'favicon.svg'];

/** The libraries, by the name the page imports them under, and where npm installed each. */
function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  // Resolved through each package's own entry, so a package that moves its files still resolves.
  const uplotDist = dirname(require.resolve('uplot'));
  return {
    'vendor/preact.mjs': require.resolve('preact'),
    'vendor/preact-hooks.mjs': require.resolve('preact/hooks'),
    'vendor/htm.mjs': join(dirname(require.resolve('htm')), 'htm.mjs'),
    'vendor/uplot.mjs': join(uplotDist, 'uPlot.esm.js'),
    'vendor/uplot.css': join(uplotDist, 'uPlot.min.css'),
  };
}

/** The bare names the page imports, mapped to where they are served (an import map: no bundler needed). */
export const IMPORT_MAP = JSON.stringify({
  imports: {
    preact: `${ASSETS_PATH}vendor/preact.mjs`,
    'preact/hooks': `${ASSETS_PATH}vendor/preact-hooks.mjs`,
    htm: `${ASSETS_PATH}vendor/htm.mjs`,
    uplot: `${ASSETS_PATH}vendor/uplot.mjs`,
  },
});

/** The import map is the page's one inline script; the Content-Security-Policy allows it by this hash. */
export const IMPORT_MAP_HASH = `'sha256-${createHash('sha256').update(IMPORT_MAP).digest('base64')}'`;

/**
 * The policy every dashboard answer carries: nothing from another origin, no inline script but the
 * import map, no framing (clickjacking a deregister button), forms only to itself.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src 'self' ${IMPORT_MAP_HASH}`,
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function asset(body: Buffer, name: string): Asset {
  const ext = name.slice(name.lastIndexOf('.'));
  return { body, type: TYPES[ext] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

export class Assets {
  readonly #dir: string;
  #files: Map<string, Asset> | null = null;
  #index: Asset | null = null;

  constructor(dir = DEFAULT_ASSETS_DIR) {
    this.#dir = dir;
  }

  /** Reads every file now, so a missing one stops ebb's start rather than a page load. */
  load(): void {
    if (this.#files !== null) return;
    const files = new Map<string, Asset>();
    for (const name of OWN_FILES) files.set(name, asset(readFileSync(join(this.#dir, name)), name));
    for (const [name, path] of Object.entries(vendorFiles())) files.set(name, asset(readFileSync(path), name));
    const html = readFileSync(join(this.#dir, 'index.html'), 'utf8');
    if (!html.includes('__IMPORT_MAP__')) throw new Error(`${join(this.#dir, 'index.html')} has no __IMPORT_MAP__ placeholder`);
    this.#index = asset(Buffer.from(html.replace('__IMPORT_MAP__', IMPORT_MAP)), 'index.html');
    this.#files = files;
  }

  /** The file served at ASSETS_PATH + `name`, or undefined. */
  get(name: string): Asset | undefined {
    this.load();
    return this.#files?.get(name);
  }

  /** The page itself, with its import map. */
  index(): Asset {
    this.load();
    return this.#index as Asset;
  }
}
