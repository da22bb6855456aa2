// Reads the runs of scripts/serial-grid.sh (DIR/<condition>-s<seed>/summary.json) or of `latentlm sweep`
// (DIR/<condition>-k<k>-s<seed>/summary.json) and prints the grid as a Markdown
// table: held-out accuracy pooled over seeds with its Wilson 95 % interval (and per seed), post-breakpoint loss, the
// three usage-probe gaps, reasoning positions per breakpoint, teacher-forced result-token accuracy, wall time.
//   npx tsx scripts/serial-grid-table.ts DIR
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: npx tsx scripts/serial-grid-table.ts DIR');
  process.exit(1);
}
interface Grid {
  heldOutAccuracy?: number;
  heldOutCount?: number;
  postBreakLoss?: number;
  gapZeroed?: number;
  gapSwapped?: number;
  gapRemoved?: number;
  reasoningPositions?: number;
  resultTokenAccuracy?: number;
  resultExactAccuracy?: number;
  wallSeconds?: number;
}
const groups = new Map<string, { seed: number; g: Grid }[]>();
for (const name of readdirSync(dir).sort()) {
  const m = /^(.+?)(?:-k\d+)?-s(\d+)$/.exec(name);
  const file = join(dir, name, 'summary.json');
  if (!m || !existsSync(file)) continue;
  const g = JSON.parse(readFileSync(file, 'utf8')).grid as Grid | undefined;
  if (!g) throw new Error(`${file}: no "grid" figures (written by an older latentlm?)`);
  if (!groups.has(m[1])) groups.set(m[1], []);
  groups.get(m[1])!.push({ seed: Number(m[2]), g });
}
/** Wilson score interval for k successes in n trials (95 %). */
function wilson(k: number, n: number): [number, number] {
  if (!n) return [NaN, NaN];
  const z = 1.96,
    p = k / n,
    d = 1 + (z * z) / n,
    c = p + (z * z) / (2 * n),
    h = z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [(c - h) / d, (c + h) / d];
}
const mean = (xs: (number | undefined)[]) => {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
};
const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : '–');
console.log(
  '| condition | seeds | held-out accuracy (pooled) | 95 % interval | per seed | post-break loss | zeroed | swapped | removed | positions / breakpoint | result digits / whole results (teacher-forced) | wall s |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
const order = ['none', 'pause', 'latent', 'scratch', 'internalize'];
for (const name of [...groups.keys()].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b))) {
  const runs = groups.get(name)!.sort((a, b) => a.seed - b.seed);
  let k = 0,
    n = 0;
  for (const { g } of runs) {
    k += Math.round((g.heldOutAccuracy ?? 0) * (g.heldOutCount ?? 0));
    n += g.heldOutCount ?? 0;
  }
  const [lo, hi] = wilson(k, n);
  const gs = runs.map((r) => r.g);
  console.log(
    `| ${name} | ${runs.length} | ${pct(k / n)} % (${k}/${n}) | ${pct(lo)}–${pct(hi)} % | ${runs.map((r) => pct(r.g.heldOutAccuracy ?? NaN)).join(' / ')} | ${f(mean(gs.map((g) => g.postBreakLoss)))} | ${f(mean(gs.map((g) => g.gapZeroed)))} | ${f(mean(gs.map((g) => g.gapSwapped)))} | ${f(mean(gs.map((g) => g.gapRemoved)))} | ${f(mean(gs.map((g) => g.reasoningPositions)), 1)} | ${pct(mean(gs.map((g) => g.resultTokenAccuracy)))} % / ${pct(mean(gs.map((g) => g.resultExactAccuracy)))} % | ${f(mean(gs.map((g) => g.wallSeconds)), 0)} |`,
  );
}
