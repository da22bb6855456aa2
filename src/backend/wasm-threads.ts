// A pool of worker threads for the WASM backend: every worker instantiates the same compiled kernel module over the
// backend's one shared WebAssembly.Memory, so a kernel call is just "run export F with these arguments, part p of
// nth". The calling thread runs parts too and returns when every part is done, so ops stay synchronous.
//
// Why this shape: the backend API is synchronous (one op after another), so a dispatch must be cheap: arguments go
// through a small SharedArrayBuffer (no postMessage per op), workers spin briefly on a generation counter before
// sleeping in Atomics.wait (back-to-back ops of a training step never pay a futex wake-up), and the caller spins,
// then waits, on a pending counter. An op is cut into `parts` parts (a fixed multiple of the threads) that whoever
// is awake claims from a shared counter, the caller included: a worker the OS has not scheduled yet (a busy
// machine) delays nothing, the caller just does its part too, and with several parts per thread a thread whose
// vCPU the host holds up in the middle of an op costs only the part it is on. The count is fixed for the pool's
// life: a worker's last claim of one op can race with the posting of the next, and a claim is only safe to
// interpret against a part count that cannot have changed in between. How a kernel splits its work is decided
// inside the kernel (assembly/*.ts, partStart): only outputs are split, never a sum, and a part is computed the
// same way by any thread, so results do not depend on the thread count or on who ran which part.
//
// Workers: Node's worker_threads (eval'd source), or a module Worker from a Blob URL where `Worker` is a global
// (Deno, Bun, browsers). The worker source is a string here, so bundles need no worker file on disk.

/** Int32 slots of the control block: generation, parts pending, op, argument count, failure flag, next part. */
const [GEN, PENDING, OP, NARGS, FAILED, NEXT] = [0, 1, 2, 3, 4, 5];
/** Byte offset of the Float64 argument slots in the control block. */
const ARGS_AT = 64;
const MAX_ARGS = 32;
/** Spin iterations before sleeping: ~0.1 ms, longer than the gap between the ops of one step, far shorter than a step. */
const SPIN = 20000;

/** The worker's code: `port` is how it talks to its parent (worker_threads' parentPort, or null for a Web Worker's self). */
const workerSource = (port: 'node' | 'web') => `
const nodePort = ${port === 'node' ? "require('node:worker_threads').parentPort" : 'null'};
const post = (m) => (nodePort ? nodePort.postMessage(m) : self.postMessage(m));
const start = (d) => {
  let ctl, fns;
  try {
    const memory = d.memory;
    const inst = new WebAssembly.Instance(d.module, { env: { memory, abort() { throw new Error('wasm abort'); } } });
    fns = d.names.map((n) => inst.exports[n]);
    ctl = new Int32Array(d.ctl);
  } catch (e) {
    post({ error: String(e && e.message || e) });
    return;
  }
  const args = new Float64Array(d.ctl, ${ARGS_AT}, ${MAX_ARGS});
  const nth = d.parts, spin = d.spin;
  // Read before saying ready: the first op may be posted the moment the caller hears it.
  let seen = Atomics.load(ctl, ${GEN});
  post({ ready: true });
  for (;;) {
    let gen;
    for (let i = 0; (gen = Atomics.load(ctl, ${GEN})) === seen; i++) if (i >= spin) Atomics.wait(ctl, ${GEN}, seen);
    seen = gen;
    if (Atomics.load(ctl, ${OP}) < 0) break;
    // Claim parts until none is left. The op and its arguments are read after the claim: the caller writes them
    // before it resets the counter, so a claimed part always belongs to the op now posted.
    for (let part; (part = Atomics.add(ctl, ${NEXT}, 1)) < nth; ) {
      try {
        fns[Atomics.load(ctl, ${OP})](...args.subarray(0, Atomics.load(ctl, ${NARGS})), part, nth);
      } catch (e) {
        Atomics.store(ctl, ${FAILED}, 1);
      }
      if (Atomics.sub(ctl, ${PENDING}, 1) === 1) Atomics.notify(ctl, ${PENDING});
    }
  }
  if (!nodePort) self.close();
};
if (nodePort) nodePort.once('message', start);
else self.onmessage = (e) => { self.onmessage = null; start(e.data); };
`;

interface WorkerHandle {
  terminate(): void;
}

/**
 * Starts one worker and resolves once it has instantiated the module. A Web Worker where there is no
 * worker_threads (browsers) or where a Web Worker can be unref'd (Bun); else worker_threads (Node, and Deno, whose
 * Web Workers would keep the process alive after the script ends: they have no unref).
 */
async function startWorker(init: Record<string, unknown>): Promise<WorkerHandle> {
  const WebWorker = (globalThis as { Worker?: { new (url: string, o?: { type?: string }): WebWorkerLike; prototype: { unref?: unknown } } })
    .Worker;
  const hasNodeWorkers = typeof process !== 'undefined' && !!process.versions?.node;
  if (typeof WebWorker === 'function' && (!hasNodeWorkers || typeof WebWorker.prototype.unref === 'function')) {
    const url = URL.createObjectURL(new Blob([workerSource('web')], { type: 'text/javascript' }));
    const w = new WebWorker(url, { type: 'module' });
    try {
      await new Promise<void>((resolve, reject) => {
        w.onmessage = (e) => ((e.data as { error?: string }).error ? reject(new Error((e.data as { error: string }).error)) : resolve());
        w.onerror = (e) => reject(new Error((e as { message?: string }).message ?? 'worker error'));
        w.postMessage(init);
      });
    } catch (e) {
      w.terminate();
      throw e;
    } finally {
      URL.revokeObjectURL(url);
    }
    w.onmessage = null;
    w.unref?.(); // Bun: an idle pool must not keep the process alive
    return { terminate: () => w.terminate() };
  }
  const { Worker } = await import('node:worker_threads');
  const w = new Worker(workerSource('node'), { eval: true });
  try {
    await new Promise<void>((resolve, reject) => {
      w.once('message', (m: { error?: string }) => (m.error ? reject(new Error(m.error)) : resolve()));
      w.once('error', reject);
      w.postMessage(init);
    });
  } catch (e) {
    void w.terminate();
    throw e;
  }
  w.removeAllListeners('error');
  // An idle pool must not keep the process alive (a script that never calls destroy() still exits).
  w.unref();
  return { terminate: () => void w.terminate() };
}

interface WebWorkerLike {
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: unknown) => void) | null;
  postMessage(m: unknown): void;
  terminate(): void;
  unref?(): void;
}

type Kernel = (...args: number[]) => unknown;

export class WasmThreadPool {
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly index = new Map<string, number>();
  private destroyed = false;

  private constructor(
    readonly threads: number,
    /** Parts every op is cut into (the kernels' nth; the per-part scratch is sized for it). */
    readonly parts: number,
    private readonly workers: WorkerHandle[],
    ctlBuf: SharedArrayBuffer,
    names: string[],
    private readonly local: Record<string, Kernel>,
    /** Atomics.wait is forbidden on a browser's main thread: there the caller only spins. */
    private readonly canWait: boolean,
  ) {
    this.ctl = new Int32Array(ctlBuf, 0, ARGS_AT / 4);
    this.args = new Float64Array(ctlBuf, ARGS_AT, MAX_ARGS);
    names.forEach((n, i) => this.index.set(n, i));
  }

  /**
   * Starts threads - 1 workers over `memory` (shared) running `module`'s exports `names`; `local` is the calling
   * thread's own instance, which takes parts too. Every op runs as `parts` parts (default: one per thread). Rejects
   * (after stopping any started worker) if a worker cannot start.
   */
  static async create(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    local: WebAssembly.Exports,
    names: string[],
    threads: number,
    parts = threads,
  ): Promise<WasmThreadPool> {
    const ctlBuf = new SharedArrayBuffer(ARGS_AT + MAX_ARGS * 8);
    const started = await Promise.allSettled(
      Array.from({ length: threads - 1 }, () => startWorker({ module, memory, ctl: ctlBuf, names, parts, spin: SPIN })),
    );
    const failed = started.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) {
      for (const s of started) if (s.status === 'fulfilled') s.value.terminate();
      throw new Error(`cannot start WASM worker threads: ${(failed.reason as Error)?.message ?? failed.reason}`);
    }
    const workers = started.map((s) => (s as PromiseFulfilledResult<WorkerHandle>).value);
    let canWait = true;
    try {
      Atomics.wait(new Int32Array(ctlBuf), FAILED, 1, 0);
    } catch {
      canWait = false;
    }
    return new WasmThreadPool(threads, parts, workers, ctlBuf, names, local as Record<string, Kernel>, canWait);
  }

  /** Runs export `name` as `parts` parts (this thread takes parts too) and returns when all parts are done. */
  run(name: string, args: number[]): void {
    const op = this.index.get(name);
    if (op === undefined || this.destroyed) throw new Error(`WasmThreadPool: ${this.destroyed ? 'destroyed' : `unknown kernel ${name}`}`);
    if (args.length > MAX_ARGS) throw new Error(`WasmThreadPool: ${name} has ${args.length} arguments (max ${MAX_ARGS})`);
    const ctl = this.ctl;
    this.args.set(args);
    Atomics.store(ctl, OP, op);
    Atomics.store(ctl, NARGS, args.length);
    Atomics.store(ctl, PENDING, this.parts);
    Atomics.store(ctl, NEXT, 0);
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
    let localError: unknown;
    for (let part: number; (part = Atomics.add(ctl, NEXT, 1)) < this.parts; ) {
      try {
        this.local[name](...args, part, this.parts);
      } catch (e) {
        localError ??= e;
      }
      Atomics.sub(ctl, PENDING, 1);
    }
    for (let i = 0, p: number; (p = Atomics.load(ctl, PENDING)) !== 0; i++) if (i >= SPIN && this.canWait) Atomics.wait(ctl, PENDING, p);
    if (localError) throw localError;
    if (Atomics.exchange(ctl, FAILED, 0)) throw new Error(`WasmThreadPool: kernel ${name} failed in a worker thread`);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    Atomics.store(this.ctl, OP, -1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) w.terminate();
  }
}
