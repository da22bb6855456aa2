import { createWasmBackend } from '../src/backend/wasm.js';
const be = await createWasmBackend();
const mk = (n: number, s = 1) => { const x = be.alloc(n); be.upload(x, Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3) * s)); return x; };
const n = 1 << 20; const a1 = mk(n, 4), a2 = mk(n), a3 = mk(n), a4 = mk(n), a5 = mk(n);
const V = 151936, R = 16; const x = mk(R * V, 3), lab = be.alloc(R, 'i32'), loss = be.alloc(R);
const res: string[] = [];
for (const [name, f] of [['swiglu', () => be.swiglu(a1, a2, a3, n)], ['swigluB', () => be.swigluBackward(a3, a1, a2, a4, a5, n)], ['CE', () => be.crossEntropy(x, lab, loss, R, V)]] as const) {
  for (let i = 0; i < 20; i++) f();
  let best = Infinity; for (let i = 0; i < 30; i++) { const s = performance.now(); f(); best = Math.min(best, performance.now() - s); }
  res.push(`${name} ${(best * 1e6 / (name === 'CE' ? R * V : n)).toFixed(2)} ns/elem`);
}
console.log(res.join(' | '));
