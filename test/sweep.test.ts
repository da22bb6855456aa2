// The sweep: its statistics against known values, grid planning, the table, and the runner (pool size, skipping done
// cells, --resume from a checkpoint, failures, mismatched flags) driven through a stand-in train command
// (test/fixtures/fake-train.mjs) so no model trains here. The real train command is in sweep-resume.test.ts.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { meanInterval, tQuantile975, wilsonInterval } from '../src/sweep/stats.js';
import { parseConditions, parseIntList, planCells, type GridSpec } from '../src/sweep/grid.js';
import { sweepMarkdown, sweepRows, sweepSvg } from '../src/sweep/table.js';
import { runSweep } from '../src/sweep/run.js';
import { barPlot } from '../src/io/plot.js';

const FAKE_TRAIN = [process.execPath, fileURLToPath(new URL('./fixtures/fake-train.mjs', import.meta.url))];
const tmp = () => mkdtempSync(join(tmpdir(), 'latentlm-sweep-'));

describe('sweep statistics', () => {
  it('Wilson interval matches published values', () => {
    const a = wilsonInterval(50, 100);
    expect(a.lo).toBeCloseTo(0.4038, 4);
    expect(a.hi).toBeCloseTo(0.5962, 4);
    // 0 of 10: the upper bound is z^2 / (n + z^2); the Wald interval would be [0, 0]
    const z = wilsonInterval(0, 10);
    expect(z.lo).toBe(0);
    expect(z.hi).toBeCloseTo(3.8415 / 13.8415, 4);
    const f = wilsonInterval(10, 10);
    expect(f.lo).toBeCloseTo(1 - 3.8415 / 13.8415, 4);
    expect(f.hi).toBe(1);
    // by definition the bounds are the two roots p of (phat - p)^2 = z^2 p (1 - p) / n (the score test's boundary)
    for (const [k, n] of [
      [187, 600],
      [3, 24],
      [599, 600],
    ] as const) {
      const { lo, hi } = wilsonInterval(k, n),
        phat = k / n,
        z2 = 1.959963984540054 ** 2;
      for (const p of [lo, hi]) expect((phat - p) ** 2 - (z2 * p * (1 - p)) / n).toBeCloseTo(0, 12);
      expect(lo).toBeLessThan(phat);
      expect(hi).toBeGreaterThan(phat);
    }
    expect(wilsonInterval(0, 0)).toEqual({ lo: 0, hi: 1 });
    expect(() => wilsonInterval(5, 4)).toThrow(/successes <= n/);
  });

  it('t quantiles: table values and the large-df expansion', () => {
    expect(tQuantile975(1)).toBeCloseTo(12.706, 3);
    expect(tQuantile975(2)).toBeCloseTo(4.303, 3);
    expect(tQuantile975(30)).toBeCloseTo(2.042, 3);
    expect(tQuantile975(40)).toBeCloseTo(2.0211, 3);
    expect(tQuantile975(60)).toBeCloseTo(2.0003, 3);
    expect(tQuantile975(120)).toBeCloseTo(1.9799, 3);
    expect(() => tQuantile975(0)).toThrow(/integer >= 1/);
  });

  it('mean with a t interval over seeds', () => {
    // mean 2, sd 1, n 3: half-width t(2) / sqrt(3) = 4.3027 / 1.7321 = 2.4841
    const m = meanInterval([1, 2, 3]);
    expect(m.mean).toBe(2);
    expect(m.sd).toBeCloseTo(1, 12);
    expect(m.ci!.lo).toBeCloseTo(-0.4841, 3);
    expect(m.ci!.hi).toBeCloseTo(4.4841, 3);
    expect(meanInterval([0.5]).ci).toBeUndefined();
    expect(meanInterval([undefined, NaN]).n).toBe(0);
    expect(meanInterval([2, undefined, 4]).n).toBe(2);
  });
});

describe('sweep grid', () => {
  const spec = (over: Partial<GridSpec> = {}): GridSpec => ({
    conditions: parseConditions('none,pause,latent'),
    seeds: [0, 1],
    ks: [1, 2],
    steps: 10,
    trainFlags: ['--gen-rows', '5'],
    ...over,
  });

  it('plans conditions x k x seeds; the no-latent condition runs once per seed at k = 0', () => {
    const cells = planCells(spec());
    expect(cells.map((c) => c.id)).toEqual([
      'none-k0-s0',
      'none-k0-s1',
      'pause-k1-s0',
      'pause-k1-s1',
      'pause-k2-s0',
      'pause-k2-s1',
      'latent-k1-s0',
      'latent-k1-s1',
      'latent-k2-s0',
      'latent-k2-s1',
    ]);
    expect(cells[0]!.args).toEqual(['--latents', '0', '--seed', '0', '--steps', '10', '--gen-rows', '5']);
    expect(cells[5]!.args).toEqual(['--baseline', 'pause', '--latents', '2', '--seed', '1', '--steps', '10', '--gen-rows', '5']);
  });

  it('defined conditions are train flags; bad names, grid flags and k = 0 are refused', () => {
    const c = parseConditions('latent,fast=--lr 2e-3 --feedback scaled');
    expect(c[1]).toEqual({ name: 'fast', flags: ['--lr', '2e-3', '--feedback', 'scaled'], usesK: true });
    // a definition with its own --latents is one cell per seed, named by that k
    const own = planCells({
      conditions: parseConditions('p1=--baseline pause --latents 1'),
      seeds: [0],
      ks: [2, 4],
      steps: 3,
      trainFlags: [],
    });
    expect(own.map((x) => [x.id, x.args.join(' ')])).toEqual([['p1-k1-s0', '--baseline pause --latents 1 --seed 0 --steps 3']]);
    expect(() => parseConditions('nope')).toThrow(/unknown condition 'nope'/);
    expect(() => parseConditions('latent,latent')).toThrow(/given twice/);
    expect(() => parseConditions('a/b=--lr 1')).toThrow(/not a usable condition name/);
    expect(() => parseConditions('x=--seed 3')).toThrow(/--seed is set by the sweep/);
    expect(() => planCells(spec({ trainFlags: ['--out', 'x'] }))).toThrow(/--out is set by the sweep/);
    expect(() => planCells(spec({ ks: [0] }))).toThrow(/k = 0 with condition 'pause'/);
    expect(parseIntList('0-3', '--seeds')).toEqual([0, 1, 2, 3]);
    expect(parseIntList('x3', '--seeds')).toEqual([0, 1, 2]);
    expect(() => parseIntList('1,1', '--seeds')).toThrow(/repeats/);
    expect(() => parseIntList('a', '--k')).toThrow(/--k expects non-negative integers/);
  });
});

describe('sweep table', () => {
  const cells = planCells({ conditions: parseConditions('latent'), seeds: [0, 1, 2], ks: [2], steps: 5, trainFlags: [] });
  const finished = cells.map((cell, i) => ({
    cell,
    summary: {
      steps: 5,
      seconds: 10 + i,
      final: {
        type: 'eval' as const,
        step: 5,
        testLoss: 0.2,
        postBreakLoss: 1 + i,
        usage: { normal: { loss: 0, postBreakLoss: 0, labels: 1 }, gapSwapped: 0.1 * i },
        accuracy: [0.4, 0.5, 0.6][i],
        accuracyRows: 100,
      },
    },
  }));

  it("pools the seeds' problems for Wilson and spreads the seeds for t", () => {
    const [r] = sweepRows(finished as never);
    expect(r!.accuracyPooled).toMatchObject({ correct: 150, n: 300, p: 0.5 });
    expect(r!.accuracyPooled!.ci.lo).toBeCloseTo(wilsonInterval(150, 300).lo, 12);
    expect(r!.accuracy.perSeed).toEqual([0.4, 0.5, 0.6]);
    // per-seed sd 0.1: half-width 4.3027 * 0.1 / sqrt(3)
    expect(r!.accuracy.ci!.hi - 0.5).toBeCloseTo((4.3027 * 0.1) / Math.sqrt(3), 4);
    expect(r!.postBreakLoss.mean).toBe(2);
    expect(r!.gapZeroed.n).toBe(0);
    const md = sweepMarkdown([r!]);
    expect(md).toMatch(
      /\| latent k=2 \| 0,1,2 \| 50\.0 \[44\.4, 55\.6\] \(150\/300\) \| 50\.0 \[25\.2, 74\.8\] \(40\.0 \/ 50\.0 \/ 60\.0\) \|/,
    );
    expect(md).toMatch(/Wilson score interval/);
    expect(md).toMatch(/Student-t/);
  });

  it('positions per breakpoint get a column only where the trainer reports them', () => {
    expect(sweepMarkdown(sweepRows(finished as never))).not.toMatch(/positions \/ breakpoint/);
    const withPos = finished.map((f, i) => ({ ...f, summary: { ...f.summary, final: { ...f.summary.final, reasoningPositions: 2 + i } } }));
    const [r] = sweepRows(withPos as never);
    expect(r!.positionsPerBreakpoint.mean).toBe(3);
    expect(sweepMarkdown([r!])).toMatch(/positions \/ breakpoint \| wall time/);
    expect(sweepMarkdown([r!])).toMatch(/\| 3\.0 \[0\.5, 5\.5\] \| 11 s/);
  });

  it('accuracy t intervals stay inside [0, 1]', () => {
    const low = finished.map((f, i) => ({ ...f, summary: { ...f.summary, final: { ...f.summary.final, accuracy: [0, 0.02, 0][i] } } }));
    const [r] = sweepRows(low as never);
    expect(r!.accuracy.ci!.lo).toBe(0);
    expect(r!.accuracy.ci!.hi).toBeCloseTo(0.00667 + (4.3027 * 0.011547) / Math.sqrt(3), 4);
    expect(r!.postBreakLoss.ci!.lo).toBeLessThan(1); // other quantities are not cut
  });

  it('a cell without a graded-problem count gives no pooled interval rather than a wrong one', () => {
    const noRows = finished.map((f) => ({ ...f, summary: { ...f.summary, final: { ...f.summary.final, accuracyRows: undefined } } }));
    const [r] = sweepRows(noRows as never);
    expect(r!.accuracyPooled).toBeUndefined();
    expect(sweepMarkdown([r!])).toMatch(/\| latent k=2 \| 0,1,2 \| – \|/);
  });

  it('the SVG draws interval whiskers, and bar plots keep whiskers inside the axis', () => {
    const svg = sweepSvg(sweepRows(finished as never));
    expect(svg).not.toMatch(/NaN/);
    expect(svg).toMatch(/<path d="M[\d.]+ [\d.]+V/);
    const plain = barPlot({ categories: ['a'], series: [{ name: 'x', values: [1] }] });
    const whiskered = barPlot({ categories: ['a'], series: [{ name: 'x', values: [1], errors: [{ lo: 0.5, hi: 3 }] }] });
    expect(plain).not.toMatch(/stroke="#222"/);
    expect(whiskered).toMatch(/stroke="#222"/);
    // the axis reaches the whisker's top (3), not only the bar's (1)
    expect(whiskered).toMatch(/>3<\/text>/);
  });
});

describe('sweep runner (stand-in train command)', () => {
  const spec = (conds = 'none,latent', seeds = [0, 1, 2]): GridSpec => ({
    conditions: parseConditions(conds),
    seeds,
    ks: [2],
    steps: 7,
    trainFlags: ['--gen-rows', '3'],
  });

  it('runs every cell at most --jobs at a time, writes the table, and skips finished cells on a rerun', async () => {
    const root = tmp(),
      out = join(root, 'sweep');
    const events: string[] = [];
    const r = await runSweep(spec(), {
      out,
      jobs: 2,
      trainCommand: FAKE_TRAIN,
      onEvent: (e) => e.type === 'finish' && events.push(`${e.cell.id}:${e.status}`),
    });
    expect(r.cells.map((c) => c.status)).toEqual(Array(6).fill('done'));
    expect(events.length).toBe(6);
    const conc = readFileSync(join(out, 'concurrency.txt'), 'utf8').trim().split('\n').map(Number);
    expect(Math.max(...conc)).toBeLessThanOrEqual(2);
    const argv = JSON.parse(readFileSync(join(out, 'latent-k2-s1', 'argv.jsonl'), 'utf8').trim());
    expect(argv).toEqual(['--latents', '2', '--seed', '1', '--steps', '7', '--gen-rows', '3', '--out', join(out, 'latent-k2-s1')]);
    const json = JSON.parse(readFileSync(r.files.tableJson, 'utf8'));
    expect(json.rows.map((x: { condition: string }) => x.condition)).toEqual(['none', 'latent']);
    expect(json.rows[1].accuracyPooled).toMatchObject({ correct: 150, n: 300 });
    expect(readFileSync(r.files.tableMd, 'utf8')).toMatch(/\| latent k=2 \| 0,1,2 \| 50\.0 /);
    expect(readFileSync(r.files.svg, 'utf8')).toMatch(/^<svg/);

    const before = statSync(join(out, 'none-k0-s0', 'summary.json')).mtimeMs;
    const again = await runSweep(spec(), { out, jobs: 2, trainCommand: FAKE_TRAIN });
    expect(again.cells.map((c) => c.status)).toEqual(Array(6).fill('skipped'));
    expect(statSync(join(out, 'none-k0-s0', 'summary.json')).mtimeMs).toBe(before);
    expect(
      readFileSync(join(out, 'none-k0-s0', 'argv.jsonl'), 'utf8')
        .trim()
        .split('\n').length,
    ).toBe(1);
  });

  it('continues a cell with a checkpoint through --resume, restarts one without, and redoes a short summary', async () => {
    const root = tmp(),
      out = join(root, 'sweep');
    const s = spec('latent', [0, 1]);
    const cells = planCells(s);
    for (const c of cells) {
      mkdirSync(join(out, c.id), { recursive: true });
      writeFileSync(join(out, c.id, 'cell.json'), JSON.stringify({ id: c.id, condition: c.condition, k: c.k, seed: c.seed, args: c.args }));
    }
    // seed 0: interrupted after a checkpoint, with the summary a stopped run writes (fewer steps than asked)
    mkdirSync(join(out, 'latent-k2-s0', 'checkpoint'));
    writeFileSync(join(out, 'latent-k2-s0', 'checkpoint', 'state.json'), '{}');
    writeFileSync(join(out, 'latent-k2-s0', 'summary.json'), JSON.stringify({ steps: 3, final: {} }));
    const r = await runSweep(s, { out, jobs: 1, trainCommand: FAKE_TRAIN });
    expect(r.cells.map((c) => c.status)).toEqual(['done', 'done']);
    const argv0 = JSON.parse(readFileSync(join(out, 'latent-k2-s0', 'argv.jsonl'), 'utf8'));
    const argv1 = JSON.parse(readFileSync(join(out, 'latent-k2-s1', 'argv.jsonl'), 'utf8'));
    expect(argv0[argv0.length - 1]).toBe('--resume');
    expect(argv1).not.toContain('--resume');
  });

  it('a failing cell is reported with its log and the others still run; other flags in an existing cell are refused', async () => {
    const root = tmp(),
      out = join(root, 'sweep');
    const s: GridSpec = { ...spec('latent,broken=--fail', [0]) };
    const r = await runSweep(s, { out, jobs: 2, trainCommand: FAKE_TRAIN });
    expect(r.cells.map((c) => `${c.cell.id}:${c.status}`)).toEqual(['latent-k2-s0:done', 'broken-k2-s0:failed']);
    expect(r.cells[1]!.error).toMatch(
      /broken-k2-s0: train exit code 3 without a complete summary\.json; see .*broken-k2-s0[/\\]train\.log/,
    );
    expect(readFileSync(join(out, 'broken-k2-s0', 'train.log'), 'utf8')).toMatch(/failing as asked/);
    expect(r.rows.map((x) => x.condition)).toEqual(['latent']);
    await expect(runSweep({ ...s, steps: 8 }, { out, jobs: 1, trainCommand: FAKE_TRAIN })).rejects.toThrow(
      /latent-k2-s0 was trained with other flags/,
    );
  });

  it("refuses a second sweep into the same directory while the first runs, and takes over a dead one's lock", async () => {
    const root = tmp(),
      out = join(root, 'sweep');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'sweep.lock'), String(process.ppid)); // a live process
    await expect(runSweep(spec('latent', [0]), { out, jobs: 1, trainCommand: FAKE_TRAIN })).rejects.toThrow(
      new RegExp(`another sweep \\(pid ${process.ppid}\\) is running`),
    );
    writeFileSync(join(out, 'sweep.lock'), '999999999'); // no such process: a killed sweep's leftover
    const r = await runSweep(spec('latent', [0]), { out, jobs: 1, trainCommand: FAKE_TRAIN });
    expect(r.cells[0]!.status).toBe('done');
    expect(() => statSync(join(out, 'sweep.lock'))).toThrow(); // released
  });

  it('an aborted sweep starts no further cells', async () => {
    const root = tmp(),
      out = join(root, 'sweep');
    const ac = new AbortController();
    const r = await runSweep(spec('latent', [0, 1, 2]), {
      out,
      jobs: 1,
      trainCommand: FAKE_TRAIN,
      signal: ac.signal,
      interruptChildren: () => false,
      onEvent: (e) => e.type === 'finish' && ac.abort('test'),
    });
    expect(r.stopped).toBe(true);
    expect(r.cells.map((c) => c.status)).toEqual(['done', 'stopped', 'stopped']);
  });
});
