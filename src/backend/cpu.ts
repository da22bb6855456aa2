// The plain-JavaScript backend: the executable specification of every op in ./types.ts, the reference the
// WebGPU and gpu.js backends are tested against, and the "plain JS" baseline in `npm run bench`.
// Written for clarity first; loops are ordered so the inner one walks contiguous memory.
import type { AdamWParams, AttentionShape, Backend, DType, MatmulOptions, Tensor } from './types.js';
import { matmulUnfused, wantsFusion } from './matmul-fused.js';
import { roundToBf16 } from '../safetensors.js';

class CpuTensor implements Tensor {
  constructor(readonly data: Float32Array | Int32Array, readonly dtype: DType, readonly label: string) {}
  get size() {
    return this.data.length;
  }
}

const F = (t: Tensor) => (t as CpuTensor).data as Float32Array;
const I = (t: Tensor) => (t as CpuTensor).data as Int32Array;

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly info = 'plain JavaScript (reference and baseline)';
  readonly maxBindingBytes = Number.MAX_SAFE_INTEGER;

  alloc(size: number, dtype: DType = 'f32', label = ''): Tensor {
    return new CpuTensor(dtype === 'i32' ? new Int32Array(size) : new Float32Array(size), dtype, label);
  }
  free(_t: Tensor): void {}
  upload(t: Tensor, data: Float32Array | Int32Array, offset = 0): void {
    const d = (t as CpuTensor).data;
    if (offset + data.length > d.length) throw new RangeError(`upload of ${data.length} at ${offset} overflows tensor '${t.label}' (${d.length})`);
    d.set((t.dtype === 'bf16' ? roundToBf16(Float32Array.from(data)) : data) as never, offset);
  }
  async read(t: Tensor, offset = 0, length?: number) {
    const d = (t as CpuTensor).data;
    return d.slice(offset, length === undefined ? d.length : offset + length);
  }
  zero(t: Tensor, offset = 0, length?: number): void {
    const d = (t as CpuTensor).data;
    d.fill(0, offset, length === undefined ? d.length : offset + length);
  }
  copy2d(src: Tensor, dst: Tensor, rows: number, cols: number, srcOff: number, srcStride: number, dstOff: number, dstStride: number, accumulate = false): void {
    const s = (src as CpuTensor).data, d = (dst as CpuTensor).data;
    for (let r = 0; r < rows; r++) {
      const so = srcOff + r * srcStride, dO = dstOff + r * dstStride;
      if (accumulate) for (let c = 0; c < cols; c++) d[dO + c] += s[so + c];
      else for (let c = 0; c < cols; c++) d[dO + c] = s[so + c];
    }
  }
  async sync(): Promise<void> {}
  destroy(): void {}

  add(a: Tensor, b: Tensor, out: Tensor, n: number): void {
    const x = F(a), y = F(b), o = F(out);
    for (let i = 0; i < n; i++) o[i] = x[i] + y[i];
  }
  axpy(alpha: number, x: Tensor, y: Tensor, n: number, xOff = 0, yOff = 0): void {
    const a = F(x), b = F(y);
    for (let i = 0; i < n; i++) b[yOff + i] += alpha * a[xOff + i];
  }
  scale(x: Tensor, s: number, n: number): void {
    const a = F(x);
    for (let i = 0; i < n; i++) a[i] *= s;
  }

  embedding(ids: Tensor, table: Tensor, out: Tensor, rows: number, dim: number): void {
    const id = I(ids), w = F(table), o = F(out);
    for (let r = 0; r < rows; r++) {
      const t = id[r];
      if (t < 0) continue;
      o.set(w.subarray(t * dim, t * dim + dim), r * dim);
    }
  }
  embeddingBackward(ids: Tensor, dOut: Tensor, dTable: Tensor, rows: number, dim: number): void {
    const id = I(ids), g = F(dOut), dw = F(dTable);
    for (let r = 0; r < rows; r++) {
      const t = id[r];
      if (t < 0) continue;
      for (let c = 0; c < dim; c++) dw[t * dim + c] += g[r * dim + c];
    }
  }

  matmul(a: Tensor, b: Tensor, c: Tensor, M: number, N: number, K: number, opts: MatmulOptions = {}): void {
    if (wantsFusion(opts)) return matmulUnfused(this, a, b, c, M, N, K, opts);
    const A = F(a), Bm = F(b), C = F(c);
    const { transA = false, transB = false, accumulate = false, aOff = 0, bOff = 0, cOff = 0 } = opts;
    const bias = opts.bias ? F(opts.bias) : undefined;
    const row = new Float32Array(N);
    for (let m = 0; m < M; m++) {
      row.fill(0);
      if (transB) {
        // B is [N, K]: dot products along contiguous rows of both.
        for (let n = 0; n < N; n++) {
          let s = 0;
          const bo = bOff + n * K;
          if (transA) for (let k = 0; k < K; k++) s += A[aOff + k * M + m] * Bm[bo + k];
          else {
            const ao = aOff + m * K;
            for (let k = 0; k < K; k++) s += A[ao + k] * Bm[bo + k];
          }
          row[n] = s;
        }
      } else {
        // B is [K, N]: accumulate scaled rows of B.
        for (let k = 0; k < K; k++) {
          const av = transA ? A[aOff + k * M + m] : A[aOff + m * K + k];
          if (av === 0) continue;
          const bo = bOff + k * N;
          for (let n = 0; n < N; n++) row[n] += av * Bm[bo + n];
        }
      }
      const co = cOff + m * N;
      for (let n = 0; n < N; n++) {
        const v = row[n] + (bias ? bias[n] : 0);
        C[co + n] = accumulate ? C[co + n] + v : v;
      }
    }
  }
  sumRows(dY: Tensor, dBias: Tensor, rows: number, cols: number): void {
    const g = F(dY), db = F(dBias);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) db[c] += g[r * cols + c];
  }

  rmsNorm(x: Tensor, w: Tensor, y: Tensor, rstd: Tensor, rows: number, dim: number, eps: number): void {
    const X = F(x), W = F(w), Y = F(y), R = F(rstd);
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let c = 0; c < dim; c++) ss += X[r * dim + c] * X[r * dim + c];
      const rs = 1 / Math.sqrt(ss / dim + eps);
      R[r] = rs;
      for (let c = 0; c < dim; c++) Y[r * dim + c] = W[c] * (X[r * dim + c] * rs);
    }
  }
  rmsNormBackward(dy: Tensor, x: Tensor, w: Tensor, rstd: Tensor, dx: Tensor, dw: Tensor, rows: number, dim: number): void {
    const G = F(dy), X = F(x), W = F(w), R = F(rstd), DX = F(dx), DW = F(dw);
    for (let r = 0; r < rows; r++) {
      const rs = R[r], o = r * dim;
      // y = w * x * rs;  dx = rs * (w*g) - x * rs^3 * mean(w*g*x)
      let dot = 0;
      for (let c = 0; c < dim; c++) dot += W[c] * G[o + c] * X[o + c];
      const k = (dot / dim) * rs * rs * rs;
      for (let c = 0; c < dim; c++) {
        DX[o + c] += W[c] * G[o + c] * rs - X[o + c] * k;
        DW[c] += G[o + c] * X[o + c] * rs;
      }
    }
  }

  rope(x: Tensor, pos: Tensor, rows: number, heads: number, D: number, theta: number, inverse = false): void {
    const X = F(x), P = I(pos), half = D / 2;
    const invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.pow(theta, (2 * i) / D);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < half; i++) {
        const ang = Math.fround(P[r] * invFreq[i]);
        const c = Math.fround(Math.cos(ang));
        const s = inverse ? -Math.fround(Math.sin(ang)) : Math.fround(Math.sin(ang));
        for (let h = 0; h < heads; h++) {
          const o = (r * heads + h) * D;
          const a = X[o + i], b = X[o + i + half];
          X[o + i] = a * c - b * s;
          X[o + i + half] = b * c + a * s;
        }
      }
    }
  }

  attention(q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, lse: Tensor, s: AttentionShape): void {
    const Q = F(q), Kc = F(kCache), Vc = F(vCache), O = F(out), L = F(lse);
    const { B, Tq, Hq, Hkv, D, qStart, kvCap } = s;
    const rep = Hq / Hkv, scale = 1 / Math.sqrt(D);
    const sc = new Float32Array(qStart + Tq);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < Hq; h++) {
        const kh = Math.floor(h / rep);
        for (let i = 0; i < Tq; i++) {
          const qo = ((b * Tq + i) * Hq + h) * D, nk = qStart + i + 1;
          let mx = -Infinity;
          for (let j = 0; j < nk; j++) {
            const ko = ((b * kvCap + j) * Hkv + kh) * D;
            let d = 0;
            for (let c = 0; c < D; c++) d += Q[qo + c] * Kc[ko + c];
            sc[j] = d * scale;
            if (sc[j] > mx) mx = sc[j];
          }
          let sum = 0;
          for (let j = 0; j < nk; j++) sum += (sc[j] = Math.exp(sc[j] - mx));
          for (let c = 0; c < D; c++) O[qo + c] = 0;
          for (let j = 0; j < nk; j++) {
            const p = sc[j] / sum, vo = ((b * kvCap + j) * Hkv + kh) * D;
            for (let c = 0; c < D; c++) O[qo + c] += p * Vc[vo + c];
          }
          L[(b * Hq + h) * Tq + i] = mx + Math.log(sum);
        }
      }
  }
  attentionBackward(dOut: Tensor, q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, lse: Tensor, dq: Tensor, dkCache: Tensor, dvCache: Tensor, s: AttentionShape): void {
    const G = F(dOut), Q = F(q), Kc = F(kCache), Vc = F(vCache), O = F(out), L = F(lse);
    const DQ = F(dq), DK = F(dkCache), DV = F(dvCache);
    const { B, Tq, Hq, Hkv, D, qStart, kvCap } = s;
    const rep = Hq / Hkv, scale = 1 / Math.sqrt(D);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < Hq; h++) {
        const kh = Math.floor(h / rep);
        for (let i = 0; i < Tq; i++) {
          const qo = ((b * Tq + i) * Hq + h) * D, nk = qStart + i + 1;
          const l = L[(b * Hq + h) * Tq + i];
          // delta = sum_c dO * O  (= sum_j P_ij dP_ij)
          let delta = 0;
          for (let c = 0; c < D; c++) delta += G[qo + c] * O[qo + c];
          for (let j = 0; j < nk; j++) {
            const ko = ((b * kvCap + j) * Hkv + kh) * D;
            let d = 0;
            for (let c = 0; c < D; c++) d += Q[qo + c] * Kc[ko + c];
            const p = Math.exp(d * scale - l);
            let dp = 0;
            for (let c = 0; c < D; c++) {
              dp += G[qo + c] * Vc[ko + c];
              DV[ko + c] += p * G[qo + c];
            }
            const ds = p * (dp - delta) * scale;
            for (let c = 0; c < D; c++) {
              DQ[qo + c] += ds * Kc[ko + c];
              DK[ko + c] += ds * Q[qo + c];
            }
          }
        }
      }
  }

  swiglu(gate: Tensor, up: Tensor, out: Tensor, n: number): void {
    const g = F(gate), u = F(up), o = F(out);
    for (let i = 0; i < n; i++) o[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
  }
  swigluBackward(dOut: Tensor, gate: Tensor, up: Tensor, dGate: Tensor, dUp: Tensor, n: number): void {
    const d = F(dOut), g = F(gate), u = F(up), dg = F(dGate), du = F(dUp);
    for (let i = 0; i < n; i++) {
      const sig = 1 / (1 + Math.exp(-g[i]));
      du[i] += d[i] * g[i] * sig;
      dg[i] += d[i] * u[i] * sig * (1 + g[i] * (1 - sig));
    }
  }

  crossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, rows: number, V: number, opts: { weights?: Tensor; logitsOff?: number; labelOff?: number; lossOff?: number } = {}): void {
    const X = F(logits), Y = I(labels), Lo = F(losses);
    const { logitsOff = 0, labelOff = 0, lossOff = 0 } = opts;
    const W = opts.weights ? F(opts.weights) : undefined;
    for (let r = 0; r < rows; r++) {
      const o = logitsOff + r * V, y = Y[labelOff + r];
      if (y < 0) {
        Lo[lossOff + r] = 0;
        if (W) X.fill(0, o, o + V);
        continue;
      }
      let mx = -Infinity;
      for (let c = 0; c < V; c++) if (X[o + c] > mx) mx = X[o + c];
      let sum = 0;
      for (let c = 0; c < V; c++) sum += Math.exp(X[o + c] - mx);
      const lse = mx + Math.log(sum);
      Lo[lossOff + r] = lse - X[o + y];
      if (W) {
        const w = W[labelOff + r];
        for (let c = 0; c < V; c++) X[o + c] = w * (Math.exp(X[o + c] - lse) - (c === y ? 1 : 0));
      }
    }
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, n: number, h: AdamWParams): void {
    const P = F(param), G = F(grad), M = F(m), Vv = F(v);
    const bc1 = 1 - Math.pow(h.beta1, h.step), bc2 = 1 - Math.pow(h.beta2, h.step);
    for (let i = 0; i < n; i++) {
      const g = G[i] * h.gradScale;
      M[i] = h.beta1 * M[i] + (1 - h.beta1) * g;
      Vv[i] = h.beta2 * Vv[i] + (1 - h.beta2) * g * g;
      const mhat = M[i] / bc1, vhat = Vv[i] / bc2;
      P[i] -= h.lr * (mhat / (Math.sqrt(vhat) + h.eps) + h.weightDecay * P[i]);
    }
  }
  sumSquares(x: Tensor, n: number, out: Tensor, outIndex: number): void {
    const X = F(x);
    let s = 0;
    for (let i = 0; i < n; i++) s += X[i] * X[i];
    F(out)[outIndex] += s;
  }
}
