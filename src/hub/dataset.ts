// Data sets by Hub id (`openai/gsm8k`): the parquet files of one config's splits, read with hyparquet. Two layouts
// are recognised, the dataset's own files (`<config>/<split>-00000-of-00001.parquet`, `data/<split>-*.parquet` for
// the default config) and the Hub's parquet conversion (`<config>/<split>/0000.parquet`, on the refs/convert/parquet
// revision).
import { joinSource, readBytes } from '../io/source.js';
import { repoLabel, type HubOptions, type HubRepo } from './id.js';
import { hubRepoOf, resolveRepo } from './index.js';

function splitFiles(files: string[], config: string, split: string): string[] {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const c = esc(config),
    s = esc(split);
  const own = new RegExp(`^(?:${c}|${config === 'default' ? 'data' : c})/${s}-[^/]*\\.parquet$`);
  const converted = new RegExp(`^${c}/${s}/[^/]*\\.parquet$`);
  return files.filter((f) => own.test(f) || converted.test(f)).sort();
}

/** The config used when none is named: 'main' where the repo has one (GSM8K), else 'default'. */
function defaultConfig(files: string[]): string {
  return files.some((f) => f.startsWith('main/') && f.endsWith('.parquet')) ? 'main' : 'default';
}

export interface HubDataset {
  /** Rows of each split, as objects keyed by column name. */
  splits: Record<string, Record<string, unknown>[]>;
  config: string;
  commit: string;
  /** Human-readable origin, e.g. `openai/gsm8k (config main, commit e53f048)`. */
  source: string;
}

/** Reads the named splits of a Hub data set (each must exist); `config` defaults as in defaultConfig. */
export async function loadHubDataset(repo: HubRepo, splits: string[], opts: HubOptions & { config?: string } = {}): Promise<HubDataset> {
  let config = opts.config;
  const chosen: Record<string, string[]> = {};
  const r = await resolveRepo(
    repo,
    {
      pick: (files) => {
        config ??= defaultConfig(files);
        for (const s of splits) chosen[s] = splitFiles(files, config, s);
        const missing = splits.filter((s) => chosen[s].length === 0);
        if (missing.length) {
          const have = files.filter((f) => f.endsWith('.parquet'));
          throw new Error(
            `${repoLabel(repo)}: no parquet files for config '${config}' split${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (parquet files in the repo: ${have.slice(0, 8).join(', ') || 'none'})`,
          );
        }
        return splits.flatMap((s) => chosen[s]);
      },
    },
    opts,
  );
  const { parquetReadObjects } = await import('hyparquet');
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const s of splits) {
    out[s] = [];
    for (const f of chosen[s]) {
      const src = joinSource(r.base, f);
      const bytes = await readBytes(src);
      try {
        const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
        out[s].push(...((await parquetReadObjects({ file })) as Record<string, unknown>[]));
      } catch (e) {
        throw new Error(`${src}: not a readable parquet file: ${(e as Error).message}`);
      }
    }
  }
  return {
    splits: out,
    config: config!,
    commit: r.commit,
    source: `${repoLabel(repo)} (config ${config}, commit ${r.commit.slice(0, 7)})`,
  };
}

export { hubRepoOf };
