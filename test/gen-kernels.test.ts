// scripts/gen/kernels.mjs: the `//#include name(ARG = expr)` snippets it expands into the embedded WGSL.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs build script without type declarations
import { expandIncludes } from '../scripts/gen/kernels.mjs';
import { kernels } from '../src/generated/kernels.js';

describe('WGSL //#include snippets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latentlm-inc-'));
  writeFileSync(join(dir, 'load.wgsl'), 'let $NAME = f($FROM, g(1, 2));\n');
  writeFileSync(join(dir, 'outer.wgsl'), '// outer\n//#include load(NAME = x, FROM = a + b)\n');
  writeFileSync(join(dir, 'loop.wgsl'), '//#include loop\n');

  it('substitutes each argument (parenthesised), keeps the indentation, and nests', () => {
    expect(expandIncludes('fn main() {\n  //#include load(NAME = v, FROM = min(i, 3u))\n}\n', dir, 't')).toBe(
      'fn main() {\n  let (v) = f((min(i, 3u)), g(1, 2));\n}\n',
    );
    expect(expandIncludes('    //#include outer\n', dir, 't')).toBe('    // outer\n    let (x) = f((a + b), g(1, 2));\n');
  });

  it('refuses an unknown snippet, a missing or unused argument, and cycles', () => {
    expect(() => expandIncludes('//#include nothing\n', dir, 't')).toThrow(/no kernels\/include\/nothing.wgsl/);
    expect(() => expandIncludes('//#include load(NAME = x)\n', dir, 't')).toThrow(/needs argument FROM/);
    expect(() => expandIncludes('//#include load(NAME = x, FROM = y, EXTRA = z)\n', dir, 't')).toThrow(/unused argument EXTRA/);
    expect(() => expandIncludes('//#include loop\n', dir, 't')).toThrow(/include cycle loop -> loop/);
  });

  it('the embedded kernels are expanded: no //#include line or $ARG survives', () => {
    for (const [name, src] of Object.entries(kernels)) {
      expect(src, name).not.toMatch(/\/\/#include/);
      expect(src.replace(/\$(LOADS|BODY|STORES)\b/g, ''), name).not.toMatch(/\$[A-Z]/);
    }
    expect(kernels.attention).toContain('Ks[e] = kv;');
  });
});
