// examples/pretrain.ts refuses bad flags with a message naming the flag or file and a non-zero exit (the pretraining
// itself takes minutes and is measured in the README, not here).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pretrain = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'examples/pretrain.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });

describe('examples/pretrain.ts flags', () => {
  it('--drill-share outside [0, 1] is a usage error', () => {
    const r = pretrain('--drill-share', '2');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--drill-share must be a number >= 0 and <= 1, got '2'/);
  });
  it('--init without a model there names the missing file', () => {
    const r = pretrain('--init', '/nonexistent-model-dir', '--steps', '1');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--init \/nonexistent-model-dir: .*\/nonexistent-model-dir\/vocab-map\.json/);
  }, 130_000);
  it('--help lists the drill and init flags', () => {
    const r = pretrain('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--drill-share/);
    expect(r.stdout).toMatch(/--init DIR/);
  });
});
