// Ctrl-C for the training loops (phase 1 and RL, every runtime and wrapper).
//
// A terminal's Ctrl-C sends SIGINT to the whole foreground process group: with `npx tsx examples/train.ts` that is
// npm, the tsx wrapper and the node process that trains. The tsx wrapper (tsx 4, `relaySignals` in its cli) waits
// 30 ms for the child to *report* that it received the signal (tsx's preflight prepends a hidden SIGINT listener in
// the child that sends a message over its IPC pipe); if no report comes it sends SIGINT itself, waits 30 ms more,
// then SIGKILLs the child. A listener only runs when the event loop turns, so a loop that computes for longer than
// that between turns is killed with nothing saved. Hence two things here:
//  - `yieldToEventLoop()`: the loops call it between sequences, so pending signals are handled (and reported to
//    such wrappers) within one forward+backward;
//  - one handler per run, installed before the model loads: the first SIGINT asks the loop to stop at the next step
//    boundary; repeats within `sameCtrlCMs` are the same keypress delivered again by a wrapper and are ignored;
//    a later one while a checkpoint is being written says so and waits for it; a later one otherwise exits 130 at
//    once (the last checkpoint on disk is whole: checkpoints are written beside it and renamed into place).

import { DecodeInterrupted } from '../generation/decode.js';

type Proc = { on?: (e: string, f: () => void) => unknown; off?: (e: string, f: () => void) => unknown; exit?: (code: number) => never };
const proc = (): Proc | undefined => (globalThis as { process?: Proc }).process;

/**
 * Lets the event loop run once (signal handlers, I/O): setImmediate where it exists (Node, Bun, Deno 2). Browsers
 * have no signals to wait for, and a nested setTimeout(0) is clamped to 4 ms, so there it only resolves.
 */
export function yieldToEventLoop(): Promise<void> {
  const si = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;
  if (si) return new Promise((resolve) => si(resolve));
  if (proc()?.on) return new Promise((resolve) => setTimeout(resolve, 0));
  return Promise.resolve();
}

export interface StopSignal {
  /** True once Ctrl-C was pressed: stop at the next step boundary. */
  readonly requested: boolean;
  /** Runs `save` (a checkpoint write) so that a Ctrl-C during it waits for it instead of exiting. */
  guardSave<T>(save: () => Promise<T>): Promise<T>;
  /** Removes the handler (after the run, so a later Ctrl-C behaves normally). */
  dispose(): void;
}

export interface StopSignalOptions {
  /** What the first Ctrl-C prints (default: finishing this step and saving a checkpoint). */
  message?: string;
  log?: (line: string) => void;
  /** Where checkpoints go, for the messages. */
  checkpointDir?: string;
  /** SIGINTs within this many ms of the first are the same keypress relayed by a wrapper (npx, tsx). */
  sameCtrlCMs?: number;
  /** Exit function (tests); default process.exit. */
  exit?: (code: number) => void;
}

/** Installs the SIGINT handler for one training run (a no-op object where there is no `process`, e.g. browsers). */
export function installStopSignal(o: StopSignalOptions = {}): StopSignal {
  const p = proc();
  const log = o.log ?? ((l: string) => console.error(l));
  const exit = o.exit ?? ((code: number) => p?.exit?.(code));
  const where = o.checkpointDir ?? 'the checkpoint directory';
  let requestedAt = -1;
  let saving = 0;
  const onSigint = () => {
    const now = performance.now();
    if (requestedAt < 0) {
      requestedAt = now;
      log(`\n${o.message ?? 'Ctrl-C: finishing this step and saving a checkpoint (Ctrl-C again to quit at once)'}`);
      return;
    }
    if (now - requestedAt < (o.sameCtrlCMs ?? 500)) return;
    if (saving > 0) {
      log(
        `Ctrl-C: a checkpoint is being written to ${where}; waiting for it to finish (kill -9 now would still leave the previous checkpoint whole)`,
      );
      return;
    }
    log(`Ctrl-C again: quitting without saving; ${where} holds the last checkpoint written`);
    exit(130);
  };
  p?.on?.('SIGINT', onSigint);
  return {
    get requested() {
      return requestedAt >= 0;
    },
    async guardSave<T>(save: () => Promise<T>): Promise<T> {
      saving++;
      try {
        return await save();
      } finally {
        saving--;
      }
    },
    dispose() {
      p?.off?.('SIGINT', onSigint);
    },
  };
}

/** Thrown by an evaluation that saw a stop request between two answers; the training loops catch it. */
export class EvalInterrupted extends Error {
  constructor() {
    super('evaluation interrupted by Ctrl-C');
  }
}

/**
 * An evaluation's batched decode, stoppable inside it: `decode` gets a DecodeOptions.interrupt that lets the event
 * loop turn (where the SIGINT handler runs) and then asks `shouldStop`; the stop surfaces as EvalInterrupted.
 */
export async function interruptibleDecode<T>(
  shouldStop: (() => boolean) | undefined,
  decode: (interrupt: (() => Promise<boolean>) | undefined) => Promise<T>,
): Promise<T> {
  const interrupt = shouldStop
    ? async () => {
        await yieldToEventLoop();
        return shouldStop();
      }
    : undefined;
  try {
    return await decode(interrupt);
  } catch (e) {
    throw e instanceof DecodeInterrupted ? new EvalInterrupted() : e;
  }
}
