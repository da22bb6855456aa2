// Resume tests compare a model trained straight with one that was saved and restored part-way: every parameter must
// match bit for bit, each named in the failure.
import { expect } from 'vitest';
import type { Qwen2 } from '../src/model/qwen2.js';

/** Every tensor of `want` equals the tensor of the same name in `got`, exactly. */
export async function expectSameWeights(want: Qwen2, got: Qwen2): Promise<void> {
  const wa = await want.exportTensors(),
    wb = await got.exportTensors();
  for (const [n, t] of wa) expect(Array.from(wb.get(n)!.data), n).toEqual(Array.from(t.data));
}
