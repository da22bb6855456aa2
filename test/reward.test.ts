import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadGsm8k } from '../src/data/gsm8k.js';
import { reward, rewardBatch } from '../src/data/grade.js';

const DATA = fileURLToPath(new URL('../../shared/gsm8k/', import.meta.url));
const haveData = existsSync(join(DATA, 'train.jsonl')) && existsSync(join(DATA, 'test.jsonl'));
if (!haveData) console.warn(`reward tests on real data SKIPPED: ${DATA}{train,test}.jsonl not found`);

describe('reward: documented behaviour', () => {
  const cases: [completion: string, gold: string, reward: 0 | 1, format: 0 | 1, extracted: string][] = [
    ['so the answer is\n#### 72', '72', 1, 1, '72'],
    ['#### 7.50', '7.5', 1, 1, '7.5'],
    ['#### 072', '72', 1, 1, '72'],
    ['#### -3', '3', 0, 1, '-3'],
    ['#### 3', '-3', 0, 1, '3'],
    ['#### $1,234.500 dollars', '1234.5', 1, 1, '1234.5'],
    ['#### -$5', '-5', 1, 1, '-5'],
    ['#### $-5', '-5', 1, 1, '-5'],
    ['####72', '72', 1, 1, '72'],
    ['#### .5', '0.5', 1, 1, '0.5'],
    ['#### 0.0', '-0', 1, 1, '0'],
    ['#### 5.', '5', 1, 1, '5'],
    ['#### 1,000', '1000', 1, 1, '1000'],
    // The last #### with a number wins; earlier ones and a bare trailing #### do not count.
    ['#### 1\nwait\n#### 2', '2', 1, 1, '2'],
    ['#### 1\n#### none', '1', 1, 1, '1'],
    // No ####: the last number in the text (format 0).
    ['She has 3 apples and 5 pears, so 8.', '8', 1, 0, '8'],
    ['The answer is $12,000.', '12000', 1, 0, '12000'],
    ['5-3', '3', 1, 0, '3'], // '-' after a digit is an operator, not a sign
    ['x-3', '3', 1, 0, '3'], // ... and after a letter it is a hyphen
    ['it fell by -3 degrees', '-3', 1, 0, '-3'],
    ['version 3.14.15', '15', 1, 0, '15'],
    ['no digits at all', '1', 0, 0, ''],
    ['', '0', 0, 0, ''],
    ['#### ', '0', 0, 0, ''],
    // A number on the line after #### is not the #### answer.
    ['####\n42', '42', 1, 0, '42'],
    ['12345678901234567890', '12345678901234567890', 1, 0, '12345678901234567890'],
    ['12345678901234567890', '12345678901234567891', 0, 0, '12345678901234567890'],
    ['#### 0.1000000000000000000001', '0.1', 0, 1, '0.1000000000000000000001'],
    ['#### 9007199254740993', '9007199254740992', 0, 1, '9007199254740993'], // equal as f64, not as decimals
    ['#### ７２', '72', 0, 0, ''], // only ASCII digits are digits
  ];
  for (const [c, g, r, f, x] of cases) {
    it(`${JSON.stringify(c)} vs ${JSON.stringify(g)}`, () => {
      expect(reward(c, g)).toEqual({ reward: r, format: f, extracted: x });
    });
  }

  it('strict: only #### N counts', () => {
    expect(reward('the answer is 8', '8', { strict: true })).toEqual({ reward: 0, format: 0, extracted: '' });
    expect(reward('the answer is 8', '8')).toEqual({ reward: 1, format: 0, extracted: '8' });
    expect(reward('7 then #### 8', '8', { strict: true })).toEqual({ reward: 1, format: 1, extracted: '8' });
  });

  it('gold forms: $, commas, blanks, numbers; a non-numeric gold is an error', () => {
    expect(reward('#### 1000', ' $1,000 ').reward).toBe(1);
    expect(reward('#### 72', 72).reward).toBe(1);
    expect(reward('#### 5', '5.').reward).toBe(1);
    // a full stop after a gold with a fraction (found by the fuzzer: it used to be read as part of the number)
    expect(reward('#### 7.5', '7.50.').reward).toBe(1);
    expect(reward('#### 0.5', ' .5.').reward).toBe(1);
    expect(reward('#### -0.5', -0.5).reward).toBe(1);
    expect(() => reward('#### 1', 'one')).toThrow(/gold "one" is not a number/);
    expect(() => reward('#### 1', '1 2')).toThrow(/not a number/);
    expect(() => reward('#### 1', '')).toThrow(/not a number/);
    expect(() => reward('#### 1', 1e21)).toThrow(/not a decimal number/);
    expect(() => reward('#### 1', NaN)).toThrow(/not a decimal number/);
  });

  it('rewardBatch equals reward item by item, and names a bad item', () => {
    const cs = ['#### 1', 'x 2', '#### 3.0', '', '#### -4'];
    const gs = ['1', '2', '3', '4', '4'];
    expect(rewardBatch(cs, gs)).toEqual(cs.map((c, i) => reward(c, gs[i])));
    expect(rewardBatch(cs, gs, { strict: true })).toEqual(cs.map((c, i) => reward(c, gs[i], { strict: true })));
    expect(rewardBatch([], [])).toEqual([]);
    expect(() => rewardBatch(['a'], [])).toThrow(/1 completions but 0 golds/);
    expect(() => rewardBatch(['a', 'b'], ['1', 'x'])).toThrow(/gold 1 "x"/);
  });
});

// ---- an independent reference, written from the documented grammar with regexes and BigInt --------------------
const BODY = String.raw`(?:\d+(?:,\d+)*(?:\.\d+)?|(?<!\d)\.\d+)`;
const MARKER = new RegExp(String.raw`####[ \t]*([-\u2212]\$?|\$[-\u2212]?)?(${BODY})`, 'g');
const NUMBER = new RegExp(BODY, 'g');

/** Canonical decimal via BigInt: value = n / 10^scale. */
function canon(neg: boolean, body: string): string {
  const [int, frac = ''] = body.replace(/,/g, '').split('.');
  const f = frac.replace(/0+$/, '');
  const i = BigInt(int || '0').toString();
  const zero = i === '0' && !f;
  return `${neg && !zero ? '-' : ''}${i}${f ? '.' + f : ''}`;
}

function refReward(c: string, gold: string, strict: boolean) {
  let marker: string | null = null;
  for (const m of c.matchAll(MARKER)) marker = canon(!!m[1] && /[-\u2212]/.test(m[1]), m[2]);
  let last: string | null = null;
  for (const m of c.matchAll(NUMBER)) {
    const at = m.index!;
    let k = at;
    if (c[k - 1] === '$') k--;
    const neg = /[-\u2212]/.test(c[k - 1] ?? '') && (k - 1 === 0 || !/[0-9A-Za-z]/.test(c[k - 2]));
    last = canon(neg, m[0]);
  }
  const extracted = marker ?? (strict ? null : last);
  const g = /^\s*([-\u2212]\$?|\$[-\u2212]?)?(\d+(?:,\d+)*(?:\.\d+)?|\.\d+)\.?\s*$/.exec(gold)!;
  const gc = canon(!!g[1] && /[-\u2212]/.test(g[1]), g[2]);
  return { reward: extracted !== null && extracted === gc ? 1 : 0, format: marker !== null ? 1 : 0, extracted: extracted ?? '' };
}

describe('reward: agrees with the regex/BigInt reference on random input', () => {
  const alphabet = fc.constantFrom('#', '#', '####', '#### ', ' ', '\t', '\n', '-', '\u2212', '$', ',', '.', '0', '1', '5', '9', 'a', 'x');
  const gold = fc.stringMatching(/^-?[0-9]{1,3}(\.[0-9]{0,3})?$/);
  it('hostile alphabet, strict and lenient', () => {
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 60, size: 'max' }), gold, fc.boolean(), (c, g, strict) => {
        expect(reward(c, g, { strict })).toEqual(refReward(c, g, strict));
      }),
      { numRuns: 5000 },
    );
  });

  it('batches of random items', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ unit: alphabet, maxLength: 40, size: 'max' }), gold), { maxLength: 30 }), (items) => {
        expect(
          rewardBatch(
            items.map((x) => x[0]),
            items.map((x) => x[1]),
          ),
        ).toEqual(items.map(([c, g]) => refReward(c, g, false)));
      }),
      { numRuns: 500 },
    );
  });

  it('numeric equality is exact for long numbers written in different forms', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }), fc.nat(30), fc.nat(3), fc.nat(3), (n, scale, lead, trail) => {
        // The same value n / 10^scale written with leading zeros, trailing fraction zeros and thousands commas.
        const neg = n < 0n;
        const digits = (neg ? -n : n).toString().padStart(scale + 1, '0');
        const int = digits.slice(0, digits.length - scale);
        const frac = digits.slice(digits.length - scale);
        const withCommas = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
        const a = `${neg ? '-' : ''}$${'0'.repeat(lead)}${withCommas}${frac || trail ? '.' + frac + '0'.repeat(trail) : ''}`;
        const b = `${neg ? '-' : ''}${int}${frac ? '.' + frac : ''}`;
        expect(reward(`#### ${a}`, b).reward).toBe(1);
        expect(reward(`#### ${a}1`, b).reward).toBe(0); // one more digit at the end is a different number
      }),
      { numRuns: 2000 },
    );
  });
});

describe('fuzz: no crash or hang on any input', () => {
  it('random UTF-16 and random bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300, size: 'max' }), fc.boolean(), (c, strict) => {
        const r = reward(c, '1', { strict });
        expect(r.extracted).toMatch(/^(-?\d+(\.\d*[1-9])?)?$/);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500, size: 'max' }), (b) => {
        const r = reward(new TextDecoder('latin1').decode(b), '1');
        expect(r.extracted).toMatch(/^(-?\d+(\.\d*[1-9])?)?$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('megabyte inputs of every troublesome shape', () => {
    const M = 1 << 20;
    expect(reward('#'.repeat(M), '1')).toEqual({ reward: 0, format: 0, extracted: '' });
    expect(reward('#### '.repeat(M / 5), '1')).toEqual({ reward: 0, format: 0, extracted: '' });
    expect(reward('####' + ' '.repeat(M) + '7', '7')).toEqual({ reward: 1, format: 1, extracted: '7' });
    expect(reward('<'.repeat(M) + '9' + '>'.repeat(M), '9').reward).toBe(1);
    expect(reward('-'.repeat(M) + '$'.repeat(M) + '.'.repeat(M), '0').extracted).toBe('');
    expect(reward(',1'.repeat(M), '1').extracted).toBe('1'.repeat(M));
    const big = '9'.repeat(M);
    expect(reward(`#### ${big}.000`, big)).toEqual({ reward: 1, format: 1, extracted: big });
    expect(reward(`#### ${big}`, big.slice(1) + '8').reward).toBe(0);
    expect(reward('1.'.repeat(M), '1.1').extracted).toBe('1.1');
    const batch = rewardBatch(
      Array.from({ length: 64 }, (_, i) => 'x '.repeat(i * 1000) + `#### ${i}`),
      Array.from({ length: 64 }, (_, i) => String(i)),
    );
    expect(batch.every((r) => r.reward === 1 && r.format === 1)).toBe(true);
  });
});

describe.skipIf(!haveData)('real GSM8K data', () => {
  it('every gold answer text scores 1 against its own final, in one batch per split', async () => {
    for (const split of ['train', 'test']) {
      const d = await loadGsm8k(DATA, { split });
      const rs = rewardBatch(
        d.rows.map((r) => r.answer),
        d.rows.map((r) => r.final),
        { strict: true },
      );
      rs.forEach((r, i) => expect(r, `${split} row ${i + 1}`).toEqual({ reward: 1, format: 1, extracted: d.rows[i].final }));
      // Without the final line, a lenient check still finds some number, and the format flag is 0.
      const noFinal = rewardBatch(
        d.rows.map((r) => r.steps.join('')),
        d.rows.map((r) => r.final),
      );
      expect(noFinal.every((r) => r.format === 0)).toBe(true);
      // The steps' last number is usually the answer; the point here is only that it is a number.
      expect(noFinal.filter((r) => r.extracted === '').length).toBe(0);
    }
  });
});
