// The parts every PyTorch-reference fixture (scripts/reference/make_fixtures.py) shares: the model's parameters, the
// case's ids/labels/latent mask and the reference tensors ("ref." names), read from one .safetensors file. The
// test that reads a fixture adds what only its fixtures carry (from `meta`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kind, type Qwen2Config } from '../src/model/qwen2.js';
import { parseSafetensors, toFloat32 } from '../src/io/safetensors.js';

export interface FixtureCase {
  config: Qwen2Config;
  /** the file's metadata strings (JSON), for the fields one kind of fixture adds */
  meta: Record<string, string>;
  params: Map<string, Float32Array>;
  B: number;
  T: number;
  ids: Int32Array;
  labels: Int32Array;
  /** case.latent_mask as 0/1 */
  latent: Int32Array;
  ref: Map<string, Float32Array>;
}

export function readFixtureCase(dir: string, file: string): FixtureCase {
  const st = parseSafetensors(new Uint8Array(readFileSync(join(dir, file))), file);
  const meta = st.metadata as Record<string, string>;
  const params = new Map<string, Float32Array>(),
    ref = new Map<string, Float32Array>();
  let ids!: Int32Array,
    labels!: Int32Array,
    latent!: Int32Array,
    B = 0,
    T = 0;
  for (const [name, e] of st.tensors) {
    if (name === 'case.ids') {
      ids = Int32Array.from(toFloat32(e));
      [B, T] = e.shape;
    } else if (name === 'case.labels') labels = Int32Array.from(toFloat32(e));
    else if (name === 'case.latent_mask') latent = Int32Array.from(toFloat32(e));
    else if (name.startsWith('ref.')) ref.set(name.slice(4), toFloat32(e));
    else params.set(name, toFloat32(e));
  }
  return { config: JSON.parse(meta.config), meta, params, B, T, ids, labels, latent, ref };
}

/** A latent mask as the model's position kinds. */
export const kindsOf = (latent: ArrayLike<number>): Uint8Array => Uint8Array.from(latent, (x) => (x ? Kind.Latent : Kind.Token));
