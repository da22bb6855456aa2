// Issue 12 (training side): Ctrl-C as a terminal sends it (to the whole foreground process group, through a pseudo-
// terminal made by util-linux `script`) on each entry point; kill -9 + --resume reproducing an uninterrupted run
// record for record; --resume refusals; flag validation. All runs use the tiny random model (test/_tiny-model.ts).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TMP, ensureDist, run } from './_dist.js';
import { writeTinyModel } from './_tiny-model.js';

const haveScript = spawnSync('script', ['--version']).status === 0;
if (!haveScript) console.log('[robust] skipping the Ctrl-C tests: util-linux `script` (pseudo-terminal) is not installed');
const BIN = join(ROOT, 'node_modules', '.bin');
const tiny = join(TMP, 'robust-tiny');
const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

beforeAll(async () => {
  mkdirSync(TMP, { recursive: true });
  if (!existsSync(join(tiny, 'model.safetensors'))) await writeTinyModel(tiny);
}, 120_000);

// The tsx wrapper kills a child whose event loop is busy for more than ~60 ms, which a step of the default model is
// (~0.2 s per sequence here) and the tiny model's is not: the tsx entries run the default model where it is built.
const generated = join(ROOT, 'src', 'generated', 'default-model.ts');
const haveDefaultModel = existsSync(generated) && !/export default null/.test(readFileSync(generated, 'utf8').slice(0, 400));
if (!haveDefaultModel)
  console.log(
    '[robust] the default model is not built: the Ctrl-C tests under tsx use the tiny model, which does not reproduce the wrapper killing a busy child',
  );
const slowFlags = (out: string) => [
  ...(haveDefaultModel ? [] : ['--model', tiny]),
  '--batch',
  '2',
  '--eval-every',
  '0',
  '--eval-rows',
  '2',
  '--gen-rows',
  '0',
  '--steps',
  '100000',
  '--out',
  out,
];
const trainFlags = (out: string, steps: number) => [
  '--model',
  tiny,
  '--lr',
  '1e-3',
  '--batch',
  '2',
  '--eval-every',
  '0',
  '--eval-rows',
  '2',
  '--gen-rows',
  '0',
  '--steps',
  String(steps),
  '--out',
  out,
];

interface PtyResult {
  code: number | null;
  output: string;
  /** Seconds from the first Ctrl-C to the exit. */
  afterCtrlC: number;
}

/**
 * Runs `cmd` on a pseudo-terminal and types Ctrl-C (0x03 on the terminal's input: the line discipline sends SIGINT
 * to the foreground process group, npx and tsx wrappers included) once a progress line shows step >= `atStep`;
 * with `again`, a second Ctrl-C that many ms after the first.
 */
function ptyRun(cmd: string, total: number, atStep = 2, again?: number): Promise<PtyResult> {
  return new Promise((resolve) => {
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '',
      tSig = 0;
    const re = new RegExp(`(\\d+)/${total}\\b`, 'g');
    const onData = (d: Buffer) => {
      output += d.toString();
      if (tSig || ![...output.matchAll(re)].some((m) => Number(m[1]) >= atStep)) return;
      tSig = performance.now();
      child.stdin.write('\x03');
      if (again !== undefined) setTimeout(() => child.stdin.write('\x03'), again);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) =>
      resolve({ code, output: output.replace(/\r/g, ''), afterCtrlC: tSig ? (performance.now() - tSig) / 1000 : NaN }),
    );
  });
}

const state = (out: string) => JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8'));
const records = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

const ENTRIES = [
  { name: 'npx tsx examples/train.ts', cmd: (a: string[]) => `npx tsx examples/train.ts ${a.map(q).join(' ')}`, slow: true },
  { name: 'npx tsx src/cli.ts train', cmd: (a: string[]) => `npx tsx src/cli.ts train ${a.map(q).join(' ')}`, slow: true },
  {
    name: 'npx latentlm train (the built package)',
    cmd: (a: string[]) => `npx latentlm train ${a.map(q).join(' ')}`,
    slow: true,
    dist: true,
  },
  {
    name: 'bun run examples/train.ts',
    cmd: (a: string[]) => `${q(join(BIN, 'bun'))} run examples/train.ts ${a.map(q).join(' ')}`,
    bin: 'bun',
  },
  {
    name: 'deno run -A examples/train.ts',
    cmd: (a: string[]) => `${q(join(BIN, 'deno'))} run -A examples/train.ts ${a.map(q).join(' ')}`,
    bin: 'deno',
  },
];

describe.skipIf(!haveScript)('Ctrl-C in a terminal', () => {
  for (const e of ENTRIES) {
    const have = !e.bin || existsSync(join(BIN, e.bin));
    it.skipIf(!have)(
      `${e.name}: stops within a step, saves a checkpoint there, says where, exits 130`,
      async () => {
        if (e.dist) await ensureDist();
        const out = join(TMP, `robust-ctrlc-${e.name.replace(/\W+/g, '-')}`);
        rmSync(out, { recursive: true, force: true });
        const r = await ptyRun(e.cmd(e.slow ? slowFlags(out) : trainFlags(out, 100000)), 100000);
        console.log(`[robust] ${e.name}: exit ${r.code} ${r.afterCtrlC.toFixed(2)} s after Ctrl-C`);
        expect(r.code, r.output.slice(-2000)).toBe(130);
        expect(r.output).toMatch(/Ctrl-C: finishing this step and saving a checkpoint/);
        const st = state(out);
        expect(st.step).toBeGreaterThanOrEqual(2);
        expect(r.output).toContain(`stopped at step ${st.step} of 100000: checkpoint saved in ${out}/checkpoint`);
        // one Ctrl-C, relayed by wrappers, is one request: the run stopped right after the step it was in
        const steps = records(out)
          .filter((x) => x.type === 'step')
          .map((x) => x.step);
        expect(steps[steps.length - 1]).toBe(st.step);
        expect(st.step).toBeLessThanOrEqual(Math.max(...[...r.output.matchAll(/(\d+)\/100000/g)].map((m) => Number(m[1]))) + 1);
      },
      120_000,
    );
  }

  it('npx tsx examples/rl.ts: the same for phase 2', async () => {
    const out = join(TMP, 'robust-ctrlc-rl');
    rmSync(out, { recursive: true, force: true });
    const args = [
      '--model',
      tiny,
      '--steps',
      '100000',
      '--group',
      '2',
      '--questions',
      '1',
      '--max-new',
      '8',
      '--eval-rows',
      '0',
      '--out',
      out,
    ];
    const r = await ptyRun(`npx tsx examples/rl.ts ${args.map(q).join(' ')}`, 100000);
    expect(r.code, r.output.slice(-2000)).toBe(130);
    const st = state(out);
    expect(st.kind).toBe('rl');
    expect(r.output).toContain(`stopped at step ${st.step} of 100000: checkpoint saved in ${out}/checkpoint`);
  }, 120_000);

  it('a second Ctrl-C while the checkpoint is written waits for it; the checkpoint is whole', async () => {
    const out = join(TMP, 'robust-ctrlc-twice');
    rmSync(out, { recursive: true, force: true });
    const r = await ptyRun(`npx tsx examples/train.ts ${trainFlags(out, 100000).map(q).join(' ')}`, 100000, 2, 700);
    // either the second press came while saving (and was waited out) or after the save (quit at once): both leave
    // a whole checkpoint, never a partial one
    expect([130], r.output.slice(-2000)).toContain(r.code);
    expect(r.output).toMatch(/waiting for it to finish|quitting without saving|stopped at step/);
    expect(state(out).step).toBeGreaterThanOrEqual(2);
    expect(existsSync(join(out, 'checkpoint.new'))).toBe(false);
  }, 120_000);
});

describe('the SIGINT handler', () => {
  it('one request per keypress; a later Ctrl-C waits for a save in progress, then one after it quits with 130', async () => {
    const { installStopSignal } = await import('../src/train/signals.js');
    const logs: string[] = [],
      exits: number[] = [];
    const sig = installStopSignal({
      checkpointDir: 'OUT/checkpoint',
      log: (l) => logs.push(l),
      exit: (c) => exits.push(c),
      sameCtrlCMs: 50,
    });
    try {
      expect(sig.requested).toBe(false);
      process.emit('SIGINT');
      process.emit('SIGINT'); // the same keypress relayed by a wrapper
      expect(sig.requested).toBe(true);
      expect(logs.length).toBe(1);
      await new Promise((r) => setTimeout(r, 80));
      let finish!: () => void;
      const saving = sig.guardSave(() => new Promise<void>((r) => (finish = r)));
      process.emit('SIGINT');
      expect(exits).toEqual([]);
      expect(logs[1]).toMatch(/a checkpoint is being written to OUT\/checkpoint; waiting for it to finish/);
      finish();
      await saving;
      process.emit('SIGINT');
      expect(exits).toEqual([130]);
      expect(logs[2]).toMatch(/quitting without saving; OUT\/checkpoint holds the last checkpoint written/);
    } finally {
      sig.dispose();
    }
  });
});

describe('kill -9 and --resume', () => {
  // only the run that is killed needs its own process; the others run in this one (quiet), which is faster
  const quiet = async <T>(f: () => Promise<T>): Promise<{ value: T; stderr: string }> => {
    const log = console.log,
      err = console.error,
      lines: string[] = [];
    console.log = () => {};
    console.error = (...a: unknown[]) => void lines.push(a.join(' '));
    try {
      return { value: await f(), stderr: lines.join('\n') };
    } finally {
      console.log = log;
      console.error = err;
    }
  };
  const train = async (args: string[]) => {
    const { trainMain } = await import('../src/cli/train-main.js');
    return quiet(() => trainMain(args));
  };
  const rlIn = async (args: string[]) => {
    const { rlMain } = await import('../src/cli/rl.js');
    return quiet(() => rlMain(args));
  };
  const node = async (args: string[]) => {
    const r = await train(args);
    expect(r.value, r.stderr).toBe(0);
    return r;
  };
  const flags = (out: string) => [
    '--model',
    tiny,
    '--backend',
    'wasm',
    '--lr',
    '1e-3',
    '--batch',
    '2',
    '--eval-every',
    '5',
    '--eval-rows',
    '2',
    '--gen-rows',
    '1',
    '--steps',
    '30',
    '--ckpt-every',
    '4',
    '--out',
    out,
  ];
  // wall-clock fields (tokPerSec; RL's genSec, trainSec; the summary's seconds) are the only ones allowed to differ
  const strip = (recs: Record<string, unknown>[]) => recs.map(({ tokPerSec: _t, genSec: _g, trainSec: _s, ...r }) => r);
  const summaryOf = (out: string) => {
    const { seconds: _s, ...s } = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    if (s.grid) delete s.grid.wallSeconds; // the grid block's wall time, like `seconds`
    if (s.options) delete s.options.outDir; // the two runs write to different directories
    return s;
  };

  // the killed run: SIGKILL as soon as step `killAt` is seen (wherever the process then is: a step, an eval, a save)
  const killRun = (script: string, args: string[], total: number, killAt: number) =>
    new Promise<void>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      const re = new RegExp(`step (\\d+)/${total}`, 'g');
      child.stdout.on('data', (d: Buffer) => {
        text += d.toString();
        if ([...text.matchAll(re)].some((m) => Number(m[1]) >= killAt)) child.kill('SIGKILL');
      });
      child.stderr.on('data', () => {});
      child.on('exit', () => resolve());
    });
  const sameRun = (a: string, b: string) => {
    expect(strip(records(b))).toEqual(strip(records(a)));
    expect(summaryOf(b)).toEqual(summaryOf(a));
    expect(readFileSync(join(b, 'report.svg'), 'utf8')).toBe(readFileSync(join(a, 'report.svg'), 'utf8'));
  };
  const fresh = (name: string) => {
    const d = join(TMP, name);
    rmSync(d, { recursive: true, force: true });
    return d;
  };

  it('kill -9 at a step, then --resume: metrics.jsonl, summary.json and report.svg equal an uninterrupted run', async () => {
    const a = fresh('robust-straight'),
      b = fresh('robust-killed');
    await node(flags(a));
    await killRun('examples/train.ts', flags(b), 30, 7);
    const at = state(b).step,
      logged = Math.max(...records(b).map((r) => r.step));
    console.log(`[robust] phase 1 killed with the checkpoint at step ${at}, records logged up to step ${logged}`);
    expect(at).toBeLessThan(30);
    await node([...flags(b), '--resume']);
    sameRun(a, b);
  }, 180_000);

  it('the same for RL (examples/rl.ts)', async () => {
    const rl = (out: string) => [
      '--model',
      tiny,
      '--backend',
      'wasm',
      '--steps',
      '12',
      '--group',
      '2',
      '--questions',
      '1',
      '--max-new',
      '8',
      '--eval-every',
      '4',
      '--eval-rows',
      '2',
      '--sample-every',
      '5',
      '--ckpt-every',
      '3',
      '--out',
      out,
    ];
    const a = fresh('robust-rl-straight'),
      b = fresh('robust-rl-killed');
    expect((await rlIn(rl(a))).value).toBe(0);
    await killRun('examples/rl.ts', rl(b), 12, 5);
    const at = state(b).step,
      logged = Math.max(...records(b).map((r) => r.step));
    console.log(`[robust] RL killed with the checkpoint at step ${at}, records logged up to step ${logged}`);
    expect(at).toBeLessThan(12);
    expect((await rlIn([...rl(b), '--resume'])).value).toBe(0);
    sameRun(a, b);
  }, 180_000);

  it('--resume refuses without a checkpoint, and when a flag that shapes the run differs (--resume-anyway lists it)', async () => {
    const out = join(TMP, 'robust-refuse');
    rmSync(out, { recursive: true, force: true });
    const { UsageError } = await import('../src/cli/_args.js');
    const none = await train([...trainFlags(out, 4), '--resume']).then(
      () => null,
      (e) => e,
    );
    expect(none).toBeInstanceOf(UsageError);
    expect(none.message).toMatch(/--resume: there is no checkpoint in .*robust-refuse\/checkpoint/);
    await node(trainFlags(out, 4));
    const diff = await train([...trainFlags(out, 8), '--resume']).then(
      () => null,
      (e) => e,
    );
    expect(diff).toBeInstanceOf(UsageError);
    expect(diff.message).toMatch(/steps: 4 in the checkpoint, 8 now/);
    const anyway = await node([...trainFlags(out, 6), '--resume', '--resume-anyway']);
    expect(anyway.stderr).toMatch(/--resume-anyway: .*\n\s+steps: 4 in the checkpoint, 6 now/);
    expect(state(out).step).toBe(6);
  }, 180_000);
});

describe('flags that would train nothing', () => {
  const bad: [string[], RegExp][] = [
    [['--batch', '0'], /--batch must be an integer >= 1, got '0'/],
    [['--steps', '2.5'], /--steps expects a whole number, got '2.5'/],
    [['--max-len', '1'], /--max-len must be an integer >= 2, got '1'/],
    [['--backend', 'foo'], /--backend must be webgpu, wasm, gpujs or cpu, got 'foo'/],
    [['--lr', '-1'], /--lr must be a number > 0 and <= 10, got '-1'/],
    [['--lr', 'abc'], /--lr expects a number, got 'abc'/],
    [['--eval-every', '-3'], /--eval-every must be an integer >= 0, got '-3'/],
    [['--ckpt-every', '1.5'], /--ckpt-every expects a whole number/],
  ];
  it('are usage errors naming the flag (exit 2 from the CLI), before anything loads', async () => {
    const { trainMain } = await import('../src/cli/train-main.js');
    const { UsageError } = await import('../src/cli/_args.js');
    for (const [args, msg] of bad) {
      const e = await trainMain(args).then(
        () => null,
        (x) => x,
      );
      expect(e, args.join(' ')).toBeInstanceOf(UsageError);
      expect(e.message, args.join(' ')).toMatch(msg);
    }
    const cli = await run(process.execPath, ['--import', 'tsx', 'examples/train.ts', '--batch', '0'], { cwd: ROOT }).then(
      () => null,
      (x) => x,
    );
    expect(cli?.code).toBe(2);
    expect(cli.stderr).toMatch(/--batch must be an integer >= 1, got '0' \(see --help\)/);
  });

  it('negative numbers are values, not options', async () => {
    const { joinNegativeValues } = await import('../src/cli/flags.js');
    expect(joinNegativeValues(['--seed', '-1', '--out', '-x', '--resume'], ['seed', 'out'])).toEqual([
      '--seed=-1',
      '--out',
      '-x',
      '--resume',
    ]);
  });

  it('--max-len below every row is an error; a cut is warned about', async () => {
    const { measureLengths } = await import('../src/latent/length.js');
    const { Tokenizer } = await import('../src/text/tokenizer.js');
    const { splitRow } = await import('../src/setup/loaders.js');
    const tok = await Tokenizer.load();
    const rows = [splitRow({ question: 'Tom has 3 apples and buys 4 more. How many?', answer: 'He has 3+4=<<3+4=7>>7 apples.\n#### 7' })];
    const r = measureLengths(rows, tok, { condition: 'latent', k: 2, eosId: 151643 }, 8);
    expect(r).toMatchObject({ rows: 1, cut: 1, empty: 1 });
    expect(measureLengths(rows, tok, { condition: 'latent', k: 2, eosId: 151643 }, 4096)).toMatchObject({ cut: 0, empty: 0 });
  });

  it('divergence: a loss far above its start, and held-out loss rising eval after eval, are warned about once', async () => {
    const { DivergenceWatch } = await import('../src/train/divergence.js');
    const w: string[] = [];
    const d = new DivergenceWatch({ warn: (m) => w.push(m) });
    for (let s = 1; s <= 5; s++) d.step(s, 3);
    d.step(6, 4);
    expect(w).toEqual([]);
    d.step(7, 1700);
    d.step(8, 1800);
    expect(w.length).toBe(1);
    expect(w[0]).toMatch(/training loss 1700.000 at step 7 is 566.7x its start \(3.000/);
    for (const [s, l] of [
      [10, 1],
      [20, 1.1],
      [30, 1.2],
      [40, 1.3],
      [50, 1.4],
    ])
      d.eval(s, l);
    expect(w.length).toBe(2);
    expect(w[1]).toMatch(/held-out loss rose 3 evaluations in a row \(now 1.300 at step 40\)/);
    // a resumed run replays the earlier records: the same warnings listed, none printed again
    const printed: string[] = [];
    const r = new DivergenceWatch({ warn: (m) => printed.push(m) });
    r.replay([1, 2, 3, 4, 5, 6].map((step) => ({ type: 'step', step, loss: step === 6 ? 100 : 3 })));
    expect(printed).toEqual([]);
    expect(r.warnings.length).toBe(1);
  });
});

describe('weights and files that fail loudly', () => {
  const dirOf = (name: string) => {
    const d = join(TMP, `robust-${name}`);
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
    return d;
  };
  const copyTiny = (d: string) => {
    for (const f of ['config.json', 'model.safetensors', 'vocab-map.json']) writeFileSync(join(d, f), readFileSync(join(tiny, f)));
  };

  it('a NaN or Inf weight is refused naming the tensor and file (allowNonFinite loads it)', async () => {
    const { CpuBackend } = await import('../src/backend/cpu.js');
    const { Qwen2 } = await import('../src/model/qwen2.js');
    const { loadHfCheckpoint, saveHfCheckpoint } = await import('../src/model/hf.js');
    const d = dirOf('nan');
    const ck = await loadHfCheckpoint(tiny);
    const tensors = new Map([...ck.tensors].map(([n, t]) => [n, { shape: t.shape, data: t.data.slice() }]));
    tensors.get('model.layers.1.mlp.up_proj.weight')!.data[7] = NaN;
    tensors.get('model.layers.1.mlp.up_proj.weight')!.data[9] = Infinity;
    await saveHfCheckpoint(d, ck.config, tensors, { dtype: 'F32' });
    const be = new CpuBackend();
    const e = await Qwen2.load(be, d).then(
      () => null,
      (x) => x,
    );
    expect(e?.message).toMatch(
      new RegExp(`${d}/model.safetensors: tensor 'model.layers.1.mlp.up_proj.weight' has 2 non-finite values \\(first: NaN at index 7\\)`),
    );
    const m = await Qwen2.load(be, d, { allowNonFinite: true });
    m.destroy();
    be.destroy();
  });

  it('config sizes are bounded before anything is allocated', async () => {
    const { loadHfCheckpoint } = await import('../src/model/hf.js');
    const d = dirOf('huge');
    copyTiny(d);
    const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 1e9 }));
    await expect(loadHfCheckpoint(d)).rejects.toThrow(
      `${d}/config.json: 'num_hidden_layers' is 1000000000, above the supported maximum 1024`,
    );
  });

  it('a symlink loop is reported as such, naming the file; a bad vocab-map.json names its file', async () => {
    const { loadHfCheckpoint } = await import('../src/model/hf.js');
    const { loadModel } = await import('../src/setup/loaders.js');
    const { CpuBackend } = await import('../src/backend/cpu.js');
    const d = dirOf('loop');
    copyTiny(d);
    rmSync(join(d, 'model.safetensors'));
    symlinkSync('model.safetensors', join(d, 'model.safetensors'));
    await expect(loadHfCheckpoint(d)).rejects.toThrow(new RegExp(`cannot access ${d}/model.safetensors: ELOOP`));
    const v = dirOf('vocab');
    copyTiny(v);
    writeFileSync(join(v, 'vocab-map.json'), '{"full_ids": [1, 2,');
    const be = new CpuBackend();
    await expect(loadModel(be, v)).rejects.toThrow(new RegExp(`${v}/vocab-map.json: invalid JSON`));
    be.destroy();
  });

  it('a checkpoint write that fails (disk full) leaves no checkpoint.new, keeps the previous one, names the file', async () => {
    const { CpuBackend } = await import('../src/backend/cpu.js');
    const { Qwen2 } = await import('../src/model/qwen2.js');
    const { saveCheckpoint, readCheckpointState } = await import('../src/latent/checkpoint.js');
    const { Rng } = await import('../src/data/rng.js');
    const be = new CpuBackend();
    const model = await Qwen2.load(be, tiny);
    const d = join(dirOf('enospc'), 'checkpoint');
    const head = (name: string) => ({ name, dim: 1, w: [0], b: 0 });
    const state = (step: number) => ({
      version: 2 as const,
      kind: 'phase1' as const,
      step,
      rng: new Rng(0).state(),
      order: [],
      cursor: 0,
      epoch: 0,
      heads: { start: head('start'), end: head('end') },
      options: {},
    });
    await saveCheckpoint(d, model, null, state(1));
    const full = async (path: string) => {
      if (path.endsWith('state.json')) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      writeFileSync(path, 'x');
    };
    await expect(saveCheckpoint(d, model, null, state(2), { writeFile: full })).rejects.toThrow(
      `cannot write checkpoint file ${d}.new/state.json: ENOSPC: no space left on device, write; the previous checkpoint in ${d} is unchanged`,
    );
    expect(existsSync(`${d}.new`)).toBe(false);
    expect((await readCheckpointState(d))?.state.step).toBe(1);
    // a real full disk where this runs as root: a 64 KiB tmpfs (the tiny model's weights alone are larger)
    const mnt = dirOf('tmpfs');
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]).status !== 0)
      console.log('[robust] no tmpfs (not root?): the real ENOSPC case is skipped');
    else {
      try {
        await expect(saveCheckpoint(`${mnt}/checkpoint`, model, null, state(1))).rejects.toThrow(
          new RegExp(`cannot write checkpoint file ${mnt}/checkpoint.new/model.safetensors: ENOSPC`),
        );
        expect(existsSync(`${mnt}/checkpoint.new`)).toBe(false);
      } finally {
        spawnSync('umount', [mnt]);
      }
    }
    model.destroy();
    be.destroy();
  });
});

describe('Ctrl-C and --resume in the phase-1 loop', () => {
  it('a stop at an eval step leaves the eval pending; the resumed run does it first and matches a straight run, heads and scaled feedback included', async () => {
    const { CpuBackend } = await import('../src/backend/cpu.js');
    const { loadModel, loadData } = await import('../src/setup/loaders.js');
    const { Phase1Trainer } = await import('../src/latent/trainer.js');
    const { reward } = await import('../src/data/grade.js');
    const data = await loadData(undefined, { seed: 3, trainCount: 40, testCount: 4 });
    const job = async (out: string, stopAfter?: number) => {
      const be = new CpuBackend();
      const { model, tok } = await loadModel(be, tiny);
      const recs: Record<string, unknown>[] = [];
      let stop = false;
      const tr = new Phase1Trainer(model, tok, data.train, data.test, {
        mode: 'full',
        condition: 'latent',
        k: 2,
        steps: 8,
        batchSize: 2,
        lr: 1e-3,
        warmupSteps: 2,
        feedback: 'scaled',
        evalEvery: 3,
        evalRows: 2,
        genRows: 1,
        genEvery: 3,
        maxNewTokens: 6,
        ckptEvery: 100,
        outDir: out,
        resume: stopAfter === undefined && existsSync(join(out, 'checkpoint')),
        seed: 3,
        eosId: tok.eosId,
        reward: (c, g) => reward(c, g),
        log: (r) => {
          recs.push(r);
          if (r.type === 'step' && r.step === stopAfter) stop = true; // "Ctrl-C" during step 6, an eval step
        },
        shouldStop: () => stop,
      });
      const res = await tr.run();
      model.destroy();
      be.destroy();
      return { res, recs: recs.map(({ tokPerSec: _t, ...r }) => r) };
    };
    const straightOut = join(TMP, 'robust-p1-straight');
    rmSync(straightOut, { recursive: true, force: true });
    const straight = await job(straightOut);
    const out = join(TMP, 'robust-p1-stop');
    rmSync(out, { recursive: true, force: true });
    const first = await job(out, 6);
    expect(first.res.stoppedEarly).toBe(true);
    expect(state(out)).toMatchObject({ step: 6, pendingEval: true });
    expect(first.recs.filter((r) => r.type === 'eval').map((r) => r.step)).toEqual([0, 3]);
    const second = await job(out);
    expect(second.recs[0]).toMatchObject({ type: 'eval', step: 6 });
    expect([...first.recs, ...second.recs]).toEqual(straight.recs);
  }, 120_000);
});
