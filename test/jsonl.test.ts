import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JsonlWriter, readJsonl, readJsonlFile, toJsonLine } from '../src/io/jsonl.ts';

const dir = mkdtempSync(join(tmpdir(), 'latentlm-jsonl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('JsonlWriter', () => {
  it('a full disk names the file and leaves only whole lines (a real 16 KiB tmpfs where this runs as root)', async () => {
    const mnt = join(dir, 'full');
    mkdirSync(mnt);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', mnt]).status !== 0) {
      console.log('[jsonl] no tmpfs (not root?): the ENOSPC case is skipped');
      return;
    }
    try {
      const path = join(mnt, 'metrics.jsonl');
      const w = await JsonlWriter.open(path);
      const row = { step: 0, pad: 'x'.repeat(1500) };
      let written = 0;
      let error = '';
      for (let i = 0; i < 100 && !error; i++) {
        try {
          w.write({ ...row, step: i });
          written++;
        } catch (e) {
          error = (e as Error).message;
        }
      }
      w.close();
      expect(error).toContain(`cannot write ${path}: ENOSPC`);
      const rows = readJsonl<{ step: number }>(readFileSync(path, 'utf8'), { file: path });
      expect(rows.map((r) => r.step)).toEqual(Array.from({ length: written }, (_, i) => i));
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('appends one line per write, visible on disk immediately', async () => {
    const path = join(dir, 'log.jsonl');
    const w = await JsonlWriter.open(path);
    w.write({ step: 1, loss: 2.5 });
    // Read back while the writer is still open: the line is already in the file.
    expect(readFileSync(path, 'utf8')).toBe('{"step":1,"loss":2.5}\n');
    w.write({ step: 2, note: 'multi\nline' });
    w.close();
    expect(readFileSync(path, 'utf8').split('\n').length).toBe(3);
    expect(() => w.write({})).toThrow(/after close/);
    // Appends by default (a resumed run continues its log); append: false starts fresh.
    const w2 = await JsonlWriter.open(path);
    w2.write({ step: 3 });
    w2.close();
    expect(readJsonl(readFileSync(path, 'utf8'))).toEqual([{ step: 1, loss: 2.5 }, { step: 2, note: 'multi\nline' }, { step: 3 }]);
    const w3 = await JsonlWriter.open(path, { append: false, fsync: true });
    w3.write([1, 'ü', { a: null }]);
    w3.close();
    expect(await readJsonlFile(path)).toEqual([[1, 'ü', { a: null }]]);
  });

  it('keeps lines in memory without a path', async () => {
    const w = await JsonlWriter.open(null);
    w.write({ a: 1 });
    w.write('s');
    expect(w.lines).toEqual(['{"a":1}', '"s"']);
    expect(w.text()).toBe('{"a":1}\n"s"\n');
    expect(JsonlWriter.memory().text()).toBe('');
  });

  it('writes non-finite numbers as strings, and names the file when a value cannot be serialised', async () => {
    expect(toJsonLine({ loss: NaN, g: Infinity, h: -Infinity })).toBe('{"loss":"NaN","g":"Infinity","h":"-Infinity"}');
    const path = join(dir, 'bad.jsonl');
    const w = await JsonlWriter.open(path);
    expect(() => w.write({ n: 1n })).toThrow(/bad\.jsonl: cannot serialise/);
    expect(() => w.write(undefined)).toThrow(/no JSON form/);
    w.close();
  });

  it('reports an unopenable path', async () => {
    await expect(JsonlWriter.open(join(dir, 'missing-dir', 'x.jsonl'))).rejects.toThrow(/cannot open .*missing-dir/);
    expect(existsSync(join(dir, 'missing-dir'))).toBe(false);
  });
});

describe('readJsonl', () => {
  it('parses lines, skipping blanks, CRLF and a BOM', () => {
    expect(readJsonl('\uFEFF{"a":1}\r\n\r\n{"a":2}\n   \n[3]')).toEqual([{ a: 1 }, { a: 2 }, [3]]);
    expect(readJsonl('')).toEqual([]);
  });

  it('reports a malformed line with the file and 1-based line number', () => {
    const text = '{"a":1}\n\n{"a":2,}\n{"a":3}\n';
    expect(() => readJsonl(text, { file: 'data/train.jsonl' })).toThrow(/^data\/train\.jsonl:3: invalid JSON .*: \{"a":2,\}$/);
    expect(() => readJsonl('ok\n', { file: 'f.jsonl' })).toThrow(/^f\.jsonl:1:/);
  });

  const gsm8k = join(import.meta.dirname, '../../shared/gsm8k/test.jsonl');
  if (!existsSync(gsm8k)) console.log(`jsonl.test: skipping the GSM8K read test, ${gsm8k} not found`);
  it.skipIf(!existsSync(gsm8k))('reads the real GSM8K file when present', async () => {
    const path = gsm8k;
    const rows = await readJsonlFile<{ question: string; answer: string }>(path);
    expect(rows.length).toBeGreaterThan(1000);
    expect(rows.every((r) => typeof r.question === 'string' && /\n#### /.test(r.answer))).toBe(true);
  });
});
