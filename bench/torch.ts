// Runs bench/torch_train.py (the PyTorch baseline) with /usr/bin/python3 when `import torch` works there, and
// returns its rows. Kept apart from bench/train.ts so that file can use it without an import cycle.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Qwen2Config } from '../src/model/qwen2.js';

/** One training configuration as bench/torch_train.py --train reads it. */
export interface TorchTrainSpec {
  name: string;
  config: Qwen2Config;
  B: number;
  T: number;
}

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./torch_train.py', import.meta.url));

export type TorchRow =
  | {
      backend: 'pytorch';
      threads: number;
      config?: string;
      tokensPerSec?: number;
      bestStepTokensPerSec?: number;
      sgemm?: string;
      gflops?: number;
    }
  | { note: string };

let torchCheck: string | null | undefined;
/** null when PyTorch can run here, else why not. */
function torchMissing(): string | null {
  if (torchCheck !== undefined) return torchCheck;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  torchCheck = r.error
    ? `${PYTHON} not found (${r.error.message})`
    : r.status !== 0
      ? `${PYTHON} cannot import torch (${(r.stderr || '').trim().split('\n').pop()})`
      : null;
  return torchCheck;
}

/**
 * Runs bench/torch_train.py with `threads` threads (torch and OpenBLAS) on the named training configs and sgemm
 * shapes. Rows: its '# ...' header lines as notes, then one row per measurement; a single note where it was skipped.
 */
export function runTorch(
  threads: number,
  o: { train?: TorchTrainSpec[]; sgemm?: { M: number; K: number; N: number }[]; seconds?: number },
): TorchRow[] {
  const missing = torchMissing();
  if (missing) return [{ note: `PyTorch skipped: ${missing}` }];
  const args = [SCRIPT, '--threads', String(threads), '--seconds', String(o.seconds ?? 4)];
  for (const spec of o.train ?? []) args.push('--train', JSON.stringify(spec));
  for (const c of o.sgemm ?? []) args.push('--sgemm', `${c.M},${c.K},${c.N}`);
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', env, timeout: 300_000 });
  if (r.status !== 0)
    return [{ note: `PyTorch failed (exit ${r.status ?? r.signal}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}` }];
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => (l.startsWith('{') ? (JSON.parse(l) as TorchRow) : { note: l.replace(/^#\s*/, '') }));
}
