// Resume bookkeeping shared by the training entry points: which options of a checkpointed run differ from the ones
// given now, and metrics.jsonl cut back to what the checkpointed run had logged (a kill -9 after the checkpoint leaves
// records that the resumed run writes again), then read back whole for the report and summary.
import { readText, writeFileAtomic } from '../io/source.js';
import { readJsonl } from '../io/jsonl.js';
import type { CheckpointState } from './checkpoint-schema.js';

/** "name: saved -> now" for every key whose value differs (JSON comparison), in a stable order. */
export function optionDifferences(saved: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(now)])];
  const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));
  return keys
    .filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k}: ${show(saved[k])} in the checkpoint, ${show(now[k])} now`);
}

/**
 * Keeps the first `records` lines of a JSON-lines log (atomically rewritten). Throws naming the file when it holds
 * fewer: the log does not belong to the checkpoint (deleted or replaced), and appending to it would misnumber it.
 */
export async function truncateRecords(path: string, records: number): Promise<void> {
  let text: string;
  try {
    text = await readText(path);
  } catch {
    text = '';
  }
  const lines = text.split('\n').filter((l) => l.trim());
  if (lines.length < records)
    throw new Error(
      `${path}: has ${lines.length} records, the checkpoint was written after ${records}: this log is not the checkpointed run's (restore it, or start a fresh --out)`,
    );
  if (lines.length === records && text.endsWith('\n')) return;
  await writeFileAtomic(
    path,
    lines
      .slice(0, records)
      .map((l) => l + '\n')
      .join(''),
  );
}

/** Undoes the JSONL writer's encoding of non-finite numbers ("NaN", "Infinity", "-Infinity" strings). */
function reviveNonFinite<T>(v: T): T {
  if (v === 'NaN') return NaN as T;
  if (v === 'Infinity') return Infinity as T;
  if (v === '-Infinity') return -Infinity as T;
  if (Array.isArray(v)) return v.map(reviveNonFinite) as T;
  if (v && typeof v === 'object') {
    for (const k of Object.keys(v)) (v as Record<string, unknown>)[k] = reviveNonFinite((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** Every record of a metrics.jsonl (the whole history, resumed sessions included). */
export async function readRecords<T = Record<string, unknown>>(path: string): Promise<T[]> {
  return readJsonl<T>(await readText(path), { file: path }).map(reviveNonFinite);
}

/**
 * The --resume check of both training commands: refuses (throws `refuse(message)`, the CLI's usage error) when an
 * option recorded in the checkpoint differs from `now`, unless `anyway` (then lists them on stderr); then cuts
 * `metricsFile` back to what the checkpointed run had logged.
 */
export async function checkResume(
  cmd: string,
  saved: { dir: string; state: CheckpointState },
  now: Record<string, unknown>,
  o: { anyway: boolean; metricsFile: string; savedKey?: 'trajectory' | 'options'; refuse: (message: string) => Error },
): Promise<void> {
  const { anyway, metricsFile, savedKey = 'trajectory' } = o;
  const st = saved.state;
  const before = savedKey === 'options' ? st.options : st.kind === 'rl' ? st.trajectory : undefined;
  const diffs =
    before && typeof before === 'object'
      ? optionDifferences(before as Record<string, unknown>, now)
      : [`(the checkpoint in ${saved.dir} records no options: written by an older version)`];
  if (diffs.length && !anyway)
    throw o.refuse(
      `${cmd}: --resume: these differ from the run checkpointed in ${saved.dir} (step ${saved.state.step}), so the result would not be that run's:\n  ${diffs.join('\n  ')}\nGive the same flags, or add --resume-anyway to continue regardless`,
    );
  if (diffs.length)
    console.error(
      `warning: --resume-anyway: continuing the run checkpointed at step ${saved.state.step} with different settings:\n  ${diffs.join('\n  ')}`,
    );
  // records logged after the checkpoint (a kill -9 before the next one) are logged again by the resumed run
  if (typeof saved.state.records === 'number') await truncateRecords(metricsFile, saved.state.records);
  else
    console.error(`warning: ${saved.dir} does not record how much of ${metricsFile} it covers (older version): the log is kept as it is`);
}
