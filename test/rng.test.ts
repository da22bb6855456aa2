import { describe, expect, it } from 'vitest';
import { Rng, type RngState } from '../src/data/rng.ts';

// Chi-square statistic of observed counts against a uniform expectation.
function chiSquare(counts: number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  const e = n / counts.length;
  return counts.reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
}

describe('Rng (xoshiro128**)', () => {
  it('matches the reference C implementation (prng.di.unimi.it/xoshiro128starstar.c)', () => {
    // Expected values printed by the reference C code compiled with gcc, state {1,2,3,4}.
    const r = Rng.fromState({ algo: 'xoshiro128**', key: 'ref', s: [1, 2, 3, 4], spare: null });
    const got = Array.from({ length: 8 }, () => r.next());
    expect(got).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849]);
    // Same reference, state {0x9e3779b9, 0x243f6a88, 0xb7e15162, 0xdeadbeef}, outputs 1001 and 1002.
    const r2 = Rng.fromState({ algo: 'xoshiro128**', key: 'ref', s: [0x9e3779b9, 0x243f6a88, 0xb7e15162, 0xdeadbeef], spare: null });
    for (let i = 0; i < 1000; i++) r2.next();
    expect([r2.next(), r2.next()]).toEqual([2541037969, 1849389561]);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const a = new Rng(42),
      b = new Rng(42),
      c = new Rng(43);
    const sa = Array.from({ length: 100 }, () => a.next());
    const sb = Array.from({ length: 100 }, () => b.next());
    const sc = Array.from({ length: 100 }, () => c.next());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    expect(new Rng('42').next()).toBe(new Rng(42).next()); // documented: 42 and "42" are the same seed
    expect(sa.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)).toBe(true);
  });

  it('round-trips its full state through JSON, including a pending Box-Muller spare', () => {
    const r = new Rng(7);
    for (let i = 0; i < 37; i++) r.next();
    r.normal(); // leaves a spare normal in the state
    const saved = JSON.parse(JSON.stringify(r.state())) as RngState;
    expect(saved.spare).not.toBeNull();
    const resumed = Rng.fromState(saved);
    const draw = (g: Rng) => [g.normal(), g.normal(), g.float(), g.int(-5, 5), g.next(), g.normal()];
    expect(draw(resumed)).toEqual(draw(r));
    // The fork key survives the round trip too.
    expect(resumed.fork('x').next()).toBe(r.fork('x').next());
  });

  it('rejects malformed states', () => {
    expect(() => Rng.fromState({ algo: 'pcg', key: '0', s: [1, 2, 3, 4], spare: null } as unknown as RngState)).toThrow(/algo/);
    expect(() => Rng.fromState({ algo: 'xoshiro128**', key: '0', s: [0, 0, 0, 0], spare: null })).toThrow(/all-zero/);
    expect(() => Rng.fromState({ algo: 'xoshiro128**', key: '0', s: [1, 2, 3, -1], spare: null } as RngState)).toThrow(/unsigned/);
  });

  it('float() is roughly uniform on [0,1) (chi-square, 20 bins)', () => {
    const r = new Rng(1);
    const counts = new Array(20).fill(0);
    let outOfRange = 0;
    for (let i = 0; i < 100_000; i++) {
      const f = r.float();
      if (!(f >= 0 && f < 1)) outOfRange++;
      else counts[Math.floor(f * 20)]++;
    }
    expect(outOfRange).toBe(0);
    // 19 dof: the 99.99th percentile is about 50; a broken generator lands in the thousands.
    expect(chiSquare(counts)).toBeLessThan(60);
  });

  it('int(lo, hi) covers both inclusive ends uniformly', () => {
    const r = new Rng(2);
    const counts = new Array(7).fill(0);
    let bad = 0;
    for (let i = 0; i < 70_000; i++) {
      const x = r.int(-3, 3);
      if (!(Number.isInteger(x) && x >= -3 && x <= 3)) bad++;
      else counts[x + 3]++;
    }
    expect(bad).toBe(0);
    expect(counts.every((c) => c > 0)).toBe(true);
    expect(chiSquare(counts)).toBeLessThan(35); // 6 dof
    expect(r.int(5, 5)).toBe(5);
    expect(() => r.int(3, 2)).toThrow(/empty/);
    expect(() => r.int(0, 1.5)).toThrow(/integers/);
  });

  it('normal() has mean ~0 and variance ~1', () => {
    const r = new Rng(3);
    const n = 50_000;
    let s = 0,
      s2 = 0;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      s += z;
      s2 += z * z;
    }
    expect(Number.isFinite(s2)).toBe(true);
    const mean = s / n,
      variance = s2 / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
    const shifted = new Rng(3).normal(10, 2);
    expect(shifted).toBeCloseTo(10 + 2 * new Rng(3).normal(), 12);
  });

  it('shuffle() is a permutation and every position gets every element', () => {
    const r = new Rng(4);
    const arr = Array.from({ length: 10 }, (_, i) => i);
    const out = r.shuffle(arr);
    expect(out).toBe(arr);
    expect([...out].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    // Position 0 of a shuffled [0..4] is uniform.
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 20_000; i++) counts[r.shuffle([0, 1, 2, 3, 4])[0]!]++;
    expect(chiSquare(counts)).toBeLessThan(25); // 4 dof
  });

  it('choice() picks every element and rejects empty arrays', () => {
    const r = new Rng(5);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(r.choice(['a', 'b', 'c']));
    expect([...seen].sort()).toEqual(['a', 'b', 'c']);
    expect(() => r.choice([])).toThrow(/empty/);
  });

  it('fork() gives independent streams that do not depend on the parent position', () => {
    const root = new Rng(9);
    const data1 = root.fork('data');
    for (let i = 0; i < 1000; i++) root.next(); // drawing from the parent must not move forks
    const data2 = root.fork('data');
    const drop = root.fork('dropout');
    const a = Array.from({ length: 2000 }, () => data1.float());
    expect(Array.from({ length: 2000 }, () => data2.float())).toEqual(a);
    const b = Array.from({ length: 2000 }, () => drop.float());
    const parent = new Rng(9);
    const p = Array.from({ length: 2000 }, () => parent.float()); // parent stream from its start
    // Correlation between fork streams (and the parent) is near zero: |r| < 0.1 for n=2000 (sd ~ 0.022).
    const corr = (x: number[], y: number[]) => {
      const mx = x.reduce((s, v) => s + v, 0) / x.length,
        my = y.reduce((s, v) => s + v, 0) / y.length;
      let sxy = 0,
        sxx = 0,
        syy = 0;
      for (let i = 0; i < x.length; i++) {
        sxy += (x[i]! - mx) * (y[i]! - my);
        sxx += (x[i]! - mx) ** 2;
        syy += (y[i]! - my) ** 2;
      }
      return sxy / Math.sqrt(sxx * syy);
    };
    expect(Math.abs(corr(a, b))).toBeLessThan(0.1);
    expect(Math.abs(corr(a.slice(1), p.slice(0, -1)))).toBeLessThan(0.1);
    expect(a).not.toEqual(b);
    // Nested forks are keyed by path; a differently seeded root gives a different fork.
    expect(root.fork('a').fork('b').key).toBe('9/a/b');
    expect(new Rng(10).fork('data').next()).not.toBe(new Rng(9).fork('data').next());
    // No shared outputs between the first 2000 u32s of two forks (a collision would hint at overlapping streams).
    const f1 = new Rng(9).fork('x');
    const s1 = new Set(Array.from({ length: 2000 }, () => f1.next()));
    expect(s1.size).toBeGreaterThan(1990);
    const f2 = new Rng(9).fork('y');
    let shared = 0;
    for (let i = 0; i < 2000; i++) if (s1.has(f2.next())) shared++;
    expect(shared).toBeLessThan(3);
  });
});
