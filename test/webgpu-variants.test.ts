// The WebGPU kernel variants on Deno's WebGPU (wgpu on Mesa lavapipe/llvmpipe here): test/_webgpu-variants.ts run
// as a plain Deno script. This is where the f16 tiles are checked: Deno's adapter has `shader-f16`, Dawn's GLES
// adapter in Node does not. (Node's variants: test/backend-webgpu.test.ts runs the full conformance suite per family.)
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, run } from './_dist.js';

const DENO = join(ROOT, 'node_modules', '.bin', 'deno');
const haveDeno = existsSync(DENO);
if (!haveDeno) console.log(`[webgpu-variants] skipping: ${DENO} is not installed (npm ci)`);

describe.skipIf(!haveDeno)('webgpu kernel variants under Deno', () => {
  it('simple, tiled, tiled with split tensors and (where the adapter has shader-f16) f16 tiles match the CPU reference', async () => {
    let stdout = '', why = '';
    try {
      ({ stdout } = await run(DENO, ['run', '-A', 'test/_webgpu-variants.ts'], { cwd: ROOT, maxBuffer: 16 << 20 }));
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      stdout = err.stdout ?? '';
      why = `${err.message}\n${err.stderr ?? ''}`;
    }
    const line = stdout.split('\n').find((l) => l.startsWith('VARIANTS '));
    if (!line && /no WebGPU adapter|requestAdapter/.test(why)) {
      console.log(`[webgpu-variants] skipped: Deno has no WebGPU adapter here: ${why.split('\n')[0]}`);
      return;
    }
    expect(line, `no VARIANTS line:\n${stdout}\n${why}`).toBeDefined();
    const r = JSON.parse(line!.slice(9));
    console.log(`[webgpu-variants] deno: ${r.adapter.split(';')[0]}; features [${r.features}]; auto -> ${r.auto}; variants: ${Object.keys(r.variants).join(', ')}`);
    for (const [v, errs] of Object.entries(r.variants as Record<string, Record<string, number>>)) console.log(`[webgpu-variants]   ${v}: worst ${Math.max(...Object.values(errs)).toExponential(2)}`);
    expect(r.failures).toEqual([]);
    expect(Object.keys(r.variants)).toEqual(expect.arrayContaining(['simple', 'tiled', 'tiled, split at 1 KiB']));
    if (r.features.includes('shader-f16')) expect(Object.keys(r.variants)).toContain('tiled f16');
    expect(r.auto).toBe(/software adapter/.test(r.adapter) ? 'simple' : 'tiled');
  }, 300_000);
});
