// The Hugging Face cache on disk (Node, Deno, Bun), in exactly the layout Python's huggingface_hub writes, so each
// reuses the other's downloads:
//   <cache>/models--org--name/refs/<branch>             the commit hash the branch pointed at
//   <cache>/models--org--name/snapshots/<commit>/<file>  a relative symlink to ../../blobs/<etag>
//   <cache>/models--org--name/blobs/<etag>               the bytes (etag: sha256 for LFS files, git blob sha1 otherwise)
// Datasets live under datasets--org--name. @huggingface/hub gives the cache root, the folder names, the repo
// listing (commit + files) and each file's blob hash and size (paths-info); what it lacks we add here: its
// downloadFileToCacheDir always asks the Hub first (no offline mode), never writes refs/<branch> (so Python's offline
// mode cannot find our downloads), restarts interrupted downloads from zero, checks no hash and shows no progress.
import { COMMIT_HASH, hubOptionsFromEnv, repoLabel, resolveUrl, type HubOptions, type HubRepo } from './id.js';

type Hub = typeof import('@huggingface/hub');

export interface ResolvedRepo {
  /** Local snapshot directory holding the files (symlinks into blobs/). */
  dir: string;
  commit: string;
  /** The repo-relative paths made available. */
  files: string[];
}

export interface ResolveRequest {
  /** Chooses the files to fetch from the repo's file list (an error when it returns none). */
  pick: (files: string[]) => string[];
  /** Fetched first, then `check(dir)` runs before the rest (e.g. reject an unsupported config.json before 1 GB of weights). */
  first?: string[];
  check?: (dir: string) => Promise<void>;
  /** Offline: what a snapshot lacks beyond the picked files (e.g. the weights when none are cached). */
  missing?: (dir: string, present: string[]) => Promise<string[]>;
}

/**
 * @huggingface/hub, loaded by a computed specifier: its package maps the browser build only through the "browser"
 * field, which bundlers skip after resolving "exports", so a literal import here would pull its Node build (os, path,
 * fs) into every browser bundle of latentlm. This module runs only in Node/Deno/Bun, where the runtime resolves it.
 */
async function hubLibrary(): Promise<Hub> {
  const spec = '@huggingface/hub';
  return (await import(/* @vite-ignore */ /* webpackIgnore: true */ spec)) as Hub;
}

async function fs() {
  return await import('node:fs/promises');
}
async function path() {
  return await import('node:path');
}

async function exists(p: string): Promise<boolean> {
  try {
    await (await fs()).stat(p); // follows symlinks: a dangling snapshot link counts as missing
    return true;
  } catch {
    return false;
  }
}

export async function cacheRoot(opts: HubOptions, hub: Hub): Promise<string> {
  return opts.cacheDir ?? hub.getHFHubCachePath();
}

/** `<cache>/models--org--name` (or `datasets--…`). */
export async function repoCacheDir(r: HubRepo, opts: HubOptions = {}): Promise<string> {
  const hub = await hubLibrary();
  return (await path()).join(await cacheRoot(opts, hub), hub.getRepoFolderName({ type: r.type, name: r.name }));
}

async function listSnapshot(dir: string): Promise<string[]> {
  const entries = await (await fs()).readdir(dir, { recursive: true, withFileTypes: true });
  const p = await path();
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) =>
      p
        .relative(dir, p.join((e as { parentPath?: string; path?: string }).parentPath ?? (e as { path: string }).path, e.name))
        .split(p.sep)
        .join('/'),
    )
    .sort();
}

/** What the cache alone can give (HF_HUB_OFFLINE=1, or the Hub unreachable). Errors say exactly what is missing. */
async function resolveFromCache(r: HubRepo, req: ResolveRequest, opts: HubOptions, why: string): Promise<ResolvedRepo> {
  const f = await fs(),
    p = await path();
  const repoDir = await repoCacheDir(r, opts);
  const label = repoLabel(r);
  let commit = r.revision;
  if (!COMMIT_HASH.test(commit)) {
    const ref = p.join(repoDir, 'refs', ...r.revision.split('/'));
    try {
      commit = (await f.readFile(ref, 'utf8')).trim();
    } catch {
      throw new Error(
        `${label}: ${why}, and it is not in the cache (no ${ref}); download it once online (or with Python's huggingface_hub)`,
      );
    }
  }
  const dir = p.join(repoDir, 'snapshots', commit);
  if (!(await exists(dir))) throw new Error(`${label}: ${why}, and the cache has no snapshot ${dir}`);
  const present = await listSnapshot(dir);
  const files = req.pick(present);
  const missing = [...new Set([...(req.first ?? []), ...files])].filter((x) => !present.includes(x));
  // a listed file may still be a dangling link (blob deleted)
  for (const x of files) if (!missing.includes(x) && !(await exists(p.join(dir, x)))) missing.push(x);
  if (req.missing) missing.push(...(await req.missing(dir, present)).filter((x) => !missing.includes(x)));
  if (missing.length || files.length === 0) {
    throw new Error(`${label}: ${why}, and the cached snapshot ${dir} lacks ${missing.length ? missing.join(', ') : 'the files needed'}`);
  }
  if (req.check) await req.check(dir);
  return { dir, commit, files };
}

/** fetch's own failure (no connection), as opposed to an HTTP error or a bad argument such as a malformed token. */
function isNetworkError(e: unknown): boolean {
  const err = e as { name?: string; message?: string; cause?: { code?: string }; statusCode?: number };
  if (err?.statusCode !== undefined) return false;
  return (
    /ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|UND_ERR/.test(String(err?.cause?.code)) ||
    (err?.name === 'TypeError' && /fetch failed|network|Failed to fetch/i.test(String(err?.message)))
  );
}

function hubError(r: HubRepo, e: unknown, what: string, tokenSet: boolean): Error {
  const status = (e as { statusCode?: number }).statusCode;
  const label = repoLabel(r);
  if (status === 401 || status === 403) {
    return new Error(
      `${label}: ${what}: HTTP ${status}: the repo is gated or private; ${tokenSet ? 'HF_TOKEN was sent but is not granted access (accept the terms on the repo page)' : 'set HF_TOKEN to a token with access'}`,
    );
  }
  if (status === 404)
    return new Error(`${label}: ${what}: not a local path, and not found on the Hub (HTTP 404): check the ${r.type} id and revision`);
  return new Error(`${label}: ${what}: ${(e as Error).message}`);
}

/**
 * Makes the chosen files of a repo available in the local HF cache and returns the snapshot directory: online it
 * asks the Hub for the revision's commit and downloads what the cache lacks; offline (or with the Hub unreachable)
 * it uses what the cache has.
 */
export async function resolveInCache(r: HubRepo, req: ResolveRequest, options: HubOptions = {}): Promise<ResolvedRepo> {
  const opts = hubOptionsFromEnv(options);
  if (opts.offline) return resolveFromCache(r, req, opts, 'HF_HUB_OFFLINE is set');
  if (COMMIT_HASH.test(r.revision)) {
    // a commit's files never change: a complete cached snapshot needs no request (as in huggingface_hub)
    try {
      return await resolveFromCache(r, req, opts, 'pinned');
    } catch {
      // not (fully) cached: ask the Hub
    }
  }
  const hub = await hubLibrary();
  const creds = { hubUrl: opts.endpoint, accessToken: opts.token, fetch: opts.fetch };
  let info: { sha?: string; siblings?: { rfilename: string }[]; filePaths?: string[] };
  try {
    info =
      r.type === 'model'
        ? await hub.modelInfo({ ...creds, name: r.name, revision: r.revision, additionalFields: ['sha', 'filePaths'] })
        : ((await hub.datasetInfo({
            ...creds,
            name: r.name,
            revision: r.revision,
            additionalFields: ['sha', 'siblings'] as never[],
          })) as never);
  } catch (e) {
    if (isNetworkError(e)) {
      (opts.log ?? console.error)(`warning: ${opts.endpoint} is unreachable (${(e as Error).message}); using the cached ${repoLabel(r)}`);
      return resolveFromCache(r, req, opts, `${opts.endpoint} is unreachable`);
    }
    throw hubError(r, e, 'cannot list the repo', !!opts.token);
  }
  const commit = info.sha;
  if (!commit || !COMMIT_HASH.test(commit)) throw new Error(`${repoLabel(r)}: the Hub gave no commit hash for revision ${r.revision}`);
  const all = info.filePaths ?? (info.siblings ?? []).map((s) => s.rfilename);
  const files = req.pick(all);
  if (files.length === 0)
    throw new Error(
      `${repoLabel(r)}: none of the repo's ${all.length} files is usable here (${all.slice(0, 8).join(', ')}${all.length > 8 ? ', …' : ''})`,
    );
  const f = await fs(),
    p = await path();
  const repoDir = await repoCacheDir(r, opts);
  if (!COMMIT_HASH.test(r.revision)) {
    // Python's huggingface_hub resolves a branch offline through refs/<branch>: keep it current.
    const ref = p.join(repoDir, 'refs', ...r.revision.split('/'));
    await f.mkdir(p.dirname(ref), { recursive: true });
    const tmp = `${ref}.tmp-${process.pid}`;
    await f.writeFile(tmp, commit);
    await f.rename(tmp, ref);
  }
  const dir = p.join(repoDir, 'snapshots', commit);
  const lacking: string[] = [];
  for (const file of files) if (!(await exists(p.join(dir, ...file.split('/'))))) lacking.push(file);
  const blobs = await blobNames(r, commit, lacking, opts, hub);
  const first = (req.first ?? []).filter((x) => files.includes(x));
  for (const file of first) if (blobs.has(file)) await ensureFile(r, repoDir, commit, file, blobs.get(file)!, opts);
  if (req.check) await req.check(dir);
  for (const file of files)
    if (!first.includes(file) && blobs.has(file)) await ensureFile(r, repoDir, commit, file, blobs.get(file)!, opts);
  return { dir, commit, files };
}

interface BlobInfo {
  /** What huggingface_hub names the blob: the sha256 of an LFS file, the git blob sha1 of any other. */
  etag: string;
  size: number;
}

/**
 * Blob names and sizes of files at a commit, in one paths-info request (as @huggingface/hub's own
 * downloadFileToCacheDir gets them): unlike a file response's ETag header, which for a non-xet LFS file comes from
 * the CDN it redirects to, these are the hashes huggingface_hub names blobs by, so the cache stays shared.
 */
async function blobNames(
  r: HubRepo,
  commit: string,
  files: string[],
  opts: ReturnType<typeof hubOptionsFromEnv>,
  hub: Hub,
): Promise<Map<string, BlobInfo>> {
  const out = new Map<string, BlobInfo>();
  if (files.length === 0) return out;
  let infos: Awaited<ReturnType<Hub['pathsInfo']>>;
  try {
    infos = await hub.pathsInfo({
      repo: { type: r.type, name: r.name },
      paths: files,
      revision: commit,
      expand: true,
      hubUrl: opts.endpoint,
      accessToken: opts.token,
      fetch: opts.fetch,
    });
  } catch (e) {
    throw hubError(r, e, `cannot get ${files.join(', ')}`, !!opts.token);
  }
  for (const i of infos) {
    const etag = i.lfs?.oid ?? i.oid;
    const size = i.lfs?.size ?? i.size;
    if (typeof etag === 'string' && /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(etag) && Number.isSafeInteger(size))
      out.set(i.path, { etag, size });
  }
  const missing = files.filter((f) => !out.has(f));
  if (missing.length) throw new Error(`${repoLabel(r)}: the Hub gave no hash for ${missing.join(', ')} at ${commit}`);
  return out;
}

async function ensureFile(
  r: HubRepo,
  repoDir: string,
  commit: string,
  file: string,
  info: BlobInfo,
  opts: ReturnType<typeof hubOptionsFromEnv>,
): Promise<void> {
  const f = await fs(),
    p = await path();
  const pointer = p.join(repoDir, 'snapshots', commit, ...file.split('/'));
  const label = `${repoLabel(r)}: ${file}`;
  const blob = p.join(repoDir, 'blobs', info.etag);
  await f.mkdir(p.dirname(blob), { recursive: true });
  const stat = await f.stat(blob).catch(() => null);
  if (!stat || stat.size !== info.size)
    await downloadBlob(label, resolveUrl(opts.endpoint, r, commit, file), blob, info.etag, info.size, opts);
  await f.mkdir(p.dirname(pointer), { recursive: true });
  await f.rm(pointer, { force: true }); // a dangling link left by a deleted blob
  await f.symlink(p.relative(p.dirname(pointer), blob), pointer);
}

/** Hash of a whole file the way the Hub names blobs: 64 hex = sha256 (LFS), 40 hex = git blob sha1. */
async function fileDigest(file: string, size: number, kind: 'sha256' | 'sha1'): Promise<string> {
  const { createHash } = await import('node:crypto');
  const { createReadStream } = await import('node:fs');
  const h = createHash(kind);
  if (kind === 'sha1') h.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(file)) h.update(chunk as Uint8Array);
  return h.digest('hex');
}

/**
 * Downloads into `<blob>.incomplete` (resuming with a Range request from what an interrupted run left, as
 * huggingface_hub does), checks size and hash against what the Hub lists, then renames it into place: a blob is complete
 * and verified or absent.
 */
async function downloadBlob(
  label: string,
  url: string,
  blob: string,
  etag: string,
  size: number,
  opts: ReturnType<typeof hubOptionsFromEnv>,
): Promise<void> {
  const f = await fs();
  const { createWriteStream } = await import('node:fs');
  const partial = `${blob}.incomplete`;
  let have = (await f.stat(partial).catch(() => null))?.size ?? 0;
  if (have > size) {
    await f.rm(partial, { force: true });
    have = 0;
  }
  const fetchFn = opts.fetch ?? fetch;
  const headers: Record<string, string> = {};
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (have > 0 && have < size) headers.Range = `bytes=${have}-`;
  const { createProgress } = await import('../io/progress.js');
  const mb = (n: number) => Math.round(n / 1e5) / 10;
  if (have < size) {
    const res = await fetchFn(url, { headers }).catch((e: Error) => {
      throw new Error(
        `${label}: cannot download ${url}: ${e.message}${have ? ` (${have} bytes kept in ${partial} for the next try)` : ''}`,
      );
    });
    if (res.status === 401 || res.status === 403) {
      throw new Error(
        `${label}: download failed: HTTP ${res.status}: the repo is gated or private; ${opts.token ? 'HF_TOKEN was sent but is not granted access' : 'set HF_TOKEN to a token with access'}`,
      );
    }
    if (!res.ok || !res.body) throw new Error(`${label}: download failed: HTTP ${res.status} ${res.statusText} (${url})`);
    const resumed = res.status === 206;
    if (!resumed) have = 0; // the server ignored the Range: start over
    // A bar (TTY) or a line every 5 s for files worth watching; config files arrive before a bar could draw.
    const progress =
      size < 1e6
        ? { update() {}, done() {} }
        : await createProgress({
            total: Math.max(1, mb(size)),
            label: `download ${label} (MB)`,
            startStep: mb(have),
            stream: opts.log
              ? { write: (s: string) => opts.log!(s.replace(/\n$/, '')) }
              : (globalThis as { process?: { stderr?: { write(s: string): unknown; isTTY?: boolean } } }).process?.stderr,
            everySeconds: 5,
          });
    const out = createWriteStream(partial, { flags: resumed ? 'a' : 'w' });
    try {
      let got = have;
      const reader = res.body.getReader();
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw new Error(`${label}: download interrupted after ${got} of ${size} bytes (${(e as Error).message}); run again to resume`);
        }
        const { done, value } = chunk;
        if (done) break;
        if (!out.write(value)) await new Promise<void>((ok) => out.once('drain', () => ok()));
        got += value.length;
        progress.update(Math.min(mb(got), mb(size)));
      }
      progress.done();
    } finally {
      await new Promise<void>((ok, bad) => out.end((e?: Error | null) => (e ? bad(e) : ok())));
    }
  }
  const got = (await f.stat(partial)).size;
  if (got !== size) throw new Error(`${label}: download incomplete: ${got} of ${size} bytes (run again to resume from ${partial})`);
  const kind = /^[0-9a-f]{64}$/.test(etag) ? 'sha256' : /^[0-9a-f]{40}$/.test(etag) ? 'sha1' : null;
  if (kind) {
    const digest = await fileDigest(partial, size, kind);
    if (digest !== etag) {
      await f.rm(partial, { force: true });
      throw new Error(
        `${label}: corrupted download: ${kind === 'sha256' ? 'sha256' : 'git blob sha1'} is ${digest}, the Hub's hash is ${etag} (deleted; run again)`,
      );
    }
  }
  await f.rename(partial, blob);
}
