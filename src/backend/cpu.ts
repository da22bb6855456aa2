// The plain-JavaScript backend: the executable specification of every op of the table in ./ops.ts, the reference the
// WebGPU and gpu.js backends are tested against, and the "plain JS" baseline in `npm run bench`.
// Written for clarity first; loops are ordered so the inner one walks contiguous memory.
import { OpBackend, querySequences, ropeCosSin, type KernelArgs, type Kernels } from './ops.js';
import { BackendError, type AttentionShape, type Backend, type DType, type Tensor } from './types.js';

class CpuTensor implements Tensor {
  constructor(
    readonly data: Float32Array | Int32Array,
    readonly dtype: DType,
    readonly label: string,
  ) {}
  get size() {
    return this.data.length;
  }
}

const F = (t: Tensor) => (t as CpuTensor).data as Float32Array;
const I = (t: Tensor) => (t as CpuTensor).data as Int32Array;

/**
 * Calls f for every query row of causal attention (query head h, position i of sequence b): b, the kv head kh of h,
 * the offset qo of the row in q/out, nk, the keys it sees (0 .. s + i, where s is qStarts[b] if given, else qStart),
 * and li, its lse element. Sequence b's rows are b*Tq.. (Tq of them), or qRows[b] .. qRows[b+1]-1 when given.
 */
function eachQueryRow(
  { B, Tq, Hq, Hkv, D, qStart, kvCap, qStarts, qRows }: AttentionShape & { qStarts?: Tensor; qRows?: Tensor },
  f: (b: number, kh: number, qo: number, nk: number, li: number) => void,
): void {
  const rep = Hq / Hkv;
  const bad = (msg: string): never => {
    throw new BackendError(`cpu backend: attention: ${msg}`, 'cpu');
  };
  const seqs = querySequences({ B, Tq, Hq, Hkv, D, qStart, kvCap }, qStarts && I(qStarts), qRows && I(qRows), bad);
  for (const [b, { start: s, r0, n }] of seqs.entries())
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / rep);
      for (let i = 0; i < n; i++) f(b, kh, ((r0 + i) * Hq + h) * D, s + i + 1, Hq * r0 + h * n + i);
    }
}

/** Calls f(r, id) for every row r < rows whose id is not negative (a negative id marks a row the caller fills). */
function eachIdRow(ids: Tensor, rows: number, f: (r: number, id: number) => void): void {
  const id = I(ids);
  for (let r = 0; r < rows; r++) if (id[r] >= 0) f(r, id[r]);
}

export class CpuBackend extends OpBackend implements Backend, Kernels {
  readonly name = 'cpu' as const;
  override readonly queryStarts = true;
  readonly info = 'plain JavaScript (reference and baseline)';
  readonly maxBindingBytes = Number.MAX_SAFE_INTEGER;

  alloc(size: number, dtype: DType = 'f32', label = ''): Tensor {
    return new CpuTensor(dtype === 'i32' ? new Int32Array(size) : new Float32Array(size), dtype, label);
  }
  free(_t: Tensor): void {}
  protected kernelUpload(t: Tensor, data: Float32Array | Int32Array, offset: number): void {
    (t as CpuTensor).data.set(data as never, offset);
  }
  async read(t: Tensor, offset = 0, length?: number) {
    const d = (t as CpuTensor).data;
    return d.slice(offset, length === undefined ? d.length : offset + length);
  }
  zero(t: Tensor, offset = 0, length?: number): void {
    const d = (t as CpuTensor).data;
    d.fill(0, offset, length === undefined ? d.length : offset + length);
  }
  kernelCopy2d({ src, dst, rows, cols, srcOff, srcStride, dstOff, dstStride, accumulate }: KernelArgs['copy2d']): void {
    const s = (src as CpuTensor).data,
      d = (dst as CpuTensor).data;
    for (let r = 0; r < rows; r++) {
      const so = srcOff + r * srcStride,
        dO = dstOff + r * dstStride;
      if (accumulate) for (let c = 0; c < cols; c++) d[dO + c] += s[so + c];
      else for (let c = 0; c < cols; c++) d[dO + c] = s[so + c];
    }
  }
  async sync(): Promise<void> {}
  destroy(): void {}

  kernelAdd({ a, b, out, n }: KernelArgs['add']): void {
    const x = F(a),
      y = F(b),
      o = F(out);
    for (let i = 0; i < n; i++) o[i] = x[i] + y[i];
  }
  kernelAxpy({ alpha, x, y, n, xOff, yOff }: KernelArgs['axpy']): void {
    const a = F(x),
      b = F(y);
    for (let i = 0; i < n; i++) b[yOff + i] += alpha * a[xOff + i];
  }
  kernelScale({ x, s, n }: KernelArgs['scale']): void {
    const a = F(x);
    for (let i = 0; i < n; i++) a[i] *= s;
  }

  kernelEmbedding({ ids, table, out, rows, dim }: KernelArgs['embedding']): void {
    const w = F(table),
      o = F(out);
    eachIdRow(ids, rows, (r, t) => o.set(w.subarray(t * dim, t * dim + dim), r * dim));
  }
  kernelEmbeddingBackward({ ids, dOut, dTable, rows, dim }: KernelArgs['embeddingBackward']): void {
    const g = F(dOut),
      dw = F(dTable);
    eachIdRow(ids, rows, (r, t) => {
      for (let c = 0; c < dim; c++) dw[t * dim + c] += g[r * dim + c];
    });
  }

  kernelMatmul(args: KernelArgs['matmul']): void {
    const { a, b, c, M, N, K, transA, transB, accumulate, aOff, bOff, cOff, bias: biasT } = args;
    const A = F(a),
      Bm = F(b),
      C = F(c);
    const bias = biasT ? F(biasT) : undefined;
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
  kernelSumRows({ dY, dBias, rows, cols }: KernelArgs['sumRows']): void {
    const g = F(dY),
      db = F(dBias);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) db[c] += g[r * cols + c];
  }

  kernelRmsNorm({ x, w, y, rstd, rows, dim, eps }: KernelArgs['rmsNorm']): void {
    const [X, W, Y, R] = [x, w, y, rstd].map(F);
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let c = 0; c < dim; c++) ss += X[r * dim + c] * X[r * dim + c];
      const rs = 1 / Math.sqrt(ss / dim + eps);
      R[r] = rs;
      for (let c = 0; c < dim; c++) Y[r * dim + c] = W[c] * (X[r * dim + c] * rs);
    }
  }
  kernelRmsNormBackward({ dy, x, w, rstd, dx, dw, rows, dim }: KernelArgs['rmsNormBackward']): void {
    const [G, X, W, R, DX, DW] = [dy, x, w, rstd, dx, dw].map(F);
    for (let r = 0; r < rows; r++) {
      const rs = R[r],
        o = r * dim;
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

  kernelRope({ x, pos, rows, heads, D, inverse, invFreq }: KernelArgs['rope']): void {
    const X = F(x),
      half = D / 2;
    const cos = new Float32Array(rows * half),
      sin = new Float32Array(rows * half);
    ropeCosSin(invFreq, I(pos), rows, inverse, cos, sin);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < half; i++) {
        const c = cos[r * half + i],
          s = sin[r * half + i];
        for (let h = 0; h < heads; h++) {
          const o = (r * heads + h) * D;
          const a = X[o + i],
            b = X[o + i + half];
          X[o + i] = a * c - b * s;
          X[o + i + half] = b * c + a * s;
        }
      }
    }
  }

  kernelAttention(s: KernelArgs['attention']): void {
    const { Tq, Hkv, D, qStart, kvCap } = s;
    const [Q, Kc, Vc, O, L] = [s.q, s.kCache, s.vCache, s.out, s.lse].map(F);
    const scale = 1 / Math.sqrt(D);
    const sc = new Float32Array(qStart + Tq);
    eachQueryRow(s, (b, kh, qo, nk, li) => {
      let mx = -Infinity;
      for (let j = 0; j < nk; j++) {
        const ko = ((b * kvCap + j) * Hkv + kh) * D;
        let d = 0;
        for (let c = 0; c < D; c++) d += Q[qo + c] * Kc[ko + c];
        sc[j] = d * scale;
        if (sc[j] > mx) mx = sc[j];
      }
      let sum = 0;
      for (let j = 0; j < nk; j++) sum += sc[j] = Math.exp(sc[j] - mx);
      for (let c = 0; c < D; c++) O[qo + c] = 0;
      for (let j = 0; j < nk; j++) {
        const p = sc[j] / sum,
          vo = ((b * kvCap + j) * Hkv + kh) * D;
        for (let c = 0; c < D; c++) O[qo + c] += p * Vc[vo + c];
      }
      L[li] = mx + Math.log(sum);
    });
  }
  kernelAttentionBackward(s: KernelArgs['attentionBackward']): void {
    const { Hkv, D, kvCap } = s;
    const [G, Q, Kc, Vc, O, L] = [s.dOut, s.q, s.kCache, s.vCache, s.out, s.lse].map(F);
    const [DQ, DK, DV] = [s.dq, s.dkCache, s.dvCache].map(F);
    const scale = 1 / Math.sqrt(D);
    eachQueryRow(s, (b, kh, qo, nk, li) => {
      const l = L[li];
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
    });
  }

  kernelSwiglu({ gate, up, out, n }: KernelArgs['swiglu']): void {
    const g = F(gate),
      u = F(up),
      o = F(out);
    for (let i = 0; i < n; i++) o[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
  }
  kernelSwigluBackward({ dOut, gate, up, dGate, dUp, n }: KernelArgs['swigluBackward']): void {
    const [d, g, u, dg, du] = [dOut, gate, up, dGate, dUp].map(F);
    for (let i = 0; i < n; i++) {
      const sig = 1 / (1 + Math.exp(-g[i]));
      du[i] += d[i] * g[i] * sig;
      dg[i] += d[i] * u[i] * sig * (1 + g[i] * (1 - sig));
    }
  }

  kernelCrossEntropy({ logits, labels, losses, rows, V, weights, logitsOff, labelOff, lossOff }: KernelArgs['crossEntropy']): void {
    const X = F(logits),
      Y = I(labels),
      Lo = F(losses);
    const W = weights ? F(weights) : undefined;
    for (let r = 0; r < rows; r++) {
      const o = logitsOff + r * V,
        y = Y[labelOff + r];
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

  kernelAdamw({ param, grad, m, v, n, bc1, bc2, ...h }: KernelArgs['adamw']): void {
    const [P, G, M, Vv] = [param, grad, m, v].map(F);
    for (let i = 0; i < n; i++) {
      const g = G[i] * h.gradScale;
      M[i] = h.beta1 * M[i] + (1 - h.beta1) * g;
      Vv[i] = h.beta2 * Vv[i] + (1 - h.beta2) * g * g;
      const mhat = M[i] / bc1,
        vhat = Vv[i] / bc2;
      P[i] -= h.lr * (mhat / (Math.sqrt(vhat) + h.eps) + h.weightDecay * P[i]);
    }
  }
  kernelSumSquares({ x, n, out, outIndex }: KernelArgs['sumSquares']): void {
    const X = F(x);
    let s = 0;
    for (let i = 0; i < n; i++) s += X[i] * X[i];
    F(out)[outIndex] += s;
  }
}
