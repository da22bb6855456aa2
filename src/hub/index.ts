// Models and data sets by Hub id, the way transformers / transformers.js users name them: `Qwen/Qwen2-0.5B`,
// `openai/gsm8k@main`. A local path that exists always wins over an id. In Node/Deno/Bun an id resolves to a
// snapshot directory of the shared HF cache (downloading what it lacks, see cache.ts); in browsers to the Hub's
// `/resolve/<commit>/` URL base, whose files the Cache API keeps between visits (browser-cache.ts).
import { isUrl, joinSource, readText, sourceExists, type Source } from '../io/source.js';
import { COMMIT_HASH, hubOptionsFromEnv, parseRepoId, repoLabel, resolveUrl, type HubOptions, type HubRepo, type RepoType } from './id.js';
import type { ResolveRequest } from './cache.js';

export { parseRepoId, hubOptionsFromEnv, type HubOptions, type HubRepo } from './id.js';

const isBrowser = () =>
  typeof (globalThis as { document?: unknown }).document !== 'undefined' ||
  typeof (globalThis as { importScripts?: unknown }).importScripts === 'function';

/** The Hub repo a `--model`/`--data` value names, or null when it is a URL or a path (existing paths win). */
export async function hubRepoOf(source: Source, type: RepoType): Promise<HubRepo | null> {
  if (isUrl(source)) return null;
  const s = String(source);
  const repo = parseRepoId(s, type);
  if (!repo) return null;
  if (!s.startsWith('hf://') && !isBrowser() && (await sourceExists(s))) return null;
  return repo;
}

export interface Resolved {
  /** A directory path (Node/Deno/Bun) or URL base (browser) to read the files from. */
  base: string;
  commit: string;
  files: string[];
}

/** Makes the files `req.pick` chooses available and returns where to read them. */
export async function resolveRepo(repo: HubRepo, req: ResolveRequest, options: HubOptions = {}): Promise<Resolved> {
  if (!isBrowser()) {
    const { resolveInCache } = await import('./cache.js');
    const r = await resolveInCache(repo, req, options);
    return { base: r.dir, commit: r.commit, files: r.files };
  }
  // Browser: ask the Hub which commit the revision is, so the file URLs are immutable and cacheable. (One plain
  // request to the repo API rather than @huggingface/hub, whose browser build bundlers cannot find; see cache.ts.)
  const opts = hubOptionsFromEnv(options);
  const api = `${opts.endpoint}/api/${repo.type}s/${repo.name}/revision/${encodeURIComponent(repo.revision)}`;
  const { networkFirst } = await import('./browser-cache.js');
  const res = await networkFirst(api, { headers: opts.token ? { Authorization: `Bearer ${opts.token}` } : {} }, undefined, opts.fetch);
  if (!res.ok)
    throw new Error(
      `${repoLabel(repo)}: cannot list the repo: HTTP ${res.status}${res.status === 401 || res.status === 403 ? ' (gated or private: pass a token)' : res.status === 404 ? ' (not found: check the id and revision)' : ''} (${api})`,
    );
  const info = (await res.json()) as { sha?: string; siblings?: { rfilename: string }[] };
  const commit = info.sha && COMMIT_HASH.test(info.sha) ? info.sha : repo.revision;
  const files = req.pick((info.siblings ?? []).map((s) => s.rfilename));
  if (files.length === 0) throw new Error(`${repoLabel(repo)}: none of the repo's files is usable here`);
  const base = resolveUrl(opts.endpoint, repo, commit, 'x').replace(/x$/, '');
  return { base, commit, files };
}

/** The files of an HF model repo the Qwen2 loader and tokenizer read (weights, configs, tokenizer; no .bin/.onnx/.gguf). */
export function pickModelFiles(files: string[]): string[] {
  return files.filter((f) => !f.includes('/') && (/\.(json|safetensors)$/.test(f) || f === 'merges.txt'));
}

/** The weights a cached model snapshot lacks: model.safetensors, or the shards its index lists. */
async function missingModelWeights(dir: string, present: string[]): Promise<string[]> {
  if (present.includes('model.safetensors')) return [];
  if (!present.includes('model.safetensors.index.json')) return ['model.safetensors (or model.safetensors.index.json and its shards)'];
  const index = JSON.parse(await readText(joinSource(dir, 'model.safetensors.index.json'))) as { weight_map?: Record<string, string> };
  return [...new Set(Object.values(index.weight_map ?? {}))].filter((shard) => !present.includes(shard));
}

/**
 * `--model` / `Qwen2.load` sources: a Hub id becomes a local snapshot directory (or URL base in a browser); any
 * other source is returned as is. `check` runs on config.json before the weights are downloaded.
 */
export async function resolveModelSource(
  source: Source,
  opts: HubOptions & { check?: (base: string) => Promise<void> } = {},
): Promise<Source> {
  const repo = await hubRepoOf(source, 'model');
  if (!repo) return source;
  const r = await resolveRepo(
    repo,
    { pick: pickModelFiles, first: ['config.json'], check: opts.check, missing: missingModelWeights },
    opts,
  );
  if (!r.files.includes('config.json')) throw new Error(`${repoLabel(repo)}: the repo has no config.json (is it a transformers model?)`);
  return r.base;
}
