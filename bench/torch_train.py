#!/usr/bin/env python3
"""PyTorch baseline for bench/train.ts: the same Qwen2 training step (forward + backward + AdamW, f32, random
weights, the same batch shape) and an sgemm figure, so `npm run bench` can put PyTorch next to the WASM backend.

The model is scripts/reference/qwen2_ref.py (the independent reference the parity tests use), so both sides
compute the same maths. Run by bench/cpu-train.ts with /usr/bin/python3; also usable by hand:
  /usr/bin/python3 bench/torch_train.py --threads 2 --train '{"name": "small", "B": 4, "T": 64, "config": {"vocab_size": 512, ...}}'
  /usr/bin/python3 bench/torch_train.py --threads 2 --sgemm 128,896,4864
Prints '# ...' lines (torch version, BLAS, threads), then one JSON object per measurement.
Threads: torch.set_num_threads(N); Debian's torch calls the system libblas.so.3 (BLAS_INFO=generic), so the
caller also sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS to N before Python starts (OpenBLAS reads them at load).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts', 'reference'))
from qwen2_ref import causal_lm_loss, forward, param_shapes  # noqa: E402


def blas_in_use() -> str:
    """The BLAS shared object actually mapped into this process (after a matmul has loaded it)."""
    a = torch.randn(64, 64)
    _ = a @ a
    libs = set()
    try:
        with open('/proc/self/maps') as f:
            for line in f:
                p = line.split()[-1] if len(line.split()) >= 6 else ''
                if 'blas' in os.path.basename(p).lower() or 'mkl' in os.path.basename(p).lower():
                    libs.add(os.path.realpath(p))
    except OSError:
        pass
    info = [l.strip() for l in torch.__config__.show().splitlines() if 'BLAS_INFO' in l]
    blas_info = info[0].split('BLAS_INFO=')[1].split(',')[0] if info else '?'
    return f"BLAS_INFO={blas_info}; loaded: {', '.join(sorted(libs)) or 'none found in /proc/self/maps'}"


def train_tokens_per_sec(cfg: dict, B: int, T: int, seconds: float) -> tuple:
    """(tokens/s over the timed window, tokens/s of its fastest step), as bench/train.ts measureTraining."""
    g = torch.Generator().manual_seed(1)
    P = {}
    for name, shape in param_shapes(cfg).items():
        t = torch.ones(shape) if 'norm' in name else (torch.rand(shape, generator=g) * 2 - 1) * 0.04
        P[name] = t.requires_grad_(True)
    opt = torch.optim.AdamW(list(P.values()), lr=1e-4)
    ids = (torch.arange(B * T) * 7919 % cfg['vocab_size']).view(B, T)

    def step():
        opt.zero_grad(set_to_none=False)
        _, logits = forward(P, cfg, ids)
        causal_lm_loss(logits, ids).backward()
        opt.step()

    step()  # warm-up
    n, t0, best = 0, time.perf_counter(), float('inf')
    while time.perf_counter() - t0 < seconds or n < 2:
        s = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - s)
        n += 1
    return n * B * T / (time.perf_counter() - t0), B * T / best


def sgemm_gflops(M: int, K: int, N: int, seconds: float) -> float:
    """C[M, N] = X[M, K] W^T (a Linear forward, W stored [N, K]); best of repeats."""
    x, w = torch.randn(M, K), torch.randn(N, K)
    torch.nn.functional.linear(x, w)
    best, t0 = float('inf'), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        s = time.perf_counter()
        torch.nn.functional.linear(x, w)
        best = min(best, time.perf_counter() - s)
    return 2 * M * N * K / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--train', action='append', default=[], help='{"name", "B", "T", "config": HF Qwen2 config} as JSON (repeatable)')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--seconds', type=float, default=4.0)
    ap.add_argument('--sgemm', action='append', default=[], help='M,K,N (repeatable)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f'# torch {torch.__version__}; {blas_in_use()}; torch threads {torch.get_num_threads()}, '
          f'OPENBLAS_NUM_THREADS={os.environ.get("OPENBLAS_NUM_THREADS", "unset")}', flush=True)
    with torch.no_grad():
        for s in a.sgemm:
            M, K, N = (int(v) for v in s.split(','))
            g = sgemm_gflops(M, K, N, min(a.seconds, 1.0))
            print(json.dumps({'backend': 'pytorch', 'threads': a.threads, 'sgemm': f'{M}x{K}->{N}', 'gflops': round(g, 2)}), flush=True)
    for spec in a.train:
        c = json.loads(spec)
        tps, best = train_tokens_per_sec(c['config'], int(c['B']), int(c['T']), a.seconds)
        print(json.dumps({'backend': 'pytorch', 'threads': a.threads, 'config': c['name'], 'tokensPerSec': round(tps, 1),
                          'bestStepTokensPerSec': round(best, 1)}), flush=True)


if __name__ == '__main__':
    main()
