// Qwen2 parity against the independent PyTorch reference (scripts/reference/make_fixtures.py, HF modeling_qwen2
// semantics): logits, loss, final hidden states, every parameter gradient, and ten AdamW steps — on every backend.
// Like llm.c's test_gpt2.c. Fixtures are committed; regenerate with /usr/bin/python3 scripts/reference/make_fixtures.py.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import type { Backend } from '../src/backend/types.js';
import { Kind, Qwen2 } from '../src/model/qwen2.js';
import { AdamW } from '../src/train/adamw.js';
import { maxRelErr } from './_conformance.js';
import { testBackends } from './_backends.js';
import { type FixtureCase, readFixtureCase } from './_fixture-case.js';

const dir = join(__dirname, 'fixtures');
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.safetensors') && !f.startsWith('st_'))
  .sort();

/** A reference case with the AdamW settings of its ten optimizer steps. */
type Fixture = FixtureCase & {
  adamw: { lr: number; betas: [number, number]; eps: number; weight_decay: number; clip: number };
};

function loadFixture(file: string): Fixture {
  const c = readFixtureCase(dir, file);
  return { ...c, adamw: JSON.parse(c.meta.adamw) };
}

const close = (got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 1e-3) =>
  expect(maxRelErr(got, want), what).toBeLessThan(tol);

for (const { name: beName, make } of testBackends()) {
  describe(`Qwen2 parity with the PyTorch reference on ${beName}`, () => {
    let be: Backend | null = null;
    const get = async () => (be ??= await make());
    afterAll(() => be?.destroy());
    for (const file of cases) {
      it(`${file}: logits, loss, hidden, every gradient`, async () => {
        const f = loadFixture(file);
        const model = Qwen2.fromTensors(await get(), f.config, f.params, file);
        const kind = Uint8Array.from(f.latent, (x) => (x ? Kind.Latent : Kind.Token));
        const inp = { B: f.B, T: f.T, ids: f.ids, labels: f.labels, kind };
        let valid = 0;
        for (let i = 0; i < f.B * f.T; i++) if (i % f.T !== 0 && f.labels[i] !== -100) valid++;
        model.zeroGrads();
        const r = await model.forward(inp, { grad: true, lossScale: 1 / valid, wantLogits: true, wantHidden: true });
        model.backward();
        close(r.logits!, f.ref.get('logits')!, 'logits');
        close(r.hidden!, f.ref.get('hidden')!, 'hidden');
        expect(Math.abs(r.lossSum / r.labelCount - f.ref.get('loss')![0]) / f.ref.get('loss')![0]).toBeLessThan(1e-4);
        for (const pname of f.params.keys()) close(await model.readGrad(pname), f.ref.get(`grad.${pname}`)!, `grad.${pname}`);
        model.destroy();
      });
    }
    it('ten AdamW steps match the reference losses (with grad-norm clipping)', async () => {
      const file = cases.find((c) => c.includes('gqa2')) ?? cases[0];
      const f = loadFixture(file);
      const model = Qwen2.fromTensors(await get(), f.config, f.params, file);
      const opt = new AdamW(model, {
        lr: f.adamw.lr,
        beta1: f.adamw.betas[0],
        beta2: f.adamw.betas[1],
        eps: f.adamw.eps,
        weightDecay: f.adamw.weight_decay,
        clipNorm: f.adamw.clip,
      });
      const kind = Uint8Array.from(f.latent, (x) => (x ? Kind.Latent : Kind.Token));
      const losses: number[] = [];
      for (let s = 0; s < 10; s++) {
        model.zeroGrads();
        let valid = 0;
        for (let i = 0; i < f.B * f.T; i++) if (i % f.T !== 0 && f.labels[i] !== -100) valid++;
        const r = await model.forward({ B: f.B, T: f.T, ids: f.ids, labels: f.labels, kind }, { grad: true, lossScale: 1 / valid });
        model.backward();
        losses.push(r.lossSum / r.labelCount);
        await opt.update();
      }
      close(losses, f.ref.get('adamw_losses')!, 'adamw losses', 1e-3);
      expect(losses[9]).toBeLessThan(losses[0]);
      opt.destroy();
      model.destroy();
    });
  });
}

describe('KV-cache incremental passes equal full passes', () => {
  it('token by token and with latents (cpu)', async () => {
    const f = loadFixture(cases.find((c) => c.includes('latent')) ?? cases[0]);
    const be = new CpuBackend();
    const model = Qwen2.fromTensors(be, f.config, f.params);
    const T = f.T,
      H = model.H;
    const ids = f.ids.slice(0, T);
    const kind = Uint8Array.from(f.latent.slice(0, T), (x) => (x ? Kind.Latent : Kind.Token));
    const full = await model.forward({ B: 1, T, ids, kind }, { wantHidden: true });
    const cache = model.createCache(1, T + 2);
    const first = 3;
    const inc: Float32Array[] = [];
    let r = await model.forward({ B: 1, T: first, ids: ids.slice(0, first), kind: kind.slice(0, first) }, { cache, wantHidden: true });
    inc.push(r.hidden!);
    for (let t = first; t < T; t++) {
      r = await model.forward({ B: 1, T: 1, ids: ids.slice(t, t + 1), kind: kind.slice(t, t + 1) }, { cache, wantHidden: true });
      inc.push(r.hidden!);
    }
    const joined = new Float32Array(T * H);
    let off = 0;
    for (const h of inc) {
      joined.set(h, off);
      off += h.length;
    }
    close(joined, full.hidden!, 'incremental hidden');
    model.freeCache(cache);
  });
});
