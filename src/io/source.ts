// Runtime-neutral I/O: a "source" is a URL (fetched in every runtime), or a file path (read through node:fs,
// which Node, Deno and Bun all provide; in a browser a path is fetched relative to the page).
// node:fs is only ever reached through a dynamic import, so the browser bundle carries none of it.

import { cachedFetch } from '../hub/browser-cache.js';

export type Source = string | URL;

const isBrowser = () =>
  typeof (globalThis as { document?: unknown }).document !== 'undefined' ||
  typeof (globalThis as { importScripts?: unknown }).importScripts === 'function';

export function isUrl(source: Source): boolean {
  if (source instanceof URL) return true;
  return /^(https?|data|blob):/i.test(source);
}

/** Joins a base (directory path or URL) and a relative name. */
export function joinSource(base: Source, name: string): string {
  const b = String(base);
  if (isUrl(b)) return new URL(name, b.endsWith('/') ? b : b + '/').href;
  return b.endsWith('/') ? b + name : `${b}/${name}`;
}

async function nodeFs() {
  return await import('node:fs/promises');
}

export async function readBytes(source: Source): Promise<Uint8Array> {
  const s = String(source);
  if (isUrl(source) || isBrowser()) {
    const res = await cachedFetch(s); // Hub files stay in the browser's Cache API between visits
    if (!res.ok) throw new Error(`cannot fetch ${s}: HTTP ${res.status} ${res.statusText}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  const fs = await nodeFs();
  try {
    const buf = await fs.readFile(s.startsWith('file:') ? new URL(s) : s);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw new Error(`cannot read ${s}: ${(e as Error).message}`);
  }
}

export async function readText(source: Source): Promise<string> {
  return new TextDecoder().decode(await readBytes(source));
}

export async function sourceExists(source: Source): Promise<boolean> {
  const s = String(source);
  if (isUrl(source) || isBrowser()) {
    try {
      const res = await cachedFetch(s, { method: 'HEAD' });
      return res.ok;
    } catch {
      return false;
    }
  }
  const fs = await nodeFs();
  try {
    await fs.stat(s.startsWith('file:') ? new URL(s) : s);
    return true;
  } catch (e) {
    // only "no such file" means absent: a symlink loop (ELOOP) or a permission error must not read as "not found"
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw new Error(`cannot access ${s}: ${(e as Error).message}`);
  }
}

/**
 * Writes a file so that readers never see half of it: the bytes go to a temp file beside the target, which is
 * then renamed over it (rename is atomic within a directory). Creates parent directories.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const fs = await nodeFs();
  const dir = path.replace(/[\\/][^\\/]*$/, '');
  if (dir && dir !== path) await fs.mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${Math.random().toString(36).slice(2)}`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw new Error(`cannot write ${path}: ${(e as Error).message}`);
  }
}

export async function mkdirp(dir: string): Promise<void> {
  const fs = await nodeFs();
  await fs.mkdir(dir, { recursive: true });
}
