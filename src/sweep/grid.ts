// A sweep's grid: conditions x k x seeds, each cell one `latentlm train` run in its own directory. A condition is
// nothing but train flags, so a new training condition is one line in CONDITIONS (or a `name=--flag value` entry on
// the command line) and the runner never changes. Pure (no I/O): planning, naming and the dry run live here.

export interface ConditionSpec {
  /** Train flags that select the condition (e.g. ['--baseline', 'pause']). */
  flags: string[];
  /**
   * Whether the grid's k values apply (`--latents K`, one cell per k). When not, the condition has one cell per seed,
   * named by the `--latents` in its own flags (0 without one).
   */
  usesK: boolean;
}

/** The conditions known by name. Anything else is given as `name=--flag value ...`. */
export const CONDITIONS: Record<string, ConditionSpec> = {
  none: { flags: ['--latents', '0'], usesK: false },
  pause: { flags: ['--baseline', 'pause'], usesK: true },
  latent: { flags: [], usesK: true },
  scaled: { flags: ['--feedback', 'scaled'], usesK: true },
  gated: { flags: ['--feedback', 'gated'], usesK: true },
  supervised: { flags: ['--supervise-latents', '1'], usesK: true },
  'two-trunk': { flags: ['--mode', 'two-trunk'], usesK: true },
  // the sub-step conditions of the train command's --condition flag (issue 11, part B)
  scratch: { flags: ['--condition', 'scratch'], usesK: false },
  internalize: { flags: ['--condition', 'internalize'], usesK: true },
};

export interface NamedCondition extends ConditionSpec {
  name: string;
}

export interface GridSpec {
  conditions: NamedCondition[];
  seeds: number[];
  /** Latents per breakpoint; conditions without latent slots get one cell at k = 0. */
  ks: number[];
  /** Optimizer steps of every cell (always passed as `--steps`, so completion can be checked against it). */
  steps: number;
  /** Flags shared by every cell (e.g. --data DIR, --gen-rows 200, --eval-every 500). */
  trainFlags: string[];
}

export interface Cell {
  /** `<condition>-k<k>-s<seed>`: the cell's directory name under the sweep's output. */
  id: string;
  condition: string;
  k: number;
  seed: number;
  /** Train flags of this cell, without `--out` (the runner adds it) and without `--resume`. */
  args: string[];
}

// Flags the grid sets itself: given again among the shared flags they would silently override a cell's identity.
const GRID_FLAGS = ['--seed', '--latents', '--steps', '--out', '--resume'];

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.]*(-[A-Za-z0-9_.]+)*$/;

/**
 * `none,pause,latent,fast=--feedback scaled --lr 2e-3`: known names from CONDITIONS, or `name=flags` (flags split
 * on whitespace, no commas; crossed with the grid's k values unless they set --latents themselves). Names become
 * directory names, so they are restricted.
 */
export function parseConditions(text: string, known: Record<string, ConditionSpec> = CONDITIONS): NamedCondition[] {
  const out: NamedCondition[] = [];
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim();
    if (!NAME.test(name) || /-k\d+-s\d+$/.test(name))
      throw new Error(`--conditions: '${name}' is not a usable condition name (letters, digits, '_', '.', '-')`);
    if (out.some((c) => c.name === name)) throw new Error(`--conditions: '${name}' is given twice`);
    if (eq < 0) {
      const spec = known[name];
      if (!spec)
        throw new Error(
          `--conditions: unknown condition '${name}' (known: ${Object.keys(known).join(', ')}; or define one as name=--flag value)`,
        );
      out.push({ name, ...spec, flags: [...spec.flags] });
    } else {
      const flags = part
        .slice(eq + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean);
      if (flags.length && !flags[0]!.startsWith('--'))
        throw new Error(`--conditions: '${name}=${part.slice(eq + 1)}' should start with a --flag`);
      checkNoGridFlags(flags, `condition '${name}'`, ['--latents']);
      // a definition that sets its own --latents is not crossed with the grid's k values
      out.push({ name, flags, usesK: !flags.some((f) => f === '--latents' || f.startsWith('--latents=')) });
    }
  }
  if (!out.length) throw new Error('--conditions: no conditions given');
  return out;
}

/** Comma-separated non-negative integers (`0,1,2`), or a range `0-4` / count `x5` (= 0..4). */
export function parseIntList(text: string, flag: string): number[] {
  const t = text.trim();
  let vals: number[];
  const range = /^(\d+)-(\d+)$/.exec(t),
    count = /^x(\d+)$/.exec(t);
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])];
    if (b < a) throw new Error(`${flag}: empty range '${t}'`);
    vals = Array.from({ length: b - a + 1 }, (_, i) => a + i);
  } else if (count) vals = Array.from({ length: Number(count[1]) }, (_, i) => i);
  else
    vals = t
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map(Number);
  if (!vals.length || vals.some((v) => !Number.isInteger(v) || v < 0))
    throw new Error(`${flag} expects non-negative integers like 0,1,2 or 0-2, got '${text}'`);
  if (new Set(vals).size !== vals.length) throw new Error(`${flag}: '${text}' repeats a value`);
  return vals;
}

function checkNoGridFlags(flags: string[], where: string, allowed: string[] = []) {
  for (const f of flags) {
    const name = f.split('=')[0]!;
    if (GRID_FLAGS.includes(name) && !allowed.includes(name))
      throw new Error(`${where}: ${name} is set by the sweep itself (use the sweep's --seeds/--k/--steps/--out)`);
  }
}

/** The k a condition's own flags set (`--latents N` or `--latents=N`, the last one wins), 0 without one. */
function ownLatents(flags: string[]): number {
  let k = 0;
  flags.forEach((f, i) => {
    const v = f === '--latents' ? flags[i + 1] : f.startsWith('--latents=') ? f.slice('--latents='.length) : undefined;
    if (v !== undefined) k = Number(v);
  });
  return Number.isInteger(k) && k >= 0 ? k : 0;
}

/** Every cell of the grid, conditions outermost, then k, then seed (the order they are launched in). */
export function planCells(spec: GridSpec): Cell[] {
  if (!spec.seeds.length) throw new Error('sweep: no seeds');
  if (!spec.ks.length) throw new Error('sweep: no k values');
  if (!(Number.isInteger(spec.steps) && spec.steps > 0)) throw new Error(`sweep: --steps must be a positive integer, got ${spec.steps}`);
  checkNoGridFlags(spec.trainFlags, 'train flags');
  const cells: Cell[] = [];
  for (const c of spec.conditions) {
    for (const k of c.usesK ? spec.ks : [ownLatents(c.flags)]) {
      if (c.usesK && k === 0) throw new Error(`sweep: k = 0 with condition '${c.name}' has no latent slots (use the 'none' condition)`);
      for (const seed of spec.seeds) {
        const kFlags = c.usesK ? ['--latents', String(k)] : [];
        cells.push({
          id: `${c.name}-k${k}-s${seed}`,
          condition: c.name,
          k,
          seed,
          args: [...c.flags, ...kFlags, '--seed', String(seed), '--steps', String(spec.steps), ...spec.trainFlags],
        });
      }
    }
  }
  return cells;
}
