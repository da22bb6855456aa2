// Warnings for a run that is going wrong while it still exits 0: the training loss far above where it started
// (a learning rate too high: `--lr 30` reaches loss ~1,700), or the held-out loss rising eval after eval.
// Warnings only: a short spike is normal, and the user decides whether to stop. Each kind is reported once.

export interface DivergenceOptions {
  /** Steps whose mean loss is the reference "start" (default 5). */
  startSteps?: number;
  /** Warn when a step's loss exceeds start x this factor (default 3). */
  factor?: number;
  /** Warn when the held-out loss rose this many evaluations in a row (default 3). */
  risingEvals?: number;
  warn: (message: string) => void;
}

export class DivergenceWatch {
  private start: number[] = [];
  private warnedLoss = false;
  private warnedEval = false;
  private lastEval?: number;
  private rises = 0;
  readonly warnings: string[] = [];
  private quiet = false;
  constructor(readonly o: DivergenceOptions) {}

  private warn(m: string) {
    this.warnings.push(m);
    if (!this.quiet) this.o.warn(m);
  }

  /** Feeds the records of the sessions before a resume without printing, so `warnings` covers the whole run. */
  replay(records: { type?: unknown; step?: unknown; loss?: unknown; testLoss?: unknown }[]): void {
    this.quiet = true;
    for (const r of records) {
      if (r.type === 'step') this.step(r.step as number, r.loss as number);
      else if (r.type === 'eval') this.eval(r.step as number, r.testLoss as number);
    }
    this.quiet = false;
  }

  step(step: number, loss: number): void {
    const n = this.o.startSteps ?? 5;
    if (this.start.length < n) {
      this.start.push(loss);
      return;
    }
    const ref = this.start.reduce((a, b) => a + b, 0) / this.start.length;
    const factor = this.o.factor ?? 3;
    if (!this.warnedLoss && loss > ref * factor) {
      this.warnedLoss = true;
      this.warn(
        `training loss ${loss.toFixed(3)} at step ${step} is ${(loss / ref).toFixed(1)}x its start (${ref.toFixed(3)}, mean of the first ${n} steps): the run is diverging; lower --lr`,
      );
    }
  }

  eval(step: number, testLoss: number): void {
    if (this.lastEval !== undefined) this.rises = testLoss > this.lastEval ? this.rises + 1 : 0;
    this.lastEval = testLoss;
    const n = this.o.risingEvals ?? 3;
    if (!this.warnedEval && this.rises >= n) {
      this.warnedEval = true;
      this.warn(`held-out loss rose ${n} evaluations in a row (now ${testLoss.toFixed(3)} at step ${step}): over-fitting or diverging`);
    }
  }
}
