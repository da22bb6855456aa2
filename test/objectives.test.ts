// Step decoding and hidden-state distillation (src/latent/objectives.ts, Qwen2.addHiddenGrad): loss and every
// parameter gradient against the PyTorch reference (scripts/reference/make_fixtures.py make_objectives) on a tiny
// model with a chain of latents.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import { Kind, Qwen2, type Qwen2Config } from '../src/model/qwen2.js';
import { parseSafetensors, toFloat32 } from '../src/io/safetensors.js';
import { auxLabelWeights, distillationGrad } from '../src/latent/objectives.js';
import { maxRelErr } from './_conformance.js';

const file = join(__dirname, 'fixtures', 'objectives', 'objectives.safetensors');

describe('latent objectives match the PyTorch reference', () => {
  it('step decoding + distillation: loss and every gradient', async () => {
    const st = parseSafetensors(new Uint8Array(readFileSync(file)), file);
    const meta = st.metadata as Record<string, string>;
    const cfg = JSON.parse(meta.config) as Qwen2Config;
    const { w_sd, w_d } = JSON.parse(meta.case) as { w_sd: number; w_d: number };
    const params = new Map<string, Float32Array>(),
      ref = new Map<string, Float32Array>(),
      c = new Map<string, Float32Array>();
    let T = 0;
    for (const [name, e] of st.tensors) {
      if (name.startsWith('case.')) {
        c.set(name.slice(5), toFloat32(e));
        if (name === 'case.ids') T = e.shape[1];
      } else if (name.startsWith('ref.')) ref.set(name.slice(4), toFloat32(e));
      else params.set(name, toFloat32(e));
    }
    const ids = Int32Array.from(c.get('ids')!),
      labels = Int32Array.from(c.get('labels')!);
    const kind = Uint8Array.from(c.get('latent_mask')!, (x) => (x ? Kind.Latent : Kind.Token));
    const aux: number[] = [];
    c.get('aux_mask')!.forEach((x, p) => x && aux.push(p));
    expect(aux.length).toBeGreaterThan(0);
    for (const p of aux) expect(kind[p - 1]).toBe(Kind.Latent); // the step-decode labels are read off latent outputs
    let nText = 0;
    for (let t = 1; t < T; t++) if (labels[t] !== -100 && !aux.includes(t)) nText++;
    const be = new CpuBackend();
    const model = Qwen2.fromTensors(be, cfg, params, 'objectives');
    model.zeroGrads();
    const r = await model.forward(
      { B: 1, T, ids, kind, labels, labelWeights: auxLabelWeights(T, aux, w_sd) },
      { grad: true, lossScale: 1 / nText, wantHidden: true },
    );
    const H = model.H,
      pos = Array.from(c.get('distill_pos')!),
      target = c.get('target')!;
    const d = distillationGrad(
      r.hidden!,
      H,
      T,
      pos.map((p, j) => ({ pos: p, target: target.subarray(j * H, (j + 1) * H) })),
      w_d,
      pos.length,
    );
    model.addHiddenGrad(d.grad);
    model.backward();
    let ce = 0;
    for (let t = 1; t < T; t++) if (labels[t] !== -100) ce += r.lossAt![t] * (aux.includes(t) ? w_sd : 1);
    const loss = ce / nText + d.loss;
    expect(Math.abs(loss - ref.get('loss')![0]) / ref.get('loss')![0]).toBeLessThan(1e-4);
    expect(d.loss).toBeGreaterThan(0.05 * loss); // both terms matter in this case
    expect(maxRelErr(r.hidden!, ref.get('hidden')!)).toBeLessThan(1e-3);
    for (const name of params.keys())
      expect(maxRelErr(await model.readGrad(name), ref.get(`grad.${name}`)!), `grad.${name}`).toBeLessThan(1e-3);
    // without the two objectives the gradients differ: the test can fail
    model.zeroGrads();
    await model.forward({ B: 1, T, ids, kind, labels }, { grad: true, lossScale: 1 / nText });
    model.backward();
    expect(maxRelErr(await model.readGrad('model.embed_tokens.weight'), ref.get('grad.model.embed_tokens.weight')!)).toBeGreaterThan(1e-2);
    model.destroy();
    be.destroy();
  });

  it('addHiddenGrad rejects a wrong size and a missing pass', async () => {
    const be = new CpuBackend();
    const st = parseSafetensors(new Uint8Array(readFileSync(file)), file);
    const params = new Map<string, Float32Array>();
    for (const [name, e] of st.tensors) if (!name.startsWith('case.') && !name.startsWith('ref.')) params.set(name, toFloat32(e));
    const model = Qwen2.fromTensors(be, JSON.parse((st.metadata as Record<string, string>).config), params, 'objectives');
    expect(() => model.addHiddenGrad(new Float32Array(4))).toThrow(/no forward/);
    model.zeroGrads();
    await model.forward({ B: 1, T: 3, ids: Int32Array.from([1, 2, 3]), labels: Int32Array.from([1, 2, 3]) }, { grad: true });
    expect(() => model.addHiddenGrad(new Float32Array(5))).toThrow(/expected B\*T\*H/);
    model.backward();
    model.destroy();
    be.destroy();
  });
});
