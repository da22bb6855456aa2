import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseGsm8k } from '../src/data/gsm8k.js';
import { reward } from '../src/data/grade.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SHARED = fileURLToPath(new URL('../../shared/', import.meta.url));
const TEST_JSONL = join(SHARED, 'gsm8k', 'test.jsonl');
const TOKENIZER_DIR = join(SHARED, 'qwen2-tokenizer');
const haveData = existsSync(TEST_JSONL);
const haveTokenizer = existsSync(join(TOKENIZER_DIR, 'tokenizer.json'));
if (!haveData) console.warn(`cli test on real GSM8K SKIPPED: ${TEST_JSONL} not found`);
if (!haveTokenizer) console.warn(`cli --tokenizer test SKIPPED: ${TOKENIZER_DIR}/tokenizer.json not found`);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node --import tsx src/cli.ts ...args` (what `npx tsx src/cli.ts` does) with the given stdin. */
function cli(args: string[], stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

const lines = (s: string) =>
  s
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe.concurrent('latentlm CLI', () => {
  it('--help lists every command; no command is a usage error; an unknown command is named', async () => {
    const h = await cli(['--help']);
    expect(h.code).toBe(0);
    for (const c of ['tokenize', 'split', 'reward']) expect(h.stdout).toMatch(new RegExp(`^  ${c}\\s+\\S`, 'm'));
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toMatch(/Commands:/);
    const bad = await cli(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown command 'frobnicate'/);
  });

  it('every command has --help', async () => {
    for (const c of ['tokenize', 'split', 'reward', 'compare']) {
      const r = await cli([c, '--help']);
      expect(r.code, c).toBe(0);
      expect(r.stdout, c).toMatch(new RegExp(`^latentlm ${c} `));
    }
  });

  it('unknown flags, extra arguments and unreadable files give clear errors', async () => {
    const flag = await cli(['split', '--bogus']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/latentlm split: unknown option '--bogus' \(see 'latentlm split --help'\)/);
    const extra = await cli(['reward', 'a.jsonl', 'b.jsonl']);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/unexpected argument 'b\.jsonl'/);
    const missing = await cli(['reward', '/nonexistent/file.jsonl']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/latentlm reward: cannot read \/nonexistent\/file\.jsonl: ENOENT/);
    const dir = await cli(['split', ROOT]);
    expect(dir.code).toBe(1);
    expect(dir.stderr).toMatch(/cannot read .*EISDIR/);
    const noValue = await cli(['tokenize', '--tokenizer']);
    expect(noValue.code).toBe(2);
    expect(noValue.stderr).toMatch(/--tokenizer/);
  });

  it('split: one output line per row, errors in place with their line number, exit 1', async () => {
    const good = { question: 'Q1', answer: 'He walks 7 * 3,200 = <<7*3200=22400>>22,400 steps a week.\n#### 22,400' };
    const input =
      [
        JSON.stringify(good),
        '{nope',
        '',
        JSON.stringify({ question: 'Q2', answer: 'no final' }),
        JSON.stringify({ question: 'Q3', answer: '#### 5' }),
      ].join('\n') + '\n';
    const r = await cli(['split'], input);
    expect(r.code).toBe(1);
    const out = lines(r.stdout);
    expect(out.length).toBe(4);
    expect(out[0]).toEqual({ question: 'Q1', steps: ['He walks 7 * 3,200 = ', '22,400 steps a week.'], final: '22400' });
    expect(out[1]).toMatchObject({ line: 2, error: expect.stringMatching(/bad JSON/) });
    expect(out[2]).toEqual({ line: 4, error: "answer has no '#### N' final line" });
    expect(out[3]).toEqual({ question: 'Q3', steps: [''], final: '5' });
    expect(r.stderr).toMatch(/2 malformed rows/);

    const a = await cli(['split', '--annotations'], JSON.stringify(good));
    expect(a.code).toBe(0);
    expect(lines(a.stdout)).toEqual([
      {
        question: 'Q1',
        steps: ['He walks 7 * 3,200 = ', '22,400 steps a week.'],
        final: '22400',
        annotations: [{ expr: '7*3200', result: '22400' }],
      },
    ]);
  });

  it('split --expand / --report: expansions per annotation, a coverage summary, bad --max-steps', async () => {
    const row = { question: 'Q', answer: 'a <<48*37=1776>>1776 b <<2*2=5>>5 c <<7=7>>7\n#### 7' };
    const input = `${JSON.stringify(row)}\n\n{nope\n`;
    const e = await cli(['split', '--expand'], input);
    expect(e.code).toBe(1);
    expect(lines(e.stdout)).toEqual([
      {
        question: 'Q',
        steps: ['a ', '1776 b ', '5 c ', '7'],
        final: '7',
        expansions: [
          { ok: true, steps: ['48 * 30 = 1440', '48 * 7 = 336', '1440 + 336 = 1776'] },
          { ok: false, reason: 'wrong-result', detail: "'2*2' is 4, the annotation says 5" },
          { ok: false, reason: 'unsupported', detail: "expression '7' has no operation" },
        ],
      },
      { line: 3, error: expect.stringMatching(/bad JSON/) },
    ]);
    const r = await cli(['split', '--report', '--max-steps', '2'], input);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^annotations 3\nexpanded {4}0 \(0\.0%\)/);
    expect(r.stdout).toMatch(/\nmalformed rows 1 \(not counted above\):\n {2}line 3: bad JSON/);
    expect(r.stderr).toMatch(/1 malformed row/);
    expect(r.stdout).toMatch(/too-long +1\n +line 1 #0: <<48\*37=1776>> +3 steps \(max 2\)/);
    expect(r.stdout).toMatch(/wrong-result +1\n/);
    const bad = await cli(['split', '--max-steps', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-steps must be a positive integer, got '0'/);
    const both = await cli(['split', '--report', '--expand']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--report prints only the summary/);
  });

  it.skipIf(!haveData)('split FILE: the whole GSM8K test split matches the library', async () => {
    const r = await cli(['split', '--annotations', TEST_JSONL]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lib = parseGsm8k(readFileSync(TEST_JSONL, 'utf8')).rows.map((x) => ({
      question: x.question,
      steps: x.steps,
      final: x.final,
      annotations: x.annotations,
    }));
    const out = lines(r.stdout);
    expect(out.length).toBe(1319);
    expect(out).toEqual(lib);
  });

  it('reward: scores lines, --strict, errors in place', async () => {
    const items = [
      { completion: 'so 7.50\n#### $7.50', gold: '7.5' },
      { completion: 'the answer is 72', gold: 72 },
      { completion: '#### -3', gold: '3' },
    ];
    const input = items.map((x) => JSON.stringify(x)).join('\n') + '\n';
    const r = await cli(['reward'], input);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual([
      { reward: 1, format: 1, extracted: '7.5' },
      { reward: 1, format: 0, extracted: '72' },
      { reward: 0, format: 1, extracted: '-3' },
    ]);
    const s = await cli(['reward', '--strict'], input);
    expect(lines(s.stdout)).toEqual(items.map((x) => reward(x.completion, x.gold, { strict: true })));
    expect(lines(s.stdout)[1]).toEqual({ reward: 0, format: 0, extracted: '' });

    const bad = await cli(
      ['reward'],
      `${JSON.stringify(items[0])}\n{"completion": "x"}\n{"completion": "#### 1", "gold": "one"}\n[]\n{"completion": 5, "gold": "5"}\n`,
    );
    expect(bad.code).toBe(1);
    expect(lines(bad.stdout)).toEqual([
      { reward: 1, format: 1, extracted: '7.5' },
      { line: 2, error: 'missing field "gold"' },
      { line: 3, error: 'reward: gold "one" is not a number' },
      { line: 4, error: 'line is not a JSON object' },
      { line: 5, error: '"completion" must be a string' },
    ]);
  });

  it('tokenize: encode, --decode round trip, errors in place', async () => {
    const texts = ['hello world', 'Natalia sold 48/2 = 24 clips.\n', '<|im_start|>user 你好 😀'];
    const enc = await cli(['tokenize'], texts.map((t) => JSON.stringify(t)).join('\n') + '\n');
    expect(enc.stderr).toBe('');
    expect(enc.code).toBe(0);
    const ids = lines(enc.stdout) as number[][];
    expect(ids.length).toBe(3);
    // Qwen2's vocabulary: "hello" = 14990, " world" = 1879; <|im_start|> = 151644.
    expect(ids[0]).toEqual([14990, 1879]);
    expect(ids[2][0]).toBe(151644);
    const dec = await cli(['tokenize', '--decode'], ids.map((x) => JSON.stringify(x)).join('\n') + '\n');
    expect(dec.code).toBe(0);
    expect(lines(dec.stdout)).toEqual(texts);

    const bad = await cli(['tokenize'], '"ok"\n42\n{"x\n');
    expect(bad.code).toBe(1);
    const out = lines(bad.stdout);
    expect(out[1]).toEqual({ line: 2, error: 'line must be a JSON string' });
    expect(out[2]).toMatchObject({ line: 3, error: expect.stringMatching(/bad JSON/) });
    const badIds = await cli(['tokenize', '--decode'], '[1, -2]\n');
    expect(badIds.code).toBe(1);
    expect(lines(badIds.stdout)[0]).toMatchObject({ line: 1, error: expect.stringMatching(/integer ids/) });
  });

  it.skipIf(!haveTokenizer)('tokenize --tokenizer DIR gives the same ids as the embedded tokenizer', async () => {
    const input = ['The answer is 42.', 'Thinking... <|endoftext|>'].map((t) => JSON.stringify(t)).join('\n');
    const [a, b] = await Promise.all([cli(['tokenize'], input), cli(['tokenize', '--tokenizer', TOKENIZER_DIR], input)]);
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    expect(lines(b.stdout)).toEqual(lines(a.stdout));
    const missing = await cli(['tokenize', '--tokenizer', '/nonexistent/tok'], input);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/latentlm tokenize: .*\/nonexistent\/tok/);
  });

  it('compare: overlays run directories in one SVG and prints their last evaluations; bad runs are named', async () => {
    const { mkdirSync, writeFileSync, rmSync } = await import('node:fs');
    const dir = join(ROOT, 'test', '.tmp', 'cli-compare');
    rmSync(dir, { recursive: true, force: true });
    const ev = (step: number, post: number, gaps?: [number, number, number], acc?: [number, number]) =>
      JSON.stringify({
        type: 'eval',
        step,
        testLoss: post / 4,
        postBreakLoss: post,
        usage: gaps ? { gapZeroed: gaps[0], gapSwapped: gaps[1], gapRemoved: gaps[2] } : {},
        ...(acc ? { accuracy: acc[0], accuracyNoLatents: acc[1] } : {}),
      });
    const step = (n: number) => JSON.stringify({ type: 'step', step: n, loss: 1 });
    mkdirSync(join(dir, 'plain'), { recursive: true });
    mkdirSync(join(dir, 'lat'), { recursive: true });
    mkdirSync(join(dir, 'broken'), { recursive: true });
    writeFileSync(
      join(dir, 'plain', 'metrics.jsonl'),
      [step(1), ev(0, 1.3), step(2), ev(200, 0.91, undefined, [0.25, NaN])].join('\n') + '\n',
    );
    writeFileSync(
      join(dir, 'lat', 'metrics.jsonl'),
      [ev(0, 6.5, [0.2, -0.1, -5]), ev(200, 0.875, [3, 0.0125, 1.25], [0.5, 0])].join('\n') + '\n',
    );
    writeFileSync(join(dir, 'broken', 'metrics.jsonl'), ev(0, 1) + '\n{"type":"eval",\n');
    const out = join(dir, 'cmp.svg');
    const r = await cli(['compare', join(dir, 'plain'), join(dir, 'lat') + '/', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('| plain | 200 | 0.228 | 0.910 | – | – | – | 25.0 % / – |');
    expect(r.stdout).toContain('| lat | 200 | 0.219 | 0.875 | +3.000 | +0.013 | +1.250 | 50.0 % / 0.0 % |');
    const svg = readFileSync(out, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    // five panels: post-break loss, test loss, swapped gap, removed gap, accuracy
    expect(svg.match(/<svg/g)!.length).toBe(6);
    expect(svg).not.toMatch(/NaN/);
    const named = await cli(['compare', join(dir, 'plain'), join(dir, 'lat'), '--names', 'a,b', '--out', out]);
    expect(named.stdout).toMatch(/^\| a \| 200 /m);
    const badNames = await cli(['compare', join(dir, 'plain'), '--names', 'a,b']);
    expect(badNames.code).toBe(2);
    const broken = await cli(['compare', join(dir, 'broken'), '--out', out]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/broken\/metrics\.jsonl:2: invalid JSON/);
    const missing = await cli(['compare', join(dir, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\/metrics\.jsonl: not found/);
    const none = await cli(['compare']);
    expect(none.code).toBe(2);
  });
});
