// `latentlm dump`: one case through a checkpoint, everything a parity check needs in one safetensors file.
// The same case through scripts/reference/qwen2_ref.py (PyTorch, HF semantics) gives a file to compare with.
import { parseArgs } from 'node:util';
import { createBackend } from '../backend/index.js';
import type { BackendName } from '../backend/types.js';
import { resolveQwen2Source } from '../model/hf.js';
import { readText, writeFileAtomic } from '../io/source.js';
import { Kind, Qwen2 } from '../model/qwen2.js';
import { writeSafetensors, type WriteTensor } from '../io/safetensors.js';

const help = `latentlm dump --model DIR|ID --case CASE.json --out OUT.safetensors [--backend webgpu|gpujs|wasm|cpu] [--allow-nonfinite]

--model: an HF directory, or a Hub id (Qwen/Qwen2-0.5B[@rev]) taken from the HF cache (downloaded into it if missing;
HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE apply); its snapshot directory is printed for qwen2_ref.py --model.

Runs one sequence through the model (forward + backward) and writes F32 tensors:
  logits [T,V]   loss [1]   hidden [T,H] (final-norm)   grad.<HF name> for every parameter
CASE.json: {"ids":[...], "labels":[... -100 ...], "latent":[positions]}
  labels follow HF (same length as ids, shifted inside; -100 = ignored; default: ids).
  A latent position takes as input the final-norm hidden state of the position before it (gradients flow through).
Compare with: /usr/bin/python3 scripts/reference/qwen2_ref.py --model DIR --case CASE.json --out REF.safetensors`;

export const dumpCommand = {
  name: 'dump',
  summary: 'forward+backward one case through a checkpoint; write logits, loss, hidden and every gradient',
  help,
  async run(argv: string[]): Promise<number> {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        case: { type: 'string' },
        out: { type: 'string' },
        backend: { type: 'string' },
        'allow-nonfinite': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      console.log(help);
      return 0;
    }
    for (const k of ['model', 'case', 'out'] as const) if (!values[k]) throw new Error(`dump: --${k} is required (see --help)`);
    let spec: { ids?: unknown; labels?: unknown; latent?: unknown };
    try {
      spec = JSON.parse(await readText(values.case!));
    } catch (e) {
      throw new Error(`${values.case}: ${(e as Error).message}`);
    }
    if (!Array.isArray(spec.ids) || spec.ids.length === 0 || !spec.ids.every(Number.isInteger))
      throw new Error(`${values.case}: "ids" must be a non-empty array of integers`);
    const T = spec.ids.length;
    const ids = Int32Array.from(spec.ids as number[]);
    const labels = spec.labels === undefined ? ids.slice() : Int32Array.from(spec.labels as number[]);
    if (labels.length !== T) throw new Error(`${values.case}: "labels" has ${labels.length} entries, "ids" has ${T}`);
    const kind = new Uint8Array(T);
    for (const p of (spec.latent as number[] | undefined) ?? []) {
      if (!Number.isInteger(p) || p < 1 || p >= T) throw new Error(`${values.case}: latent position ${p} must be in 1..${T - 1}`);
      kind[p] = Kind.Latent;
    }
    const be = await createBackend({ prefer: (values.backend as BackendName | undefined) ?? 'auto', log: (l) => console.error(l) });
    const dir = String(await resolveQwen2Source(values.model!));
    if (dir !== values.model) console.error(`dump: ${values.model} is ${dir}`);
    const model = await Qwen2.load(be, dir, {
      onWarning: (w) => console.error(`warning: ${w}`),
      allowNonFinite: values['allow-nonfinite'],
    });
    let valid = 0;
    for (let t = 1; t < T; t++) if (labels[t] !== -100) valid++;
    model.zeroGrads();
    const r = await model.forward(
      { B: 1, T, ids, labels, kind },
      { grad: true, lossScale: 1 / Math.max(1, valid), wantLogits: true, wantHidden: true },
    );
    model.backward();
    const out: WriteTensor[] = [
      { name: 'logits', dtype: 'F32', shape: [T, model.V], data: r.logits! },
      { name: 'loss', dtype: 'F32', shape: [1], data: Float32Array.of(valid ? r.lossSum / valid : NaN) },
      { name: 'hidden', dtype: 'F32', shape: [T, model.H], data: r.hidden! },
    ];
    for (const name of model.params.keys())
      out.push({ name: `grad.${name}`, dtype: 'F32', shape: model.shapes.get(name)!, data: await model.readGrad(name) });
    await writeFileAtomic(values.out!, writeSafetensors(out, { backend: be.name, loss: String(valid ? r.lossSum / valid : NaN) }));
    console.error(
      `dump: loss ${(r.lossSum / Math.max(1, valid)).toFixed(6)} over ${valid} labels on ${be.name}; wrote ${out.length} tensors to ${values.out}`,
    );
    model.destroy();
    be.destroy();
    return 0;
  },
};
