import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadGsm8k, parseGsm8k, splitAnswer, splitAnswers, type Gsm8kExample } from '../src/data/gsm8k.js';
import { demand } from './_require.js';

const DATA = fileURLToPath(new URL('../../shared/gsm8k/', import.meta.url));
const haveData = existsSync(join(DATA, 'train.jsonl')) && existsSync(join(DATA, 'test.jsonl'));
if (!haveData) console.warn(`gsm8k tests on real data SKIPPED: ${DATA}{train,test}.jsonl not found`);

/** Independent of the WASM scan: strips `<<...>>` with a regex (real data has no nested or multi-line ones). */
const stripAnnotations = (s: string) => s.replace(/<<[^<>\n]*>>/g, '');

/** Rebuilds the original answer from a split: steps interleaved with `<<expr=result>>`, then the final line. */
function rebuild(r: Gsm8kExample, finalAsWritten: string): string {
  let s = r.steps[0];
  r.annotations.forEach((a, k) => (s += `<<${a.expr}=${a.result}>>` + r.steps[k + 1]));
  return `${s}\n#### ${finalAsWritten}`;
}

describe('splitAnswer: exact examples', () => {
  it('cuts where the annotation was; the next step starts with the result', () => {
    const r = splitAnswer('He walks 7 * 3,200 = <<7*3200=22400>>22,400 steps a week.\n#### 22,400');
    expect(r).toEqual({
      steps: ['He walks 7 * 3,200 = ', '22,400 steps a week.'],
      annotations: [{ expr: '7*3200', result: '22400' }],
      final: '22400',
    });
  });

  it('an answer without annotations is one step', () => {
    expect(splitAnswer('She has 5 apples.\n#### 5')).toEqual({ steps: ['She has 5 apples.'], annotations: [], final: '5' });
  });

  it('a final line alone gives one empty step; negative and decimal finals are kept as written', () => {
    expect(splitAnswer('#### -7')).toEqual({ steps: [''], annotations: [], final: '-7' });
    expect(splitAnswer('x\n#### 1,234.5  ').final).toBe('1234.5');
  });

  it('unusual annotations follow the documented rules', () => {
    // No '=': whole body is the expression, result ''.
    expect(splitAnswer('a <<x+1>>b\n#### 1')).toEqual({ steps: ['a ', 'b'], annotations: [{ expr: 'x+1', result: '' }], final: '1' });
    // Several '=': split at the last one.
    expect(splitAnswer('<<a=b=c>>c\n#### 1').annotations).toEqual([{ expr: 'a=b', result: 'c' }]);
    // Runs of '<' and '>': the innermost << ... first >> is the annotation; the rest is text.
    expect(splitAnswer('a <<<1=1>>> b\n#### 1')).toEqual({ steps: ['a <', '> b'], annotations: [{ expr: '1', result: '1' }], final: '1' });
    // Nested: the inner pair is the annotation, the outer '<<' stays text.
    expect(splitAnswer('<<2*<<1+1=2>>=4>>\n#### 4')).toEqual({
      steps: ['<<2*', '=4>>'],
      annotations: [{ expr: '1+1', result: '2' }],
      final: '4',
    });
    // Unclosed '<<', stray '>>': text. A newline cancels an open '<<'.
    expect(splitAnswer('x << y >> z\n#### 1').steps).toEqual(['x ', ' z']);
    expect(splitAnswer('x << y\nz >> w\n#### 1')).toEqual({ steps: ['x << y\nz >> w'], annotations: [], final: '1' });
    // Empty annotation is still a cut.
    expect(splitAnswer('a<<>>b\n#### 1')).toEqual({ steps: ['a', 'b'], annotations: [{ expr: '', result: '' }], final: '1' });
    // Annotations on the final line are not cut (the final line is reported verbatim, commas removed).
    expect(splitAnswer('a\n#### <<1=1>>1').final).toBe('<<1=1>>1');
  });

  it('the last line starting with #### is the final line', () => {
    expect(splitAnswer('#### 1 is a heading\nso\n#### 2\n\n')).toEqual({ steps: ['#### 1 is a heading\nso'], annotations: [], final: '2' });
  });

  it('rejects answers without a usable final line', () => {
    expect(() => splitAnswer('no final line')).toThrow(/no '#### N' final line/);
    expect(() => splitAnswer('a #### 5')).toThrow(/no '#### N' final line/);
    expect(() => splitAnswer('a\n####   ')).toThrow(/no final answer/);
    expect(() => splitAnswer('a\n#### 5\nmore text')).toThrow(/text after/);
  });

  it('splitAnswers reports errors in place', () => {
    const r = splitAnswers(['a<<1=1>>1\n#### 1', 'bad', '#### 2']);
    expect(r[0]).toEqual({ steps: ['a', '1'], annotations: [{ expr: '1', result: '1' }], final: '1' });
    expect(r[1]).toEqual({ error: "answer has no '#### N' final line" });
    expect(r[2]).toEqual({ steps: [''], annotations: [], final: '2' });
  });

  it('offsets are string indices, also with astral characters and lone surrogates', () => {
    const r = splitAnswer('😀 \ud800 = <<1+1=2>>2 🎉\n#### 2');
    expect(r.steps).toEqual(['😀 \ud800 = ', '2 🎉']);
  });
});

describe('parseGsm8k / loadGsm8k: malformed rows', () => {
  const good = JSON.stringify({ question: 'q', answer: 'a = <<1+1=2>>2\n#### 2' });
  const text = [
    good,
    '{bad json',
    JSON.stringify({ question: 'q' }),
    '',
    JSON.stringify({ question: 'q', answer: 'no final' }),
    JSON.stringify({ question: 1, answer: '#### 1' }),
    '[1]',
    good,
  ].join('\n');

  it("onError 'skip' keeps good rows and lists every bad one with its line", () => {
    const d = parseGsm8k(text, { onError: 'skip' });
    expect(d.rows.length).toBe(2);
    expect(d.errors.map((e) => e.line)).toEqual([2, 3, 5, 6, 7]);
    expect(d.errors[0].message).toMatch(/bad JSON/);
    expect(d.errors[1].message).toBe('missing field "answer"');
    expect(d.errors[2].message).toMatch(/####/);
    expect(d.errors[3].message).toBe('field "question" is not a string');
    expect(d.errors[4].message).toBe('row is not a JSON object');
  });

  it("onError 'throw' (default) rejects with the first bad line", async () => {
    expect(() => parseGsm8k(text)).toThrow(/^<text>:2: bad JSON.*\(and 4 more malformed rows\)$/);
    await expect(loadGsm8k({ text })).rejects.toThrow(/<text>:2:/);
  });

  it('blank lines and CRLF line ends are fine', async () => {
    const d = await loadGsm8k({ text: `\r\n${good}\r\n\r\n${good}\r\n` });
    expect(d.rows.length).toBe(2);
    expect(d.rows[0].final).toBe('2');
  });

  it('a file source with a split, and an unreadable file, are errors', async () => {
    await expect(loadGsm8k('/nonexistent/x.jsonl')).rejects.toThrow(/cannot read \/nonexistent\/x\.jsonl/);
    await expect(loadGsm8k('/nonexistent/x.jsonl', { split: 'test' })).rejects.toThrow(/names a file/);
    await expect(loadGsm8k('/nonexistent-dir', { split: 'test' })).rejects.toThrow(/cannot read \/nonexistent-dir\/test\.jsonl/);
  });

  it('loads from a URL (fetch), file and directory forms', async () => {
    const body = `${good}\n${good}\n`;
    const server = createServer((req, res) => {
      if (req.url === '/d/test.jsonl' || req.url === '/f.jsonl') res.end(body);
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      expect((await loadGsm8k(`http://127.0.0.1:${port}/f.jsonl`)).rows.length).toBe(2);
      const d = await loadGsm8k(new URL(`http://127.0.0.1:${port}/d/`), { split: 'test' });
      expect(d.source).toBe(`http://127.0.0.1:${port}/d/test.jsonl`);
      expect(d.rows.length).toBe(2);
      await expect(loadGsm8k(`http://127.0.0.1:${port}/d/`, { split: 'train' })).rejects.toThrow(/HTTP 404/);
    } finally {
      server.close();
    }
    const data = await loadGsm8k(`data:application/json,${encodeURIComponent(body)}`);
    expect(data.rows.length).toBe(2);
  });
});

demand('shared', haveData, '../shared/gsm8k is absent');
describe.skipIf(!haveData)('real GSM8K data', () => {
  for (const [split, count] of [
    ['train', 7473],
    ['test', 1319],
  ] as const) {
    it(`${split}: all ${count} rows split, and every row satisfies the invariants`, async () => {
      const d = await loadGsm8k(DATA, { split });
      expect(d.errors).toEqual([]);
      expect(d.rows.length).toBe(count);
      const raw = readFileSync(join(DATA, `${split}.jsonl`), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      let cuts = 0;
      d.rows.forEach((r, i) => {
        const where = `${split} row ${i + 1}`;
        expect(r.question, where).toBe(raw[i].question);
        expect(r.answer, where).toBe(raw[i].answer);
        const finalAsWritten = raw[i].answer.slice(raw[i].answer.lastIndexOf('\n#### ') + 6);
        expect(r.final, where).toBe(finalAsWritten.replace(/,/g, ''));
        expect(r.final, where).toMatch(/^-?\d+(\.\d+)?$/);
        expect(r.steps.length, where).toBe(r.annotations.length + 1);
        expect(r.annotations.length, where).toBe(raw[i].answer.split('<<').length - 1);
        // Joining the steps gives the answer without annotations and without the final line.
        expect(r.steps.join('') + '\n#### ' + finalAsWritten, where).toBe(stripAnnotations(raw[i].answer));
        // Steps and annotations interleaved give back the exact original.
        expect(rebuild(r, finalAsWritten), where).toBe(raw[i].answer);
        r.annotations.forEach((a, k) => {
          // In GSM8K the text after a cut starts with the calculator's result (written with or without commas).
          expect(r.steps[k + 1].replace(/,/g, '').startsWith(a.result), `${where} annotation ${k}`).toBe(true);
          expect(a.expr, `${where} annotation ${k}`).toMatch(/^[\d+\-*/().]+$/);
        });
        cuts += r.annotations.length;
      });
      expect(cuts).toBe(split === 'train' ? 23716 : 4282);
    });
  }

  it('known rows, exactly', async () => {
    const train = await loadGsm8k(join(DATA, 'train.jsonl'));
    expect(train.rows[0]).toMatchObject({
      steps: ['Natalia sold 48/2 = ', '24 clips in May.\nNatalia sold 48+24 = ', '72 clips altogether in April and May.'],
      annotations: [
        { expr: '48/2', result: '24' },
        { expr: '48+24', result: '72' },
      ],
      final: '72',
    });
    const test = await loadGsm8k(DATA, { split: 'test' });
    expect(test.rows[2].steps[1]).toBe('130,000\nHe increased the value of the house by 80,000*1.5=');
    expect(test.rows[2].annotations[0]).toEqual({ expr: '80000+50000', result: '130000' });
    expect(test.rows[2].final).toBe('70000');
  });
});

/**
 * Reference splitter written from the documented rules with regexes (quadratic at worst; fine for fuzz sizes):
 * final line = last line starting with ####; annotation = `<<` not followed by '<', a body without `<<`, `>>`
 * or newline, then `>>`; body split at its last '='.
 */
function refSplit(s: string): ReturnType<typeof splitAnswers>[number] {
  const lines = s.split('\n');
  let k = -1;
  lines.forEach((l, i) => {
    if (l.startsWith('####')) k = i;
  });
  if (k < 0) return { error: "answer has no '#### N' final line" };
  const final = lines[k].slice(4).replace(/^[ \t\r]+|[ \t\r]+$/g, '');
  if (!final) return { error: "answer's '####' line has no final answer" };
  if (lines.slice(k + 1).some((l) => /[^ \t\r]/.test(l))) return { error: "answer has text after its '#### N' final line" };
  const text = lines.slice(0, k).join('\n');
  const steps: string[] = [];
  const annotations: { expr: string; result: string }[] = [];
  let at = 0;
  for (const m of text.matchAll(/<<(?!<)((?:(?!<<|>>)[^\n])*)>>/g)) {
    steps.push(text.slice(at, m.index));
    const eq = m[1].lastIndexOf('=');
    annotations.push(eq < 0 ? { expr: m[1], result: '' } : { expr: m[1].slice(0, eq), result: m[1].slice(eq + 1) });
    at = m.index! + m[0].length;
  }
  steps.push(text.slice(at));
  return { steps, annotations, final: final.replace(/,/g, '') };
}

describe('fuzz: the WASM splitter never crashes or hangs, and agrees with a regex reference', () => {
  // Random text rarely holds a final line, so each input is also checked with one appended.
  const check = (s: string) => {
    const t = `${s}\n#### 5`;
    const [a, b] = splitAnswers([s, t]);
    expect(a).toEqual(refSplit(s));
    expect(b).toEqual(refSplit(t));
  };

  it('random strings over a hostile alphabet', () => {
    // Pieces rather than single characters, and size 'max', so runs such as '<<<', '>>>' and '####' are common.
    const piece = fc.constantFrom('<', '<<', '>', '>>', '=', '#', '####', ' ', '\n', '1', 'a', ',', '\r');
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 80, size: 'max' }).map((p) => p.join('')),
        check,
      ),
      { numRuns: 5000 },
    );
  });

  it('random UTF-16 (lone surrogates included) and random bytes', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300, size: 'max' }), check), { numRuns: 1000 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500, size: 'max' }), (b) => check(new TextDecoder('latin1').decode(b))),
      { numRuns: 1000 },
    );
  });

  it('batches of random answers (buffers grow and shrink between calls)', () => {
    const piece = fc.constantFrom('<<', '>>', '=', '1', ' ', '\n', '#### ', '####', 'a');
    const answer = fc.array(piece, { maxLength: 40, size: 'max' }).map((p) => p.join(''));
    fc.assert(
      fc.property(fc.array(answer, { maxLength: 50, size: 'max' }), (as) => {
        expect(splitAnswers(as)).toEqual(as.map(refSplit));
      }),
      { numRuns: 500 },
    );
  });

  it('structured random answers round-trip exactly', () => {
    const text = fc
      .string({ unit: fc.constantFrom('a', ' ', '1', ',', '.', '$', '\n', '+', '*'), maxLength: 20 })
      .filter((s) => !/(^|\n)####/.test(s));
    const ann = fc.record({
      expr: fc.string({ unit: fc.constantFrom('1', '+', '*', '(', ')', '.'), maxLength: 10 }),
      result: fc.string({ unit: fc.constantFrom('1', '2', '.', '-'), maxLength: 6 }),
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(ann, text), { maxLength: 8, size: 'max' }),
        text,
        fc.stringMatching(/^-?[1-9][0-9,]{0,8}$/),
        (parts, first, fin) => {
          // A step must not end with '\n' right before "####" or it would become a final line: the generator keeps
          // "####" out of steps entirely.
          let s = first;
          for (const [a, t] of parts) s += `<<${a.expr}=${a.result}>>${t}`;
          const r = splitAnswer(`${s}\n#### ${fin}`);
          expect(r.annotations).toEqual(parts.map(([a]) => a));
          expect(r.steps).toEqual([first, ...parts.map(([, t]) => t)]);
          expect(r.final).toBe(fin.replace(/,/g, ''));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('huge and deeply nested inputs', () => {
    const M = 1 << 20;
    expect(splitAnswers(['<'.repeat(M)])[0]).toEqual({ error: "answer has no '#### N' final line" });
    const deep = splitAnswer('<'.repeat(M) + '1=1' + '>'.repeat(M) + '\n#### 1');
    expect(deep.annotations).toEqual([{ expr: '1', result: '1' }]);
    expect(deep.steps[0].length).toBe(M - 2);
    expect(deep.steps[1].length).toBe(M - 2);
    const many = splitAnswer('<<1=1>>'.repeat(M / 4) + '\n#### 1');
    expect(many.annotations.length).toBe(M / 4);
    expect(splitAnswer('#'.repeat(M) + ' 5').final).toBe('#'.repeat(M - 4) + ' 5');
    expect(splitAnswer('\n'.repeat(M) + '#### 5').steps[0].length).toBe(M - 1);
    const rows = splitAnswers(Array.from({ length: 1000 }, (_, i) => 'x = <<1+1=2>>2\n'.repeat(i % 50) + `#### ${i}`));
    rows.forEach((r, i) => expect(r).toMatchObject({ final: String(i), annotations: { length: i % 50 } }));
  });
});
