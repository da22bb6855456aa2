// Typed, range-checked values of string flags (`--steps 2.5`, `--batch 0`, `--backend foo` are usage errors, exit 2),
// and negative numbers as flag values (`--seed -1`), which node:util parseArgs would otherwise read as an option.
import { UsageError } from './_args.js';

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * `--name -1` -> `--name=-1` for the flags that take a value, so parseArgs takes the negative number as the value
 * (it reports "argument is ambiguous" otherwise). Only number-shaped values are joined: `--out -x` stays an error.
 */
export function joinNegativeValues(argv: string[], valueFlags: Iterable<string>): string[] {
  const takes = new Set(valueFlags);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i],
      next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && takes.has(a.slice(2)) && next !== undefined && /^-(\d|\.\d|Infinity)/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** The names of an options table's string-valued flags (for joinNegativeValues). */
export function valueFlagNames(options: Record<string, { type: string }>): string[] {
  return Object.entries(options)
    .filter(([, o]) => o.type === 'string')
    .map(([n]) => n);
}

export interface NumberRange {
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound (e.g. a learning rate must be > 0). */
  above?: number;
  /** Inclusive upper bound. */
  max?: number;
}

function rangeText(r: NumberRange): string {
  const parts: string[] = [];
  if (r.above !== undefined) parts.push(`> ${r.above}`);
  if (r.min !== undefined) parts.push(`>= ${r.min}`);
  if (r.max !== undefined) parts.push(`<= ${r.max}`);
  return parts.join(' and ');
}

function checkRange(cmd: string, name: string, raw: string, n: number, r: NumberRange, what: string): number {
  const bad = (r.min !== undefined && n < r.min) || (r.above !== undefined && n <= r.above) || (r.max !== undefined && n > r.max);
  if (bad) throw new UsageError(`${cmd}: --${name} must be ${what} ${rangeText(r)}, got '${raw}'`);
  return n;
}

/** Reads flag values of one command; every failure is a UsageError naming the flag and the value given. */
export class FlagReader {
  constructor(
    readonly cmd: string,
    readonly values: Values,
  ) {}

  private raw(name: string): string | undefined {
    const v = this.values[name];
    if (v === undefined || typeof v === 'boolean') return undefined;
    return String(Array.isArray(v) ? v[v.length - 1] : v);
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  /** A finite number in range (default `def` when the flag is absent). */
  number(name: string, def: number, range: NumberRange = {}): number {
    const raw = this.raw(name);
    if (raw === undefined) return def;
    const n = raw.trim() === '' ? NaN : Number(raw);
    if (!Number.isFinite(n)) throw new UsageError(`${this.cmd}: --${name} expects a number, got '${raw}'`);
    return checkRange(this.cmd, name, raw, n, range, 'a number');
  }

  /** A safe integer in range (`2.5`, `1e400`, `0x10` are refused). */
  int(name: string, def: number, range: NumberRange = {}): number {
    const raw = this.raw(name);
    if (raw === undefined) return def;
    if (!/^[+-]?\d+$/.test(raw.trim()) || !Number.isSafeInteger(Number(raw)))
      throw new UsageError(`${this.cmd}: --${name} expects a whole number, got '${raw}'`);
    return checkRange(this.cmd, name, raw, Number(raw), range, 'an integer');
  }

  /** One of `choices` (default `def`). */
  choice<T extends string>(name: string, choices: readonly T[], def: T): T {
    const raw = this.raw(name);
    if (raw === undefined) return def;
    if (!(choices as readonly string[]).includes(raw))
      throw new UsageError(
        `${this.cmd}: --${name} must be ${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1]}, got '${raw}'`,
      );
    return raw as T;
  }
}

export const BACKEND_CHOICES = ['webgpu', 'wasm', 'gpujs', 'cpu'] as const;

/**
 * A node:util parseArgs options table from flag names: `valued` take a value (`--steps N`, read with FlagReader),
 * `switches` are booleans (`--resume`). The names stay literal types, so the parsed `values` are typed per flag.
 */
export function flagTable<V extends string, S extends string = never>(
  valued: readonly V[],
  switches: readonly S[] = [],
): { [K in V]: { type: 'string' } } & { [K in S]: { type: 'boolean' } } {
  const table: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const n of valued) table[n] = { type: 'string' };
  for (const n of switches) table[n] = { type: 'boolean' };
  return table as never;
}

/** Help of the run flags whose text is the same in every training command: [flag, line, continuation lines...]. */
const RUN_FLAG_HELP: string[][] = [
  [
    '--resume',
    'continue from OUT/checkpoint (same trajectory as an uninterrupted run); refuses when there',
    'is no checkpoint or a flag that shapes the run differs from the checkpointed one',
  ],
  ['--resume-anyway', 'resume even with such differences (they are listed)'],
  ['--backend B', 'webgpu | wasm | gpujs | cpu (default: the fastest available)'],
  ['--allow-nonfinite', 'load --model weights even if some are NaN/Inf (refused by default, naming the tensor)'],
  ['--threads N', 'threads of the wasm backend (default: every core; results are identical for any N)'],
];

/** Those help lines, each description starting at column `col` like the rest of the command's help. */
export function runFlagsHelp(col: number): string {
  return RUN_FLAG_HELP.map(([flag, ...text]) => text.map((t, i) => (i ? '' : `  ${flag}`).padEnd(col) + t).join('\n')).join('\n');
}

/** The flags every training command (train, rl) takes alike: where the model, data and run directory are, evaluation and
 * checkpoint cadence, resuming, the backend and the seed. */
export const RUN_FLAGS = flagTable(
  ['model', 'data', 'out', 'eval-every', 'eval-rows', 'ckpt-every', 'backend', 'threads', 'seed'],
  ['resume', 'resume-anyway', 'allow-nonfinite'],
);
