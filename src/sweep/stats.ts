// The two 95 % intervals a sweep table reports, and why both:
//  - Wilson score interval on a pooled binomial count (all seeds' graded problems together): how precisely the
//    accuracy of *this recipe on these problems* is known. Wilson rather than the normal (Wald) interval because it
//    stays inside [0, 1] and keeps its coverage at the small and extreme proportions small models produce (0 %, 3 %).
//  - Student-t interval over per-seed values: how much a result moves from one training seed to the next, which
//    the pooled count cannot see (it treats 3 x 200 problems as 600 independent draws of one model).
// Pure functions, no dependencies: the browser demo and the CLI share them.

/** Two-sided 95 % standard normal quantile. */
export const Z95 = 1.959963984540054;

export interface Interval {
  lo: number;
  hi: number;
}

/** Wilson score interval for `successes` out of `n` trials (95 % unless another z is given). n = 0 gives [0, 1]. */
export function wilsonInterval(successes: number, n: number, z = Z95): Interval {
  if (!(n >= 0) || !(successes >= 0) || successes > n)
    throw new Error(`wilsonInterval: need 0 <= successes <= n, got ${successes} of ${n}`);
  if (n === 0) return { lo: 0, hi: 1 };
  const p = successes / n,
    z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // at 0 and n the bound is exactly 0 (1); the formula gives it up to rounding
  return { lo: successes === 0 ? 0 : Math.max(0, center - half), hi: successes === n ? 1 : Math.min(1, center + half) };
}

// t_{0.975, df} for df = 1..30 (standard tables, 4 decimals); beyond 30 the Cornish-Fisher expansion below is
// accurate to better than 1e-4.
const T975 = [
  12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281, 2.201, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098,
  2.1009, 2.093, 2.086, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
];

/** The 97.5 % quantile of Student's t with `df` degrees of freedom (the half-width factor of a 95 % interval). */
export function tQuantile975(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new Error(`tQuantile975: degrees of freedom must be an integer >= 1, got ${df}`);
  if (df <= T975.length) return T975[df - 1]!;
  const z = Z95,
    z3 = z ** 3,
    z5 = z ** 5,
    z7 = z ** 7;
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2) + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3);
}

export interface MeanInterval {
  mean: number;
  /** Sample standard deviation (n - 1); NaN with one value. */
  sd: number;
  n: number;
  /** 95 % t interval of the mean; undefined with fewer than two values (no spread to measure). */
  ci?: Interval;
}

/** Mean of the finite values with a 95 % Student-t interval (n - 1 degrees of freedom). No finite values: mean NaN, n 0. */
export function meanInterval(values: ReadonlyArray<number | undefined>): MeanInterval {
  const v = values.filter((x): x is number => x !== undefined && Number.isFinite(x));
  const n = v.length;
  if (!n) return { mean: NaN, sd: NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, sd: NaN, n };
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = (tQuantile975(n - 1) * sd) / Math.sqrt(n);
  return { mean, sd, n, ci: { lo: mean - half, hi: mean + half } };
}
