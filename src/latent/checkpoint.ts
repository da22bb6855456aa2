// Training checkpoints: model.safetensors + config.json (HF-loadable, plus `latent.*` tensors), optimizer.safetensors
// (AdamW m/v), state.json (step, RNG, data order and position, classifier heads; typed and versioned in
// src/train/checkpoint-schema.ts).
// Atomic as a whole: everything is written into `<dir>.new/`, then the old directory is moved aside and the new one
// renamed into place, so a crash leaves either the previous checkpoint or the new one, never a mix.
import type { Qwen2 } from '../model/qwen2.js';
import type { AdamW } from '../train/adamw.js';
import { parseSafetensors, toFloat32, writeSafetensors } from '../io/safetensors.js';
import { readBytes, readText, sourceExists } from '../io/source.js';
import { assertFiniteTensor } from '../model/validate.js';
import { parseCheckpointState, type CheckpointState } from '../train/checkpoint-schema.js';
import { hasLatentTrunk } from '../model/latent-params.js';

export {
  CHECKPOINT_VERSION,
  parseCheckpointState,
  type CheckpointState,
  type Phase1CheckpointState,
  type RlCheckpointState,
} from '../train/checkpoint-schema.js';

/** How checkpoint files are written (node:fs/promises' writeFile by default; tests inject failures such as ENOSPC). */
export type WriteFileFn = (path: string, data: Uint8Array | string) => Promise<void>;

export async function saveCheckpoint(
  dir: string,
  model: Qwen2,
  opt: AdamW | null,
  state: CheckpointState,
  io: { writeFile?: WriteFileFn } = {},
): Promise<void> {
  const fs = await import('node:fs/promises');
  const tmp = `${dir}.new`;
  const write = io.writeFile ?? ((path: string, data: Uint8Array | string) => fs.writeFile(path, data));
  let file = tmp;
  try {
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.mkdir(tmp, { recursive: true });
    const params = await model.exportTensors();
    const tensors = [...params].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data }));
    await write((file = `${tmp}/model.safetensors`), writeSafetensors(tensors, { format: 'pt' }));
    await write((file = `${tmp}/config.json`), JSON.stringify(model.config, null, 2));
    if (opt) {
      const os = await opt.exportState();
      await write(
        (file = `${tmp}/optimizer.safetensors`),
        writeSafetensors(
          [...os.tensors].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: [data.length], data })),
          { step: String(os.step) },
        ),
      );
    }
    await write((file = `${tmp}/state.json`), JSON.stringify(state));
  } catch (e) {
    // a partial checkpoint is worse than none: remove it, leave the previous one where it is
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
    const prev = (await sourceExists(`${dir}/state.json`)) ? `; the previous checkpoint in ${dir} is unchanged` : '';
    throw new Error(`cannot write checkpoint file ${file}: ${(e as Error).message}${prev}`);
  }
  const old = `${dir}.old`;
  await fs.rm(old, { recursive: true, force: true });
  if (await sourceExists(dir)) await fs.rename(dir, old);
  await fs.rename(tmp, dir);
  await fs.rm(old, { recursive: true, force: true });
}

/** The state.json of the checkpoint in `dir` (or of `dir.old`, left by a crash between the two renames), or null. */
export async function readCheckpointState(dir: string): Promise<{ dir: string; state: CheckpointState } | null> {
  for (const d of [dir, `${dir}.old`]) {
    const f = `${d}/state.json`;
    if (!(await sourceExists(f))) continue;
    return { dir: d, state: await readStateFile(f) };
  }
  return null;
}

/** Loads a checkpoint into an existing model (and optimizer); returns its state, or null if there is none. */
export async function loadCheckpoint(dir: string, model: Qwen2, opt: AdamW | null): Promise<CheckpointState | null> {
  let d = dir;
  if (!(await sourceExists(`${d}/state.json`))) {
    if (await sourceExists(`${dir}.old/state.json`)) d = `${dir}.old`;
    else return null;
  }
  const st = parseSafetensors(await readBytes(`${d}/model.safetensors`), `${d}/model.safetensors`);
  for (const [name, entry] of st.tensors) {
    const data = toFloat32(entry);
    assertFiniteTensor(name, `${d}/model.safetensors`, data);
    if (!model.params.has(name)) model.addParam(name, entry.shape, data);
    else {
      const p = model.param(name);
      if (p.size !== data.length)
        throw new Error(`${d}/model.safetensors: tensor '${name}' has ${data.length} elements, the model has ${p.size}`);
      model.be.upload(p, data);
    }
  }
  if (hasLatentTrunk(st.tensors.keys())) model.twoTrunk = true;
  const state = await readStateFile(`${d}/state.json`);
  if (opt && (await sourceExists(`${d}/optimizer.safetensors`))) {
    const os = parseSafetensors(await readBytes(`${d}/optimizer.safetensors`), `${d}/optimizer.safetensors`);
    const m = new Map<string, Float32Array>();
    for (const [name, entry] of os.tensors) m.set(name, toFloat32(entry));
    opt.importState(Number(os.metadata?.step ?? state.step), m);
  }
  return state;
}

/** state.json, parsed and checked against the schema (older versions migrated; a clear error names file and version). */
async function readStateFile(f: string): Promise<CheckpointState> {
  let json: unknown;
  try {
    json = JSON.parse(await readText(f));
  } catch (e) {
    throw new Error(`${f}: ${(e as Error).message}`);
  }
  return parseCheckpointState(json, f);
}
