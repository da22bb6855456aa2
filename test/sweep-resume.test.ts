// `latentlm sweep` with the real train command: a sweep killed (SIGKILL to its whole process group, as a crash or
// a lost terminal would) after its first cell finished resumes without redoing that cell, and completes the other.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// two tiny cells (a few steps, 2 evaluation rows, 2 graded problems), one at a time so the kill lands between them
const sweepArgs = (out: string) => [
  'sweep',
  '--conditions',
  'none,latent',
  '--seeds',
  '0',
  '--steps',
  '3',
  '--gen-rows',
  '2',
  '--jobs',
  '1',
  '--out',
  out,
  '--',
  '--eval-every',
  '0',
  '--eval-rows',
  '2',
  '--batch',
  '2',
];

/** `node --import tsx src/cli.ts ...args` (what `npx tsx src/cli.ts` does), to its exit. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('latentlm sweep', () => {
  it('--help, --dry-run, and clear errors for bad flags and data', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'latentlm-sweep-cli-')), 'sweep');
    const [help, dry, badCond, badData, badFlag] = await Promise.all([
      cli(['sweep', '--help']),
      cli(['sweep', '--dry-run', '--conditions', 'none,latent,fast=--lr 2e-3', '--seeds', '0-1', '--out', out, '--', '--batch', '4']),
      cli(['sweep', '--conditions', 'none,nope']),
      cli(['sweep', '--data', join(out, 'missing'), '--out', out]),
      cli(['sweep', '--out', out, '--', '--seed', '3']),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^latentlm sweep /);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^none-k0-s1 +new +train --latents 0 --seed 1 --steps 240 --gen-rows 200 --batch 4 --out /m);
    expect(dry.stdout).toMatch(/^fast-k2-s0 +new +train --lr 2e-3 --latents 2 --seed 0 /m);
    expect(dry.stdout).toMatch(/6 cells into/);
    expect(() => statSync(out)).toThrow(); // a dry run writes nothing
    expect(badCond.code).toBe(2);
    expect(badCond.stderr).toMatch(/unknown condition 'nope'/);
    expect(badData.code).toBe(1);
    expect(badData.stderr).toMatch(/--data .*missing: no train\.jsonl there/);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--seed is set by the sweep itself/);
  });

  it('a killed sweep resumes without redoing finished cells', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'latentlm-sweep-kill-')), 'sweep');
    const first = join(out, 'none-k0-s0', 'summary.json'),
      second = join(out, 'latent-k2-s0', 'summary.json');

    // detached: its own process group, so one kill reaches the sweep and the train child it is running
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...sweepArgs(out)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const killGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    let stdout = '',
      stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, signal) => res(signal)));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (d) => {
          stdout += d;
          if (/\[1\/2\] none-k0-s0 done/.test(stdout)) resolve();
        });
        child.on('exit', (code) => reject(new Error(`sweep exited (${code}) before its first cell finished:\n${stdout}\n${stderr}`)));
      });
      // and the second cell has started training (its log has the run's header line)
      const log2 = join(out, 'latent-k2-s0', 'train.log');
      while (!(existsSync(log2) && /^# /m.test(readFileSync(log2, 'utf8')))) {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`sweep exited before its second cell started:\n${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      killGroup(); // also when the wait failed: a detached group would outlive the test
    }
    expect(await exited).toBe('SIGKILL');
    const kept = readFileSync(first, 'utf8'),
      keptMtime = statSync(first).mtimeMs;
    expect(() => statSync(second)).toThrow(); // the second cell was still training

    const rerun = await cli(sweepArgs(out));
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/none-k0-s0 already done/);
    expect(rerun.stdout).toMatch(/latent-k2-s0 done in/);
    // the finished cell is untouched: same bytes, same mtime, and its train log holds one run
    expect(readFileSync(first, 'utf8')).toBe(kept);
    expect(statSync(first).mtimeMs).toBe(keptMtime);
    expect(readFileSync(join(out, 'none-k0-s0', 'train.log'), 'utf8').match(/^# /gm)).toHaveLength(1);
    // the other cell ran twice (killed, then again) and is complete now
    expect(readFileSync(join(out, 'latent-k2-s0', 'train.log'), 'utf8').match(/^# /gm)).toHaveLength(2);
    const done = JSON.parse(readFileSync(second, 'utf8'));
    expect(done.steps).toBe(3);
    // what the table needs from the final evaluation: how many problems were graded, positions and latents per answer
    expect(done.final.accuracyRows).toBe(2);
    expect(done.final.latentsPerAnswer).toBeGreaterThanOrEqual(0);
    expect(done.final.positionsPerAnswer).toBeGreaterThan(done.final.latentsPerAnswer);
    expect(JSON.parse(kept).final.latentsPerAnswer).toBe(0); // the k = 0 cell opens no latent span
    const json = JSON.parse(readFileSync(join(out, 'table.json'), 'utf8'));
    expect(json.rows.map((r: { accuracyPooled: { n: number } }) => r.accuracyPooled.n)).toEqual([2, 2]);
    const table = readFileSync(join(out, 'table.md'), 'utf8');
    expect(table).toMatch(/^\| none \| 0 \|/m);
    expect(table).toMatch(/^\| latent k=2 \| 0 \|/m);
  });
});
