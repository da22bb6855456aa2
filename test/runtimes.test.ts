// The sources run unchanged in Node (tsx), Bun and Deno: the public-API smoke script in each, then the main job
// `examples/train.ts --steps 3` in each (on the embedded default model; skipped while it is not built).
// Each run's backend is printed: what `createBackend()` and the trainer's default pick in that runtime.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TMP, run } from './_dist.js';
import { writeTinyModel } from './_tiny-model.js';

const BIN = join(ROOT, 'node_modules', '.bin');
const RUNTIMES = [
  { name: 'node (tsx)', bin: join(BIN, 'tsx'), args: [] as string[] },
  { name: 'bun', bin: join(BIN, 'bun'), args: ['run'] },
  { name: 'deno', bin: join(BIN, 'deno'), args: ['run', '-A'] },
];
const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

const generated = join(ROOT, 'src', 'generated', 'default-model.ts');
const haveDefaultModel = existsSync(generated) && !/export default null/.test(readFileSync(generated, 'utf8').slice(0, 400));
if (!haveDefaultModel)
  console.log(
    '[runtimes] skipping `examples/train.ts --steps 3`: the default model is not built (models/default absent; src/generated/default-model.ts is empty)',
  );

for (const rt of RUNTIMES) {
  const have = existsSync(rt.bin);
  if (!have) console.log(`[runtimes] skipping ${rt.name}: ${rt.bin} is not installed (npm ci)`);

  describe.skipIf(!have)(rt.name, () => {
    it('runs the public-API smoke script (tokenizer, GSM8K split, reward, tiny Qwen2 forward on CPU)', async () => {
      const t0 = performance.now();
      const { stdout } = await run(rt.bin, [...rt.args, 'test/_runtime-smoke.ts'], { cwd: ROOT, maxBuffer: 64 << 20 });
      const line = stdout.split('\n').find((l) => l.startsWith('SMOKE '));
      expect(line, `no SMOKE line in:\n${stdout}`).toBeDefined();
      const s = JSON.parse(line!.slice(6));
      console.log(`[runtimes] ${rt.name}: smoke ok (${s.checks.length} checks), createBackend() -> ${s.autoBackend} (${secs(t0)})`);
      expect(s.ok).toBe(true);
      expect(s.checks.length).toBe(9);
    });

    // the default model when it is built; a tiny random model (test/_tiny-model.ts) always, so the runtime path
    // of the main job (HF directory loading, phase-1 steps, eval, generation, report, checkpoint) is covered now
    it.skipIf(!haveDefaultModel)('runs examples/train.ts --steps 3 on the default model', () => trainRun(rt, []), 600_000);
    it(
      'runs examples/train.ts --steps 3 on a tiny random model given as --model DIR',
      () => trainRun(rt, ['--model', tinyDir(), '--lr', '1e-3']),
      600_000,
    );
  });
}

let tiny: Promise<string> | undefined;
const tinyDir = () => join(TMP, 'tiny-model');
beforeAll(async () => {
  tiny ??= writeTinyModel(tinyDir()).then(() => tinyDir());
  await tiny;
});

async function trainRun(rt: (typeof RUNTIMES)[number], extra: string[]) {
  const out = join(TMP, `train-${rt.name.split(' ')[0]}${extra.length ? '-tiny' : ''}`);
  rmSync(out, { recursive: true, force: true });
  const t0 = performance.now();
  const args = [
    'examples/train.ts',
    '--steps',
    '3',
    '--batch',
    '2',
    '--eval-every',
    '0',
    '--eval-rows',
    '4',
    '--gen-rows',
    '2',
    '--out',
    out,
    ...extra,
  ];
  const { stdout } = await run(rt.bin, [...rt.args, ...args], { cwd: ROOT, maxBuffer: 64 << 20 });
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r.type === 'step');
  const backendLine = stdout.split('\n').find((l) => /^backend:/.test(l)) ?? '';
  console.log(
    `[runtimes] ${rt.name}: train.ts --steps 3 ${extra.length ? '(tiny model)' : '(default model)'}: loss ${steps.map((s) => s.loss.toFixed(3)).join(' -> ')} (${secs(t0)}); ${backendLine.slice(0, 160)}`,
  );
  expect(summary.steps).toBe(3);
  expect(summary.backend).toBe(backendLine.replace(/^backend: (\w+).*/, '$1'));
  expect(steps.map((s) => s.step)).toEqual([1, 2, 3]);
  for (const s of steps) expect(Number.isFinite(s.loss) && s.loss > 0).toBe(true);
  expect(Number.isFinite(summary.final?.testLoss)).toBe(true);
  expect(existsSync(join(out, 'report.svg'))).toBe(true);
  expect(existsSync(join(out, 'checkpoint'))).toBe(true);
}

// Ctrl-C in the main job: the first SIGINT lets the current step finish, saves a checkpoint and exits cleanly; a
// later `--resume` picks up at that step. Run under plain Node with tsx as a loader so the signal reaches the process
// that trains (the tsx CLI would relay it through a parent).
describe('examples/train.ts and Ctrl-C', () => {
  it('SIGINT saves a checkpoint at the current step and --resume continues from it', async () => {
    const { spawn } = await import('node:child_process');
    const out = join(TMP, 'train-sigint');
    rmSync(out, { recursive: true, force: true });
    const base = [
      'examples/train.ts',
      '--model',
      tinyDir(),
      '--lr',
      '1e-3',
      '--batch',
      '2',
      '--eval-every',
      '0',
      '--eval-rows',
      '4',
      '--gen-rows',
      '0',
      '--out',
      out,
    ];
    const child = spawn(process.execPath, ['--import', 'tsx', ...base, '--steps', '100000'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let signalled = false;
    child.stderr.on('data', () => {});
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // plain-lines progress: "phase 1 step N/100000 ..."; interrupt once step 3 or later has run
      const shown = [...stdout.matchAll(/step (\d+)\/100000/g)].map((m) => Number(m[1]));
      if (!signalled && shown.some((n) => n >= 3)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    const code = await exit;
    expect(signalled, `never saw progress lines:\n${stdout}`).toBe(true);
    expect(code, stdout).toBe(130);
    expect(stdout).toMatch(/Ctrl-C: finishing this step and saving a checkpoint/);
    const state = JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.step).toBeGreaterThanOrEqual(3);
    expect(state.step).toBeLessThan(100000);
    const stepLines = () =>
      readFileSync(join(out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((r) => r.type === 'step');
    const stepsBefore = stepLines();
    expect(stepsBefore[stepsBefore.length - 1].step).toBe(state.step);
    // resume for two more steps (a different --steps changes the schedule: --resume-anyway): the log continues at state.step + 1
    await run(process.execPath, ['--import', 'tsx', ...base, '--steps', String(state.step + 2), '--resume', '--resume-anyway'], {
      cwd: ROOT,
      maxBuffer: 64 << 20,
    });
    expect(
      stepLines()
        .map((s) => s.step)
        .slice(-3),
    ).toEqual([state.step, state.step + 1, state.step + 2]);
    expect(JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')).step).toBe(state.step + 2);
  }, 600_000);
});
