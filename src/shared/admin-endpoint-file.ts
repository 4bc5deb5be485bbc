import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where a running `ebb serve` says its admin endpoint is: a one-line file in its state directory,
 * written once the admin API listens and removed at a graceful stop, so the local `ebb` client finds
 * an ebb on any admin port without `--endpoint`. A file left by a killed ebb names an endpoint that no
 * longer answers; the client then says which endpoint it tried and where it read it.
 */
export const ADMIN_ENDPOINT_FILE = 'admin-endpoint';

/** The URL a local client reaches an admin API bound on `host:port` at (a wildcard address means this host). */
export function adminEndpointUrl(host: string, port: number): string {
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${local.includes(':') ? `[${local}]` : local}:${port}`;
}

/** Writes the file whole (a temporary file renamed over it), so a reader never sees half a line. */
export function writeAdminEndpoint(stateDir: string, url: string): void {
  const file = join(stateDir, ADMIN_ENDPOINT_FILE);
  writeFileSync(`${file}.tmp`, `${url}\n`, { mode: 0o644 });
  renameSync(`${file}.tmp`, file);
}

export function removeAdminEndpoint(stateDir: string): void {
  rmSync(join(stateDir, ADMIN_ENDPOINT_FILE), { force: true });
}

/** The endpoint the file names, or null when there is no file (or it is empty). */
export function readAdminEndpoint(stateDir: string): string | null {
  try {
    const text = readFileSync(join(stateDir, ADMIN_ENDPOINT_FILE), 'utf8').trim();
    return text === '' ? null : text;
  } catch {
    return null;
  }
}
