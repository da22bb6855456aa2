// The dependency-layer check (scripts/layers.ts, where the layers are defined): the tree passes it, and the check
// itself sees every import form and reports what it must.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layerOf, sources, violations } from '../scripts/layers.ts';

describe('dependency layers', () => {
  it('no module in src/ imports from a layer above its own', () => {
    const files = sources(join(import.meta.dirname, '../src'));
    expect(files.size).toBeGreaterThan(50);
    expect(violations(files)).toEqual([]);
  });

  it('the check sees every import form and reports upward ones (and unplaced files)', () => {
    const files = new Map([
      ['model/a.ts', "import { x } from '../generation/g.js';\nexport * from '../data/rng.js';"],
      ['model/b.ts', "import type { T } from '../latent/t.js';\nconst m = await import('../cli/c.js');\ntype U = import('../rl/u.js').U;"],
      ['model/c.ts', "// import { x } from '../cli/c.js' (only a comment)\nimport '../backend/side-effect.js';"],
      ['stray.ts', "import { y } from './data/rng.js';"],
    ]);
    const bad = violations(files);
    expect(bad).toHaveLength(5);
    expect(bad[0]).toBe("model/a.ts imports generation/g.ts: layer 'model' must not depend on 'generation' above it");
    expect(bad.slice(1, 4).map((b) => b.split(' ')[2].replace(/:$/, ''))).toEqual(['latent/t.ts', 'cli/c.ts', 'rl/u.ts']);
    expect(bad[4]).toMatch(/^stray\.ts: in no layer/);
    // io < text < data < backend: the bottom three layers in their order
    expect(layerOf('io/source.ts')).toBeLessThan(layerOf('text/tokenizer.ts'));
    expect(layerOf('text/tokenizer.ts')).toBeLessThan(layerOf('data/rng.ts'));
    expect(layerOf('data/rng.ts')).toBeLessThan(layerOf('backend/ops.ts'));
    expect(layerOf('generated/x.ts')).toBe(0);
  });
});
