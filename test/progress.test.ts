import { describe, expect, it } from 'vitest';
import { createProgress, formatDuration, formatField, type ProgressEvent } from '../src/io/progress.ts';

// A non-TTY stream that records writes, and a manual clock (no timing assertions on the real clock).
function collector(isTTY = false) {
  const out: string[] = [];
  return {
    out,
    stream: {
      isTTY,
      write: (s: string) => {
        out.push(s);
        return true;
      },
    },
  };
}
function manualClock() {
  let t = 0;
  return {
    now: () => t,
    advance: (s: number) => {
      t += s * 1000;
    },
  };
}

describe('progress: plain-line mode', () => {
  it('is chosen for a non-TTY stream and prints step/total, fields and ETA', async () => {
    const { out, stream } = collector();
    const clock = manualClock();
    const p = await createProgress({ total: 200, label: 'train', stream, now: clock.now, everySteps: 40, everySeconds: 1e9 });
    expect(p.mode).toBe('lines');
    for (let step = 1; step <= 200; step++) {
      clock.advance(0.5); // 2 steps/s
      p.update(step, { loss: 2.31, 'tok/s': 1234 });
    }
    p.done();
    // First update, then every 40 steps, then the last step; then the "done" line.
    expect(out.map((l) => l.split(' ')[2])).toEqual(['1/200', '41/200', '81/200', '121/200', '161/200', '200/200', 'in']);
    expect(out[1]).toBe('train step 41/200 loss=2.310 tok/s=1234 eta=1m20s\n'); // 159 steps at 2/s = 79.5s
    expect(out[5]).toBe('train step 200/200 loss=2.310 tok/s=1234\n'); // no ETA at the end
    expect(out[6]).toBe('train done in 1m40s\n');
    expect(out.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
  });

  it('prints every N seconds when steps are slow', async () => {
    const { out, stream } = collector();
    const clock = manualClock();
    const p = await createProgress({ total: 1000, stream, now: clock.now, everySeconds: 10, everySteps: 1e9 });
    for (let step = 1; step <= 30; step++) {
      clock.advance(3);
      p.update(step, { loss: 1.5 });
    }
    // Printed at step 1 (t=3s), then whenever 10s have passed since the last line: steps 5, 9, 13, ... (every 12s).
    const steps = out.map((l) => Number(/step (\d+)\//.exec(l)![1]));
    expect(steps).toEqual([1, 5, 9, 13, 17, 21, 25, 29]);
    expect(out[0]).toBe('step 1/1000 loss=1.500 eta=49m57s\n');
  });

  it('done() writes the final state once, with fields passed to done()', async () => {
    const { out, stream } = collector();
    const clock = manualClock();
    const p = await createProgress({ total: 10, label: 'eval', stream, now: clock.now, everySteps: 100 });
    p.update(1, { acc: 0.5 });
    clock.advance(2);
    p.update(7, { acc: 0.75 });
    p.done({ acc: 0.8 });
    p.done(); // idempotent
    p.update(9, { acc: 1 }); // ignored after done
    expect(out).toEqual(['eval step 1/10 acc=0.5000\n', 'eval step 7/10 acc=0.8000\n', 'eval done in 2s\n']);
  });

  it('a resumed run estimates ETA from its own steps only', async () => {
    const { out, stream } = collector();
    const clock = manualClock();
    const p = await createProgress({ total: 1000, startStep: 900, stream, now: clock.now });
    clock.advance(10);
    p.update(910);
    expect(out[0]).toBe('step 910/1000 eta=1m30s\n');
  });
});

describe('progress: callback and bar modes', () => {
  it('calls onUpdate in every mode and needs no stream in callback mode', async () => {
    const events: ProgressEvent[] = [];
    const clock = manualClock();
    const p = await createProgress({ total: 4, mode: 'callback', onUpdate: (e) => events.push(e), now: clock.now });
    expect(p.mode).toBe('callback');
    clock.advance(1);
    p.update(1, { loss: 3 });
    clock.advance(1);
    p.update(2, { loss: 2 });
    p.done();
    expect(events.map((e) => [e.step, e.fields.loss, e.etaS])).toEqual([
      [1, 3, 3],
      [2, 2, 2],
      [2, 2, 2],
    ]);
    expect(events[1]!.elapsedS).toBe(2);
  });

  it('uses the cli-progress bar on a TTY stream', async () => {
    const { out, stream } = collector(true);
    const p = await createProgress({ total: 50, label: 'train', stream });
    expect(p.mode).toBe('bar');
    for (let s = 1; s <= 50; s++) p.update(s, { loss: 0.123456 });
    p.done();
    const text = out.join('');
    expect(text).toContain('train [');
    expect(text).toContain('50/50');
    expect(text).toContain('loss=0.1235');
  });
});

describe('formatting', () => {
  it('formats fields and durations for humans', () => {
    expect([2.31, 1234, 1234.56, 123.45, 0.00012346, NaN, -Infinity, 'x', 7].map(formatField)).toEqual([
      '2.310',
      '1234',
      '1235',
      '123.5',
      '1.235e-4',
      'nan',
      '-inf',
      'x',
      '7',
    ]);
    expect([0, 45.4, 185, 7260, -1].map(formatDuration)).toEqual(['0s', '45s', '3m05s', '2h01m', '?']);
  });
});
