// Training/eval progress reporting that behaves well everywhere:
//  - interactive terminal (stdout is a TTY in Node/Bun/Deno): a live bar from `cli-progress` (step/total, ETA, fields);
//  - logs, CI, pipes: plain lines every `everySeconds` or every `everySteps` steps, e.g.
//      "train step 40/200 loss=2.310 tok/s=1234 eta=1m20s"
//    (a redrawn bar would fill log files with carriage returns);
//  - browser (no process): nothing is printed, `onUpdate` receives each update for the page to render.
// cli-progress is imported dynamically, and only in bar mode, so browser bundles never pull it (or node:readline) in.

export type ProgressFields = Record<string, number | string>;

export interface ProgressEvent {
  step: number;
  total: number;
  fields: ProgressFields;
  /** Seconds since createProgress. */
  elapsedS: number;
  /** Estimated seconds left, or null before there is a rate to extrapolate. */
  etaS: number | null;
}

/** Anything with write(); process.stdout, a file stream, or a test's collector. */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  total: number;
  label?: string;
  /** Where bar/lines go. Default process.stdout when there is one. */
  stream?: ProgressStream;
  /** 'auto' (default): bar on a TTY, lines on other streams, callback-only without process. */
  mode?: 'auto' | 'bar' | 'lines' | 'callback';
  /** Lines mode: print at least this often (seconds). Default 10. */
  everySeconds?: number;
  /** Lines mode: print every this many steps. Default total/10 (at least 1). */
  everySteps?: number;
  /** Step the run starts (or resumes) from, so the ETA of a resumed run uses only this run's speed. Default 0. */
  startStep?: number;
  /** Called on every update and on done(), in every mode. */
  onUpdate?: (e: ProgressEvent) => void;
  /** Clock in milliseconds (injectable for tests). Default performance.now / Date.now. */
  now?: () => number;
}

export interface Progress {
  update(step: number, fields?: ProgressFields): void;
  /** Final line / stops the bar. Idempotent. */
  done(fields?: ProgressFields): void;
  /** The mode actually used. */
  readonly mode: 'bar' | 'lines' | 'callback';
}

/** A field value for humans: 4 significant digits below 100, integers from 1000 up; "2.31" -> "2.310". */
export function formatField(v: number | string): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return String(Math.round(v));
  if (a >= 100) return v.toFixed(1);
  if (a < 1e-3) return v.toExponential(3);
  return v.toPrecision(4);
}

/** "45s", "3m05s", "2h01m". */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const t = Math.round(s);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
}

function formatFields(fields: ProgressFields): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${formatField(v)}`)
    .join(' ');
}

function defaultClock(): () => number {
  const perf = (globalThis as { performance?: { now(): number } }).performance;
  return perf ? () => perf.now() : () => Date.now();
}

function processStdout(): ProgressStream | undefined {
  const proc = (globalThis as { process?: { stdout?: ProgressStream } }).process;
  return proc?.stdout && typeof proc.stdout.write === 'function' ? proc.stdout : undefined;
}

export async function createProgress(opts: ProgressOptions): Promise<Progress> {
  const total = opts.total;
  if (!(total >= 0) || !Number.isFinite(total)) throw new Error(`createProgress: total must be a finite number >= 0, got ${total}`);
  const label = opts.label ?? '';
  const now = opts.now ?? defaultClock();
  const t0 = now();
  const startStep = opts.startStep ?? 0;
  const stream = opts.stream ?? processStdout();
  let mode: Progress['mode'];
  if (!opts.mode || opts.mode === 'auto') mode = !stream ? 'callback' : stream.isTTY ? 'bar' : 'lines';
  else mode = opts.mode;
  if (mode !== 'callback' && !stream) mode = 'callback';

  const everySeconds = opts.everySeconds ?? 10;
  const everySteps = Math.max(1, opts.everySteps ?? Math.ceil(total / 10));
  let lastStep = startStep;
  let lastFields: ProgressFields = {};
  let finished = false;

  const event = (step: number, fields: ProgressFields): ProgressEvent => {
    const elapsedS = (now() - t0) / 1000;
    const done = step - startStep;
    const etaS = done > 0 && elapsedS > 0 ? (elapsedS / done) * Math.max(0, total - step) : null;
    return { step, total, fields, elapsedS, etaS };
  };

  // What every mode does alike: no output after done, and the last step and fields kept for done (which may omit
  // them). `show` is the mode's own output, called with that state already updated.
  const tracked = (show: { update(step: number, fields: ProgressFields): void; done(fields?: ProgressFields): void }): Progress => ({
    mode,
    update(step, fields = {}) {
      if (finished) return;
      lastStep = step;
      lastFields = fields;
      show.update(step, fields);
    },
    done(fields) {
      if (finished) return;
      finished = true;
      if (fields) lastFields = fields;
      show.done(fields);
    },
  });

  // ---- bar mode (interactive terminal) ----
  if (mode === 'bar') {
    // The specifier is a variable (and marked ignore for Vite/webpack) so app bundlers don't pull cli-progress and its
    // node:readline use into browser chunks; bar mode never runs there anyway (no TTY).
    const specifier = 'cli-progress';
    const mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as typeof import('cli-progress') & {
      default?: typeof import('cli-progress');
    };
    const cp = mod.default ?? mod;
    const bar = new cp.SingleBar(
      {
        stream: stream as NodeJS.WritableStream,
        format: `${label ? label + ' ' : ''}[{bar}] {value}/{total} | ETA {eta_formatted} | {fields}`,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
        fps: 10,
      },
      cp.Presets.shades_classic,
    );
    bar.start(total, startStep, { fields: '' });
    return tracked({
      update(step, fields) {
        bar.update(step, { fields: formatFields(fields) });
        opts.onUpdate?.(event(step, fields));
      },
      done() {
        bar.update(lastStep, { fields: formatFields(lastFields) });
        bar.stop();
        opts.onUpdate?.(event(lastStep, lastFields));
      },
    });
  }

  // ---- lines mode (logs/pipes) and callback mode (browser) ----
  let printedStep: number | null = null;
  let printedAt = t0;
  const line = (step: number, fields: ProgressFields, eta: number | null) => {
    const parts = [`${label ? label + ' ' : ''}step ${step}/${total}`];
    const f = formatFields(fields);
    if (f) parts.push(f);
    if (eta !== null && step < total) parts.push(`eta=${formatDuration(eta)}`);
    return parts.join(' ') + '\n';
  };
  return tracked({
    update(step, fields) {
      const e = event(step, fields);
      opts.onUpdate?.(e);
      if (mode !== 'lines') return;
      const t = now();
      const due = printedStep === null || step - printedStep >= everySteps || (t - printedAt) / 1000 >= everySeconds || step >= total;
      if (!due) return;
      stream!.write(line(step, fields, e.etaS));
      printedStep = step;
      printedAt = t;
    },
    done(fields) {
      const e = event(lastStep, lastFields);
      opts.onUpdate?.(e);
      if (mode !== 'lines') return;
      // Always end with the final state, then the total time.
      if (printedStep !== lastStep || fields) stream!.write(line(lastStep, lastFields, null));
      stream!.write(`${label ? label + ' ' : ''}done in ${formatDuration(e.elapsedS)}\n`);
    },
  });
}
