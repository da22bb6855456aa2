// Node under the `tsx` CLI only (`npx tsx examples/train.ts`): runs the script again in a grandchild that trains,
// while this process only waits for it, so that Ctrl-C saves a checkpoint instead of killing the run.
//
// Why: the tsx CLI is a wrapper process that spawns node with its preflight (`--require .../tsx/dist/preflight.cjs`).
// On SIGINT the wrapper waits 30 ms for the child to report (over tsx's IPC pipe, from a listener the preflight
// prepends) that it got the signal too, re-sends it, waits 30 ms more, then SIGKILLs the child. A listener only runs
// when the event loop turns, and one forward+backward of even the default model keeps it busy for ~200 ms, so the
// training process is killed with nothing saved (issue 12). This process keeps its event loop idle: it reports at
// once, passes each SIGINT/SIGTERM on (the trainer treats the duplicate of one keypress as one Ctrl-C) and exits
// with the grandchild's code. The grandchild runs with the same loader flags; its preflight finds no tsx pipe for its
// parent, so no wrapper logic applies to it.
// Plain `node --import tsx`, Bun, Deno and the built CLI have no such wrapper: this returns undefined there.

const MARK = 'LATENTLM_TSX_RELAUNCHED';

type NodeProcess = typeof import('node:process');

function underTsxWrapper(p: NodeProcess): boolean {
  if (p.env[MARK] === '1') return false;
  return p.execArgv.some((a) => /tsx[\\/]dist[\\/]preflight\.cjs$/.test(a));
}

/**
 * Under the tsx CLI: runs this script (same argv, execArgv and environment) in a child and resolves to its exit code
 * (128 + signal number if it was killed). Elsewhere: resolves to undefined and the caller runs the job itself.
 */
export async function relaunchOutsideTsxWrapper(): Promise<number | undefined> {
  const p = (globalThis as { process?: NodeProcess }).process;
  if (!p?.execArgv || (globalThis as { Deno?: unknown }).Deno || (globalThis as { Bun?: unknown }).Bun || !underTsxWrapper(p))
    return undefined;
  const { spawn } = await import('node:child_process');
  const { constants } = await import('node:os');
  const child = spawn(p.execPath, [...p.execArgv, ...p.argv.slice(1)], { stdio: 'inherit', env: { ...p.env, [MARK]: '1' } });
  const forward = (sig: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  const onInt = forward('SIGINT'),
    onTerm = forward('SIGTERM');
  p.on('SIGINT', onInt);
  p.on('SIGTERM', onTerm);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
    });
  } finally {
    p.off('SIGINT', onInt);
    p.off('SIGTERM', onTerm);
  }
}
