// Hugging Face Hub repo ids (`org/name[@revision]`, as transformers and transformers.js take them) and the
// environment variables huggingface_hub reads, so a user's Python setup (token, mirror, offline mode) applies here too.

export type RepoType = 'model' | 'dataset';

export interface HubRepo {
  type: RepoType;
  /** `org/name`. */
  name: string;
  /** Branch, tag or commit hash (default 'main'). */
  revision: string;
}

export interface HubOptions {
  /** Hub base URL (default `HF_ENDPOINT`, else https://huggingface.co). */
  endpoint?: string;
  /** Access token for gated/private repos (default `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`). */
  token?: string;
  /** Never touch the network (default: `HF_HUB_OFFLINE` is 1/true/yes/on). */
  offline?: boolean;
  /** Cache root (default `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`; Node/Deno/Bun only). */
  cacheDir?: string;
  /** fetch to use (tests, proxies). */
  fetch?: typeof fetch;
  /** Progress lines / bars go here (default: a bar on a TTY stderr, plain lines otherwise; nothing in browsers). */
  log?: (line: string) => void;
}

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

// HF's own rule for repo names (huggingface_hub validate_repo_id): letters, digits, '-', '_', '.', no '--' or '..'.
const ID = /^(?:hf:\/\/)?([A-Za-z0-9][\w.-]{0,95})\/([A-Za-z0-9][\w.-]{0,95})(?:@([\w.\-/]+))?$/;

/** Parses `org/name[@revision]` (an optional `hf://` prefix is allowed), or returns null for anything else. */
export function parseRepoId(text: string, type: RepoType): HubRepo | null {
  const m = ID.exec(text);
  if (!m) return null;
  const [, org, repo, rev] = m;
  if (/--|\.\./.test(org + '/' + repo) || /\.$/.test(repo)) return null;
  if (rev !== undefined && (rev.includes('..') || rev.startsWith('/') || rev.endsWith('/'))) return null;
  return { type, name: `${org}/${repo}`, revision: rev ?? 'main' };
}

export function repoLabel(r: HubRepo): string {
  return `${r.type === 'dataset' ? 'dataset ' : ''}${r.name}${r.revision === 'main' ? '' : '@' + r.revision}`;
}

function env(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = p?.env?.[name];
  return v === undefined || v === '' ? undefined : v;
}

/** Options with the huggingface_hub environment variables filled in where not given. */
export function hubOptionsFromEnv(opts: HubOptions = {}): HubOptions & { endpoint: string; offline: boolean } {
  const offlineEnv = env('HF_HUB_OFFLINE');
  return {
    ...opts,
    endpoint: (opts.endpoint ?? env('HF_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    token: opts.token ?? env('HF_TOKEN') ?? env('HUGGING_FACE_HUB_TOKEN'),
    offline: opts.offline ?? (offlineEnv !== undefined && /^(1|true|yes|on)$/i.test(offlineEnv)),
  };
}

/** The URL of a file in a repo at a revision (`/{id}/resolve/{rev}/{file}`; datasets under `/datasets/`). */
export function resolveUrl(endpoint: string, r: HubRepo, revision: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${r.type === 'dataset' ? 'datasets/' : ''}${r.name}/resolve/${encodeURIComponent(revision)}/${path}`;
}
