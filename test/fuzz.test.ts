// The short version of `npm run fuzz` (scripts/fuzz.ts runs 100,000 inputs per target in workers with a hang
// watchdog): the same seeded targets, 1,500 inputs each, in process. Zero crashes and mismatches, no WASM memory
// growth after warm-up, and the generators reach the interesting outcomes (so a passing run means something).
import { beforeAll, describe, expect, it } from 'vitest';
import { allTargets, splitTarget, rewardTarget, type Target } from './fuzz/targets.js';
import { refReward, refSplit } from './fuzz/references.js';

const N = 1500;
const SEED = 2;
let targets: Target[] = [];
beforeAll(async () => {
  targets = await allTargets();
});

describe('independent references', () => {
  it('agree with the documented examples', () => {
    expect(refSplit('Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72')).toEqual({
      steps: ['Natalia sold 48/2 = ', '24 clips in May.'],
      annotations: [{ expr: '48/2', result: '24' }],
      final: '72',
    });
    expect(refSplit('a <<<1=1>> b\n#### 1,080')).toEqual({
      steps: ['a <', ' b'],
      annotations: [{ expr: '1', result: '1' }],
      final: '1080',
    });
    expect(refSplit('no final')).toEqual({ error: "answer has no '#### N' final line" });
    expect(refReward('so she has 7.50 dollars.\n#### $7.50', '7.5', false)).toEqual({ reward: 1, format: 1, extracted: '7.5' });
    expect(refReward('5-3 = 2, x-1', '1', false)).toEqual({ reward: 1, format: 0, extracted: '1' });
    expect(refReward('the answer is -$5', '-5', true)).toEqual({ reward: 0, format: 0, extracted: '' });
    expect(refReward('1.2.3', '3', false).extracted).toBe('3');
    expect(refReward('x', 'five', false).reward).toBe(-1);
  });
});

describe('fuzz (short run)', () => {
  it('the generators reach successes and failures alike', () => {
    let ok = 0;
    let rewarded = 0;
    for (let i = 0; i < 500; i++) {
      if (!('error' in refSplit(splitTarget.make(SEED, i) as string))) ok++;
      const { completions, golds, strict } = rewardTarget.make(SEED, i) as { completions: string[]; golds: string[]; strict: boolean };
      if (refReward(completions[0], golds[0], strict).reward === 1) rewarded++;
    }
    expect(ok).toBeGreaterThan(50);
    expect(ok).toBeLessThan(450);
    expect(rewarded).toBeGreaterThan(5);
  });

  for (const name of ['tokenizer.encode', 'tokenizer.decode', 'gsm8k.split', 'reward', 'safetensors.parse', 'config.parse']) {
    it(`${name}: ${N} inputs, no crash, no mismatch, no WASM memory growth`, async () => {
      const t = targets.find((x) => x.name === name)!;
      const problems: string[] = [];
      let wasm0 = 0;
      for (let i = 0; i < N; i++) {
        const o = await t.check(t.make(SEED, i));
        if (o.kind !== 'ok' && problems.length < 5) problems.push(`#${i} ${o.kind}: ${o.detail}`);
        if (i === N / 10) wasm0 = t.wasmBytes();
      }
      expect(problems).toEqual([]);
      expect(t.wasmBytes() - wasm0).toBe(0);
    }, 60_000);
  }
});
