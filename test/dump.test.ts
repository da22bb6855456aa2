// `latentlm dump` against `scripts/reference/qwen2_ref.py` on the same checkpoint and case: the by-hand parity
// workflow for people porting checkpoints, run end to end (skipped when /usr/bin/python3 has no torch).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dumpCommand } from '../src/cli/dump.js';
import { saveHfCheckpoint } from '../src/model/hf.js';
import { parseSafetensors, toFloat32 } from '../src/io/safetensors.js';
import { maxRelErr } from './_conformance.js';
import { demand } from './_require.js';

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
demand('torch', hasTorch, '/usr/bin/python3 cannot import torch');
if (!hasTorch) console.log('dump.test: /usr/bin/python3 with torch not found; skipping the live reference comparison');

describe.skipIf(!hasTorch)('dump vs the PyTorch reference CLI', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'latentlm-dump-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  it('agrees on logits, loss, hidden and every gradient (untied 7:1 GQA, BF16 checkpoint, latent chain)', async () => {
    const fx = parseSafetensors(new Uint8Array(readFileSync(join(__dirname, 'fixtures', 'gqa7_untied.safetensors'))), 'gqa7_untied');
    const config = JSON.parse(fx.metadata.config);
    const tensors = new Map<string, Float32Array>();
    for (const [n, e] of fx.tensors) if (!n.startsWith('case.') && !n.startsWith('ref.')) tensors.set(n, toFloat32(e));
    const dir = join(tmp, 'model');
    await saveHfCheckpoint(dir, config, tensors, { dtype: 'BF16' });
    const T = 9;
    const ids = Array.from({ length: T }, (_, i) => (i * 5 + 3) % config.vocab_size);
    const labels = ids.map((x, i) => (i === 3 || i === 4 ? -100 : x));
    writeFileSync(join(tmp, 'case.json'), JSON.stringify({ ids, labels, latent: [3, 4] }));
    expect(
      await dumpCommand.run(['--model', dir, '--case', join(tmp, 'case.json'), '--out', join(tmp, 'ours.safetensors'), '--backend', 'cpu']),
    ).toBe(0);
    execFileSync('/usr/bin/python3', [
      'scripts/reference/qwen2_ref.py',
      '--model',
      dir,
      '--case',
      join(tmp, 'case.json'),
      '--out',
      join(tmp, 'ref.safetensors'),
    ]);
    const ours = parseSafetensors(new Uint8Array(readFileSync(join(tmp, 'ours.safetensors'))), 'ours');
    const ref = parseSafetensors(new Uint8Array(readFileSync(join(tmp, 'ref.safetensors'))), 'ref');
    expect([...ours.tensors.keys()].sort()).toEqual([...ref.tensors.keys()].sort());
    for (const [name, e] of ref.tensors) expect(maxRelErr(toFloat32(ours.tensors.get(name)!), toFloat32(e)), name).toBeLessThan(1e-3);
  });
});
