// Resume bookkeeping shared by the training entry points: which options of a checkpointed run differ from the ones
// given now, and metrics.jsonl cut back to what the checkpointed run had logged (a kill -9 after the checkpoint leaves
// records that the resumed run writes again), then read back whole for the report and summary.
import { readText, writeFileAtomic } from '../io.js';
import { readJsonl } from '../jsonl.js';

/** "name: saved -> now" for every key whose value differs (JSON comparison), in a stable order. */
export function optionDifferences(saved: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(now)])];
  const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));
  return keys.filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(now[k])).map((k) => `${k}: ${show(saved[k])} in the checkpoint, ${show(now[k])} now`);
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
  if (lines.length < records) throw new Error(`${path}: has ${lines.length} records, the checkpoint was written after ${records}: this log is not the checkpointed run's (restore it, or start a fresh --out)`);
  if (lines.length === records && text.endsWith('\n')) return;
  await writeFileAtomic(path, lines.slice(0, records).map((l) => l + '\n').join(''));
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
