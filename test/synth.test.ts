import { describe, expect, it } from 'vitest';
import {
  generateProblems,
  questionSplit,
  SYNTH_PRESETS,
  synthCoverageText,
  synthToJsonl,
  withCommas,
  type SynthRow,
} from '../src/data/synth.ts';

interface Step {
  x: bigint;
  op: string;
  b: bigint;
  r: bigint;
}

// Independent checker of the GSM8K answer format. Returns the parsed steps, or throws naming the row and line.
function checkAnswer(row: SynthRow, where: string): Step[] {
  const lines = row.answer.split('\n');
  const final = lines.pop()!;
  const m = /^#### (\d+)$/.exec(final);
  if (!m) throw new Error(`${where}: bad final line ${JSON.stringify(final)}`);
  if (!row.answer.endsWith(`\n${final}`)) throw new Error(`${where}: answer does not end with "\\n#### N"`);
  const steps: Step[] = [];
  for (const [i, line] of lines.entries()) {
    const anns = [...line.matchAll(/<<([^>]*)>>/g)];
    if (anns.length !== 1) throw new Error(`${where} line ${i}: expected one annotation, got ${anns.length}: ${line}`);
    const ann = anns[0]!;
    const am = /^(\d+)([+\-*/])(\d+)=(\d+)$/.exec(ann[1]!);
    if (!am) throw new Error(`${where} line ${i}: annotation not "a op b=r" without spaces/commas: ${ann[1]}`);
    const [x, op, b, r] = [BigInt(am[1]!), am[2]!, BigInt(am[3]!), BigInt(am[4]!)];
    // Exact integer arithmetic; division must be exact.
    let want: bigint;
    if (op === '+') want = x + b;
    else if (op === '-') want = x - b;
    else if (op === '*') want = x * b;
    else {
      if (x % b !== 0n) throw new Error(`${where} line ${i}: inexact division ${ann[1]}`);
      want = x / b;
    }
    if (want !== r) throw new Error(`${where} line ${i}: ${ann[1]} is wrong (should be ${want})`);
    // Immediately preceded by "x op b = " in prose and immediately followed by the result in prose.
    const before = line.slice(0, ann.index);
    const after = line.slice(ann.index! + ann[0].length);
    const pm = /([\d,]+) ([+\-*/]) ([\d,]+) = $/.exec(before);
    if (!pm) throw new Error(`${where} line ${i}: annotation not preceded by "x op b = ": ${line}`);
    if (pm[1]!.replace(/,/g, '') !== String(x) || pm[2] !== op || pm[3]!.replace(/,/g, '') !== String(b)) {
      throw new Error(`${where} line ${i}: prose "${pm[0]}" disagrees with annotation ${ann[1]}`);
    }
    const rm = /^([\d,]+)(?!\d)/.exec(after);
    if (!rm || rm[1]!.replace(/,/g, '') !== String(r))
      throw new Error(`${where} line ${i}: annotation not followed by its result: ${line}`);
    for (const num of [pm[1]!, pm[3]!, rm[1]!]) {
      if (num.includes(',') && !/^\d{1,3}(,\d{3})+$/.test(num)) throw new Error(`${where} line ${i}: malformed thousands commas ${num}`);
    }
    steps.push({ x, op, b, r });
  }
  if (steps.length === 0) throw new Error(`${where}: no calculation lines`);
  // A chain: every step starts from the previous result.
  for (let i = 1; i < steps.length; i++) {
    if (steps[i]!.x !== steps[i - 1]!.r) throw new Error(`${where}: step ${i} does not use the previous result`);
  }
  if (BigInt(m[1]!) !== steps[steps.length - 1]!.r) throw new Error(`${where}: final ${m[1]} != last result`);
  return steps;
}

describe('synthetic GSM8K-style problems', () => {
  it('is deterministic for a seed and split', () => {
    const a = generateProblems({ seed: 5, count: 50 });
    const b = generateProblems({ seed: 5, count: 50 });
    expect(b).toEqual(a);
    expect(generateProblems({ seed: 6, count: 50 })).not.toEqual(a);
    expect(generateProblems({ seed: 5, count: 50, split: 'test' })).not.toEqual(a);
    // A prefix is stable: asking for more rows does not change the first ones.
    expect(generateProblems({ seed: 5, count: 80 }).slice(0, 50)).toEqual(a);
  });

  it('writes GSM8K answers: "x op b = <<x op b=r>>r ...", exact arithmetic, chained, "#### N" final', () => {
    for (const [name, preset] of Object.entries(SYNTH_PRESETS)) {
      for (const split of ['train', 'test'] as const) {
        const rows = generateProblems({ ...preset, seed: 11, count: 300, split });
        for (const [i, row] of rows.entries()) {
          expect(Object.keys(row).sort()).toEqual(['answer', 'question']);
          const steps = checkAnswer(row, `${name}/${split} row ${i}`);
          const [lo, hi] = typeof preset.steps === 'number' ? [preset.steps, preset.steps] : preset.steps;
          expect(steps.length).toBeGreaterThanOrEqual(lo);
          expect(steps.length).toBeLessThanOrEqual(hi);
          for (const s of steps) expect((preset.ops as readonly string[]).includes(s.op)).toBe(true);
          expect(row.question.endsWith('?')).toBe(true);
          expect(row.question).not.toMatch(/<<|>>|####/);
        }
      }
    }
  });

  it('writes thousands commas in some prose but never in annotations or the final line', () => {
    const rows = generateProblems({ ...SYNTH_PRESETS.hard, seed: 3, count: 400 });
    const withComma = rows.filter((r) => /\d,\d{3}/.test(r.answer));
    const bigWithout = rows.filter((r) => !/\d,\d{3}/.test(r.answer) && /\d{4}/.test(r.answer.replace(/<<[^>]*>>|#### \d+/g, '')));
    expect(withComma.length).toBeGreaterThan(20);
    expect(bigWithout.length).toBeGreaterThan(20); // commaProb 0.5: both styles occur
    for (const r of rows) {
      for (const ann of r.answer.matchAll(/<<([^>]*)>>/g)) expect(ann[1]).not.toContain(',');
      expect(r.answer.split('\n').pop()).toMatch(/^#### \d+$/);
    }
    expect(
      generateProblems({ ...SYNTH_PRESETS.hard, seed: 3, count: 100, commaProb: 0 }).some((r) => /\d,\d/.test(r.answer + r.question)),
    ).toBe(false);
  });

  it('never puts the same question in train and test (2,000 rows each)', () => {
    for (const preset of [SYNTH_PRESETS.default, SYNTH_PRESETS.easy]) {
      const train = generateProblems({ ...preset, seed: 1, count: 2000, split: 'train' });
      const test = generateProblems({ ...preset, seed: 1, count: 2000, split: 'test' });
      const trainQs = new Set(train.map((r) => r.question));
      expect(trainQs.size).toBe(2000); // unique within the split
      expect(test.filter((r) => trainQs.has(r.question))).toEqual([]);
      // The split is a property of the question text, so it also holds across seeds.
      const otherSeedTest = generateProblems({ ...preset, seed: 2, count: 2000, split: 'test' });
      expect(otherSeedTest.filter((r) => trainQs.has(r.question))).toEqual([]);
      expect(train.every((r) => questionSplit(r.question) === 'train')).toBe(true);
      expect(test.every((r) => questionSplit(r.question) === 'test')).toBe(true);
    }
  });

  it('keeps splits disjoint even when the question space is tiny (where independent streams would collide)', () => {
    // Tiny settings: few distinct questions. Both splits still fill up and stay disjoint.
    const tiny = { steps: 1, ops: ['+'] as const, maxOperand: 5, names: 2, objects: 2, unique: false };
    const train = generateProblems({ ...tiny, seed: 1, count: 500 });
    const test = generateProblems({ ...tiny, seed: 1, count: 500, split: 'test' });
    const trainQs = new Set(train.map((r) => r.question));
    expect(trainQs.size).toBeLessThan(500); // repeats within a split: the space is small
    expect(test.filter((r) => trainQs.has(r.question))).toEqual([]);
  });

  it('difficulty knobs change operand and result sizes', () => {
    const stats = (rows: SynthRow[]) => {
      const steps = rows.flatMap((r, i) => checkAnswer(r, `row ${i}`));
      // biome-ignore lint/complexity/useMathMinMax: bigints (Math.max does not take them)
      const maxB = steps.reduce((m, s) => (s.b > m ? s.b : m), 0n);
      const meanDigits = steps.reduce((acc, s) => acc + String(s.r).length, 0) / steps.length;
      return { maxB, meanDigits, ops: new Set(steps.map((s) => s.op)) };
    };
    const easy = stats(generateProblems({ ...SYNTH_PRESETS.easy, seed: 4, count: 300 }));
    const def = stats(generateProblems({ ...SYNTH_PRESETS.default, seed: 4, count: 300 }));
    const hard = stats(generateProblems({ ...SYNTH_PRESETS.hard, seed: 4, count: 300 }));
    expect(easy.maxB).toBeLessThanOrEqual(9n);
    expect(def.maxB).toBeLessThanOrEqual(50n);
    expect(def.maxB).toBeGreaterThan(40n);
    expect(hard.maxB).toBeGreaterThan(500n);
    expect(easy.meanDigits).toBeLessThan(def.meanDigits);
    expect(def.meanDigits).toBeLessThan(hard.meanDigits);
    expect([...easy.ops].sort()).toEqual(['+', '-']);
    expect([...hard.ops].sort()).toEqual(['*', '+', '-', '/']);
    // Single-digit sums: one step, +, operands <= 9.
    const sums = generateProblems({ seed: 4, count: 100, steps: 1, ops: ['+'], maxOperand: 9 });
    for (const [i, r] of sums.entries()) {
      const [s] = checkAnswer(r, `sum ${i}`);
      expect(s!.op).toBe('+');
      expect(s!.x <= 9n && s!.b <= 9n).toBe(true);
    }
    // maxResult bounds every intermediate result.
    for (const [i, r] of generateProblems({ seed: 4, count: 200, ops: ['*'], steps: 3, maxOperand: 20, maxResult: 500 }).entries()) {
      for (const s of checkAnswer(r, `mul ${i}`)) expect(s.r <= 500n).toBe(true);
    }
  });

  it('handles division-only chains (exact division) and steps ranges', () => {
    const rows = generateProblems({ seed: 8, count: 100, ops: ['/'], steps: [1, 3] });
    const lengths = new Set<number>();
    for (const [i, r] of rows.entries()) {
      const steps = checkAnswer(r, `div ${i}`);
      lengths.add(steps.length);
      for (const s of steps) expect(s.op).toBe('/');
    }
    expect([...lengths].sort()).toEqual([1, 2, 3]);
  });

  it('restricts names, objects and templates when asked', () => {
    const rows = generateProblems({ seed: 2, count: 200, names: 3, objects: 2, templatesPerOp: 1 });
    const words = new Set(rows.flatMap((r) => (r.question + ' ' + r.answer).match(/[A-Za-z]+/g)!));
    const full = new Set(generateProblems({ seed: 2, count: 200 }).flatMap((r) => (r.question + ' ' + r.answer).match(/[A-Za-z]+/g)!));
    expect(words.size).toBeLessThan(full.size);
    const capitalised = [...words].filter(
      (w) => /^[A-Z]/.test(w) && !['He', 'She', 'His', 'Her', 'How', 'The', 'Then', 'With', 'After'].includes(w),
    );
    expect(capitalised.length).toBeLessThanOrEqual(3);
    // Every word of the generated text appears in the coverage text for the same knobs.
    const coverage = new Set(synthCoverageText({ names: 3, objects: 2, templatesPerOp: 1 }).match(/[A-Za-z]+/g)!);
    expect([...words].filter((w) => !coverage.has(w))).toEqual([]);
    const fullCoverage = new Set(synthCoverageText(SYNTH_PRESETS.hard).match(/[A-Za-z]+/g)!);
    const hardWords = generateProblems({ ...SYNTH_PRESETS.hard, seed: 2, count: 300 }).flatMap(
      (r) => (r.question + ' ' + r.answer).match(/[A-Za-z]+/g)!,
    );
    expect(hardWords.filter((w) => !fullCoverage.has(w))).toEqual([]);
  });

  it('keeps nouns plural (no "1 apples") and pronouns unambiguous', () => {
    const female = new Set(['Emma', 'Olivia', 'Ava', 'Mia', 'Sophia', 'Lily', 'Chloe', 'Grace', 'Zoe', 'Anna']);
    let pronounStarts = 0;
    for (const [i, r] of generateProblems({ ...SYNTH_PRESETS.hard, seed: 9, count: 300 }).entries()) {
      expect(r.question + r.answer).not.toMatch(/(^|[^\d,])1 [a-z]+s\b/);
      // A sentence may start with He/She only if the previous sentence named at most one person of that gender.
      const sentences = r.question.split(/(?<=[.?]) /);
      for (let j = 1; j < sentences.length; j++) {
        const pm = /^(He|She|His|Her)\b/.exec(sentences[j]!);
        if (!pm) continue;
        pronounStarts++;
        const fem = pm[1] === 'She' || pm[1] === 'Her';
        const named = new Set(
          (sentences[j - 1]!.match(/\b[A-Z][a-z]+\b/g) ?? []).filter((w) => /^[A-Z][a-z]+$/.test(w) && female.has(w) === fem),
        );
        named.delete('He');
        named.delete('She');
        named.delete('His');
        named.delete('Her');
        named.delete('The');
        named.delete('Then');
        named.delete('How');
        if (named.size > 1) throw new Error(`row ${i}: ambiguous "${pm[1]}" after "${sentences[j - 1]}" in: ${r.question}`);
      }
    }
    expect(pronounStarts).toBeGreaterThan(100);
    expect(() => generateProblems({ seed: 1, count: 1, minOperand: 1 })).toThrow(/minOperand/);
  });

  it('synthToJsonl writes one parseable {question, answer} object per line', () => {
    const rows = generateProblems({ seed: 1, count: 5 });
    const text = synthToJsonl(rows);
    expect(text.endsWith('\n')).toBe(true);
    const back = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(back).toEqual(rows);
    expect(synthToJsonl([])).toBe('');
  });

  it('withCommas formats thousands', () => {
    expect([0, 999, 1000, 3200, 1234567, -45000].map(withCommas)).toEqual(['0', '999', '1,000', '3,200', '1,234,567', '-45,000']);
  });

  it('explains impossible settings instead of looping', () => {
    expect(() => generateProblems({ seed: 1, count: 5000, steps: 1, ops: ['+'], maxOperand: 3, names: 2, objects: 1 })).toThrow(/unique/);
    expect(() => generateProblems({ seed: 1, count: 1, ops: [] })).toThrow(/ops/);
    expect(() => generateProblems({ seed: 1, count: 1, steps: [3, 2] })).toThrow(/steps/);
  });
});
