// HF Qwen2 checkpoints: config validation, save/load round trips (F32 and BF16, bit-exact), sharded indexes,
// missing/misshapen/truncated tensors named with their file, a URL source over a local HTTP server, the parity
// fixtures' parameter sets, and the python reference CLI reading a checkpoint we wrote.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectedQwen2Tensors,
  loadHfCheckpoint,
  parseQwen2Config,
  saveHfCheckpoint,
  validateQwen2Tensors,
  type Qwen2Config,
  type SaveTensor,
} from '../src/model/hf.js';
import { parseSafetensors, toBf16Bits, toFloat32, toInt32, writeSafetensors } from '../src/io/safetensors.js';
import { demand } from './_require.js';

const root = mkdtempSync(join(tmpdir(), 'latentlm-hf-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const newDir = () => {
  const d = join(root, `m${dirCount++}`);
  mkdirSync(d, { recursive: true });
  return d;
};

const tinyConfig = (over: Partial<Qwen2Config> = {}): Qwen2Config =>
  parseQwen2Config({
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: 20,
    hidden_size: 8,
    intermediate_size: 12,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    bos_token_id: 3,
    ...over,
  });

/** Deterministic pseudo-random weights (xorshift), with shapes from the config. */
function randomTensors(config: Qwen2Config, seed = 1): Map<string, { shape: number[]; data: Float32Array }> {
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32 - 0.5;
  };
  const m = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of expectedQwen2Tensors(config))
    m.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rnd) });
  return m;
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('Qwen2 config', () => {
  it('fills HF defaults and keeps unknown fields', () => {
    const c = parseQwen2Config(
      { vocab_size: 10, hidden_size: 8, intermediate_size: 4, num_hidden_layers: 1, num_attention_heads: 2, foo: 'bar' },
      'c.json',
    );
    expect(c.num_key_value_heads).toBe(2);
    expect(c.rms_norm_eps).toBe(1e-6);
    expect(c.rope_theta).toBe(10000);
    expect(c.tie_word_embeddings).toBe(false);
    expect(c.max_position_embeddings).toBe(32768);
    expect(c.foo).toBe('bar');
  });

  it('rejects inconsistent shapes with clear errors naming the file', () => {
    const base = { vocab_size: 10, hidden_size: 8, intermediate_size: 4, num_hidden_layers: 1, num_attention_heads: 2 };
    expect(() => parseQwen2Config({ ...base, num_attention_heads: 3 }, 'a/config.json')).toThrow(
      'a/config.json: hidden_size 8 is not divisible by num_attention_heads 3',
    );
    expect(() => parseQwen2Config({ ...base, hidden_size: 12, num_attention_heads: 4 }, 'b.json')).toThrow(
      /b\.json: head_dim = hidden_size \/ num_attention_heads = 3 must be even/,
    );
    expect(() => parseQwen2Config({ ...base, hidden_size: 24, num_attention_heads: 3, num_key_value_heads: 2 }, 'c.json')).toThrow(
      'c.json: num_attention_heads 3 is not divisible by num_key_value_heads 2',
    );
    expect(() => parseQwen2Config({ ...base, vocab_size: undefined }, 'd.json')).toThrow("d.json: missing field 'vocab_size'");
    expect(() => parseQwen2Config({ ...base, num_hidden_layers: 1.5 }, 'e.json')).toThrow(
      /e\.json: 'num_hidden_layers' must be a positive integer/,
    );
    expect(() => parseQwen2Config({ ...base, model_type: 'llama' }, 'f.json')).toThrow(/f\.json: model_type "llama" is not supported/);
    expect(() => parseQwen2Config({ ...base, rms_norm_eps: 0 }, 'g.json')).toThrow(/g\.json: 'rms_norm_eps' must be a positive number/);
    expect(() => parseQwen2Config({ ...base, rope_scaling: { type: 'yarn', factor: 4 } }, 'h.json')).toThrow(
      /h\.json: rope_scaling .* is not supported/,
    );
    expect(() => parseQwen2Config({ ...base, hidden_act: 'gelu' }, 'i.json')).toThrow(/i\.json: hidden_act "gelu"/);
    expect(() => parseQwen2Config({ ...base, tie_word_embeddings: 'yes' }, 'j.json')).toThrow(
      /j\.json: 'tie_word_embeddings' must be true or false/,
    );
    expect(() => parseQwen2Config([], 'k.json')).toThrow('k.json: not a JSON object');
    expect(() => parseQwen2Config({ ...base, use_sliding_window: true }, 'l.json')).toThrow(/l\.json: use_sliding_window/);
    expect(parseQwen2Config({ ...base, rope_scaling: null, use_sliding_window: false }, 'ok.json').hidden_size).toBe(8);
  });

  it('lists every HF tensor with its shape (GQA, tied vs untied)', () => {
    const c = tinyConfig();
    const e = expectedQwen2Tensors(c);
    expect(e.size).toBe(1 + 12 * 2 + 1 + 1);
    expect(e.get('model.embed_tokens.weight')).toEqual([20, 8]);
    expect(e.get('model.layers.1.self_attn.q_proj.weight')).toEqual([8, 8]);
    expect(e.get('model.layers.1.self_attn.k_proj.weight')).toEqual([4, 8]); // 2 kv heads x head_dim 2
    expect(e.get('model.layers.0.self_attn.v_proj.bias')).toEqual([4]);
    expect(e.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
    expect(e.get('model.layers.0.mlp.down_proj.weight')).toEqual([8, 12]);
    expect(e.get('lm_head.weight')).toEqual([20, 8]);
    expect(expectedQwen2Tensors(tinyConfig({ tie_word_embeddings: true })).has('lm_head.weight')).toBe(false);
  });
});

describe('HF checkpoint save / load', () => {
  it('F32: a tiny random model written and loaded back bit-identically', async () => {
    const dir = newDir();
    const config = tinyConfig();
    const tensors = randomTensors(config);
    await saveHfCheckpoint(dir, config, tensors);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']); // no temp files left behind
    const cfgJson = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(cfgJson.torch_dtype).toBe('float32');
    expect(cfgJson.architectures).toEqual(['Qwen2ForCausalLM']);
    expect(cfgJson.bos_token_id).toBe(3);
    const st = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), 'model.safetensors');
    expect(st.metadata).toEqual({ format: 'pt' });
    const ck = await loadHfCheckpoint(dir);
    expect(ck.warnings).toEqual([]);
    expect(ck.config).toEqual(config);
    expect([...ck.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const got = ck.tensors.get(name)!;
      expect(got.shape, name).toEqual(t.shape);
      expect(got.dtype).toBe('F32');
      expect(got.file).toBe(`${dir}/model.safetensors`);
      expect(bits(got.data), name).toEqual(bits(t.data));
    }
  });

  it('BF16: rounds like torch, raw bits available unconverted, and re-saving is bit-identical', async () => {
    const dir = newDir(),
      dir2 = newDir();
    const config = tinyConfig({ tie_word_embeddings: true });
    const tensors = randomTensors(config, 7);
    await saveHfCheckpoint(dir, config, tensors, { dtype: 'BF16' });
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    const ck = await loadHfCheckpoint(dir);
    for (const [name, t] of tensors) {
      const raw = ck.getRaw(name);
      expect(raw.dtype).toBe('BF16');
      const rawBits = Array.from(new Uint16Array(raw.data.slice().buffer));
      expect(rawBits, name).toEqual(Array.from(toBf16Bits(t.data)));
      // f32 view = bf16 bits in the high half
      expect(bits(ck.tensors.get(name)!.data)).toEqual(rawBits.map((b) => (b << 16) >>> 0));
    }
    expect(() => ck.getRaw('nope')).toThrow(/no tensor 'nope'/);
    await saveHfCheckpoint(dir2, ck.config, ck.tensors, { dtype: 'BF16' });
    expect(Buffer.compare(readFileSync(join(dir, 'model.safetensors')), readFileSync(join(dir2, 'model.safetensors')))).toBe(0);
    // release() drops the cached copy; data converts again identically
    const t = ck.tensors.get('model.norm.weight')!;
    const first = t.data;
    t.release();
    expect(t.data).not.toBe(first);
    expect(bits(t.data)).toEqual(bits(first));
  });

  it('saving refuses an incomplete or misshapen model', async () => {
    const config = tinyConfig();
    const tensors = randomTensors(config);
    tensors.delete('model.norm.weight');
    await expect(saveHfCheckpoint(newDir(), config, tensors)).rejects.toThrow(/missing tensor 'model\.norm\.weight' \[8\]/);
    const t2 = randomTensors(config);
    const t2s: Map<string, SaveTensor> = t2;
    t2s.set('extra.thing', { data: new Float32Array(3) });
    await expect(saveHfCheckpoint(newDir(), config, t2)).rejects.toThrow(/'extra\.thing' is not a Qwen2 parameter/);
    const t3: Map<string, SaveTensor> = randomTensors(config);
    t3.set('model.norm.weight', new Float32Array(5)); // shape taken from the config: 8 elements expected
    await expect(saveHfCheckpoint(newDir(), config, t3)).rejects.toThrow(/tensor 'model\.norm\.weight'.*8 elements, data has 5/);
  });

  it('a sharded checkpoint (model.safetensors.index.json)', async () => {
    const dir = newDir();
    const config = tinyConfig();
    const tensors = randomTensors(config, 3);
    const names = [...tensors.keys()];
    const shards = [names.slice(0, 10), names.slice(10)];
    const weight_map: Record<string, string> = {};
    shards.forEach((list, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      for (const n of list) weight_map[n] = file;
      writeFileSync(
        join(dir, file),
        writeSafetensors(
          list.map((n) => ({ name: n, dtype: 'BF16' as const, ...tensors.get(n)! })),
          { format: 'pt' },
        ),
      );
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map }));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const ck = await loadHfCheckpoint(dir);
    expect(ck.files.map((f) => f.split('/').pop())).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(ck.tensors.size).toBe(names.length);
    for (const [n, t] of tensors) {
      expect(ck.tensors.get(n)!.file.endsWith(weight_map[n])).toBe(true);
      expect(bits(ck.tensors.get(n)!.data)).toEqual(Array.from(toBf16Bits(t.data), (b) => (b << 16) >>> 0));
    }
    // the index names a tensor its shard does not hold
    weight_map['model.norm.weight'] = 'model-00001-of-00002.safetensors';
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map }));
    await expect(loadHfCheckpoint(dir)).rejects.toThrow(
      /model-00001-of-00002\.safetensors: tensor 'model\.norm\.weight' is listed for this shard .* but is not in it/,
    );
    weight_map['model.norm.weight'] = '../elsewhere.safetensors';
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map }));
    await expect(loadHfCheckpoint(dir)).rejects.toThrow(/index\.json: tensor 'model\.norm\.weight' maps to invalid shard/);
  });

  it('a missing tensor, a wrong shape, a truncated file: errors name the tensor and the file', async () => {
    const config = tinyConfig();
    const write = (dir: string, tensors: Map<string, { shape: number[]; data: Float32Array }>) => {
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
      const bytes = writeSafetensors(
        [...tensors].map(([name, t]) => ({ name, dtype: 'F32' as const, ...t })),
        { format: 'pt' },
      );
      writeFileSync(join(dir, 'model.safetensors'), bytes);
      return bytes;
    };
    const d1 = newDir();
    const t1 = randomTensors(config);
    t1.delete('model.layers.1.mlp.up_proj.weight');
    write(d1, t1);
    await expect(loadHfCheckpoint(d1)).rejects.toThrow(
      `${d1}/model.safetensors: missing tensor 'model.layers.1.mlp.up_proj.weight' [12, 8]`,
    );

    const d2 = newDir();
    const t2 = randomTensors(config);
    t2.set('model.layers.0.self_attn.k_proj.weight', { shape: [8, 4], data: new Float32Array(32) });
    write(d2, t2);
    await expect(loadHfCheckpoint(d2)).rejects.toThrow(
      `${d2}/model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight' has shape [8, 4], expected [4, 8]`,
    );

    const d3 = newDir();
    const bytes = write(d3, randomTensors(config));
    writeFileSync(join(d3, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
    await expect(loadHfCheckpoint(d3)).rejects.toThrow(
      new RegExp(`^${d3}/model\\.safetensors: tensor '[^']+': offsets .* exceed data size`),
    );

    const d4 = newDir();
    writeFileSync(join(d4, 'config.json'), JSON.stringify(config));
    await expect(loadHfCheckpoint(d4)).rejects.toThrow(/neither model\.safetensors nor model\.safetensors\.index\.json found/);
    await expect(loadHfCheckpoint(join(root, 'does-not-exist'))).rejects.toThrow(/no config\.json found/);
    writeFileSync(join(d4, 'config.json'), '{"vocab_size": 3,');
    await expect(loadHfCheckpoint(d4)).rejects.toThrow(new RegExp(`${d4}/config\\.json: invalid JSON`));
  });

  it('unknown extra tensors warn, not fail (rotary inv_freq, a tied lm_head)', async () => {
    const dir = newDir();
    const config = tinyConfig({ tie_word_embeddings: true });
    const tensors = randomTensors(config);
    tensors.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [1], data: new Float32Array(1) });
    tensors.set('lm_head.weight', { shape: [20, 8], data: new Float32Array(160) });
    await saveHfCheckpoint(dir, config, tensors);
    const seen: string[] = [];
    const ck = await loadHfCheckpoint(dir, { onWarning: (w) => seen.push(w) });
    expect(ck.warnings).toEqual(seen);
    expect(seen.some((w) => w.includes("'lm_head.weight' ignored: tie_word_embeddings is true"))).toBe(true);
    expect(seen.some((w) => /ignoring 1 tensor .*'model\.layers\.0\.self_attn\.rotary_emb\.inv_freq'/.test(w))).toBe(true);
    expect(ck.tensors.has('model.layers.0.self_attn.rotary_emb.inv_freq')).toBe(true);
  });
});

describe('HF checkpoint from a URL (local HTTP server)', () => {
  let server: Server;
  let base = '';
  const served = newDir();
  const requests: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const file = join(served, decodeURIComponent((req.url ?? '/').replace(/^\/m\//, '').split('?')[0]));
      let body: Buffer;
      try {
        if (!file.startsWith(served) || !statSync(file).isFile()) throw new Error('not a file');
        body = readFileSync(file);
      } catch {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const addr = server.address();
    if (!addr || typeof addr === 'string') throw new Error('no server address');
    base = `http://127.0.0.1:${addr.port}/m/`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  it('loads the same tensors over HTTP as from disk', async () => {
    const config = tinyConfig();
    const tensors = randomTensors(config, 11);
    await saveHfCheckpoint(served, config, tensors, { dtype: 'BF16' });
    const ck = await loadHfCheckpoint(base);
    const local = await loadHfCheckpoint(served);
    expect(ck.config).toEqual(local.config);
    expect(ck.files).toEqual([`${base}model.safetensors`]);
    for (const name of tensors.keys()) expect(bits(ck.tensors.get(name)!.data), name).toEqual(bits(local.tensors.get(name)!.data));
    expect(requests).toContain('GET /m/model.safetensors');
    await expect(loadHfCheckpoint(base.replace('/m/', '/missing/'))).rejects.toThrow(/no config\.json found/);
  });
});

describe('parity fixtures (test/fixtures/*.safetensors from scripts/reference/make_fixtures.py)', () => {
  const dir = join(__dirname, 'fixtures');
  const cases = readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors') && !f.startsWith('st_'))
    .sort();
  const load = (file: string) => parseSafetensors(new Uint8Array(readFileSync(join(dir, file))), file);

  it('the expected cases exist', () => {
    expect(cases).toEqual([
      'gqa2_tied.safetensors',
      'gqa7_untied.safetensors',
      'latent_chain.safetensors',
      'masked_labels.safetensors',
      'rope_eps.safetensors',
    ]);
  });

  for (const file of cases) {
    it(`${file}: config parses, parameters are exactly the Qwen2 set, ref tensors are consistent`, () => {
      const st = load(file);
      const config = parseQwen2Config(JSON.parse(st.metadata.config), `${file}#config`);
      const adamw = JSON.parse(st.metadata.adamw);
      expect(adamw).toMatchObject({ lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weight_decay: 0.1, clip: 1, steps: 10 });
      const params = new Map([...st.tensors].filter(([n]) => !n.startsWith('case.') && !n.startsWith('ref.')));
      expect(validateQwen2Tensors(config, params, { source: file })).toEqual([]);
      expect(params.size).toBe(expectedQwen2Tensors(config).size);
      for (const [n, e] of params) {
        expect(e.dtype).toBe('F32');
        expect(st.tensors.get(`ref.grad.${n}`)?.shape, `ref.grad.${n}`).toEqual(e.shape);
      }
      const [B, T] = st.tensors.get('case.ids')!.shape;
      expect(st.tensors.get('case.ids')!.dtype).toBe('I32');
      expect(st.tensors.get('ref.logits')!.shape).toEqual([B, T, config.vocab_size]);
      expect(st.tensors.get('ref.hidden')!.shape).toEqual([B, T, config.hidden_size]);
      expect(st.tensors.get('ref.adamw_losses')!.shape).toEqual([10]);
      const ids = toInt32(st.tensors.get('case.ids')!),
        labels = toInt32(st.tensors.get('case.labels')!),
        mask = toInt32(st.tensors.get('case.latent_mask')!);
      // recompute the loss from the reference logits: HF shift, mean over labels != -100 of the whole batch
      const logits = toFloat32(st.tensors.get('ref.logits')!);
      const V = config.vocab_size;
      let sum = 0,
        count = 0;
      for (let b = 0; b < B; b++) {
        expect(mask[b * T]).toBe(0);
        for (let t = 0; t + 1 < T; t++) {
          const y = labels[b * T + t + 1];
          expect(y === -100 || (y >= 0 && y < V && y === ids[b * T + t + 1])).toBe(true);
          if (y === -100) continue;
          const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
          const mx = Math.max(...row);
          let z = 0;
          for (const v of row) z += Math.exp(v - mx);
          sum += Math.log(z) + mx - row[y];
          count++;
        }
      }
      expect(count).toBeGreaterThan(0);
      expect(Math.abs(sum / count - toFloat32(st.tensors.get('ref.loss')!)[0])).toBeLessThan(1e-5);
      const gap = JSON.parse(st.metadata.case).f64_gap as Record<string, number>;
      for (const [k, v] of Object.entries(gap)) expect(v, `f32 vs f64 gap of ${k}`).toBeLessThan(1e-4);
      expect(statSync(join(dir, file)).size).toBeLessThan(200 * 1024);
    });
  }

  it('latent_chain has 3 consecutive latents in one sequence and 1 in the other, unlabelled', () => {
    const st = load('latent_chain.safetensors');
    const [B, T] = st.tensors.get('case.latent_mask')!.shape;
    const mask = toInt32(st.tensors.get('case.latent_mask')!),
      labels = toInt32(st.tensors.get('case.labels')!);
    const pos = Array.from({ length: B }, (_, b) => [...Array(T).keys()].filter((t) => mask[b * T + t]));
    expect(pos).toEqual([[4, 5, 6], [7]]);
    for (let i = 0; i < B * T; i++) if (mask[i]) expect(labels[i]).toBe(-100);
  });

  const py = '/usr/bin/python3';
  const hasTorch = spawnSync(py, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0;
  demand('torch', hasTorch, `${py} cannot import torch`);
  if (!hasTorch) console.warn(`skipping the reference CLI test: ${py} with torch is not available`);

  it.skipIf(!hasTorch)('qwen2_ref.py CLI on a checkpoint we saved reproduces the fixture for one sequence (with latents)', async () => {
    const st = load('latent_chain.safetensors');
    const config = parseQwen2Config(JSON.parse(st.metadata.config));
    const params = new Map(
      [...st.tensors]
        .filter(([n]) => !n.startsWith('case.') && !n.startsWith('ref.'))
        .map(([n, e]) => [n, { shape: e.shape, data: toFloat32(e) }]),
    );
    const dir = newDir();
    await saveHfCheckpoint(dir, config, params);
    const [, T] = st.tensors.get('case.ids')!.shape;
    const ids = Array.from(toInt32(st.tensors.get('case.ids')!).subarray(0, T));
    const labels = Array.from(toInt32(st.tensors.get('case.labels')!).subarray(0, T));
    const mask = toInt32(st.tensors.get('case.latent_mask')!).subarray(0, T);
    const latent = [...mask.keys()].filter((t) => mask[t]);
    writeFileSync(join(dir, 'case.json'), JSON.stringify({ ids, labels, latent }));
    const out = join(dir, 'out.safetensors');
    const r = spawnSync(
      py,
      [join(__dirname, '..', 'scripts', 'reference', 'qwen2_ref.py'), '--model', dir, '--case', join(dir, 'case.json'), '--out', out],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const res = parseSafetensors(new Uint8Array(readFileSync(out)), out);
    const V = config.vocab_size,
      H = config.hidden_size;
    expect(res.tensors.get('logits')!.shape).toEqual([T, V]);
    expect(res.tensors.get('hidden')!.shape).toEqual([T, H]);
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    expect(maxDiff(toFloat32(res.tensors.get('logits')!), toFloat32(st.tensors.get('ref.logits')!).subarray(0, T * V))).toBeLessThan(1e-4);
    expect(maxDiff(toFloat32(res.tensors.get('hidden')!), toFloat32(st.tensors.get('ref.hidden')!).subarray(0, T * H))).toBeLessThan(1e-4);
    for (const n of params.keys()) expect(res.tensors.get(`grad.${n}`)?.shape, n).toEqual(params.get(n)!.shape);
    expect(res.tensors.get('loss')!.shape).toEqual([1]);
  });
});
