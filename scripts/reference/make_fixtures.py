#!/usr/bin/env python3
"""Generates the Qwen2 parity fixtures in test/fixtures/ from the independent PyTorch reference (qwen2_ref.py).

Run:  /usr/bin/python3 scripts/reference/make_fixtures.py          (torch >= 1.13 + numpy; deterministic, CPU only)
      ... make_fixtures.py --only objectives   rewrites only test/fixtures/objectives/ (see make_objectives)
      ... make_fixtures.py --only gated        rewrites only test/fixtures/gated/ (see make_gated)

FIXTURE FORMAT: test/fixtures/<case>.safetensors, one per case (each < 200 KB)
  Parameters, by their HF names, F32: model.embed_tokens.weight [V,H], model.layers.{i}.self_attn.{q,k,v}_proj.{weight,bias},
      model.layers.{i}.self_attn.o_proj.weight, model.layers.{i}.mlp.{gate,up,down}_proj.weight,
      model.layers.{i}.{input,post_attention}_layernorm.weight, model.norm.weight, lm_head.weight (untied cases only).
  case.ids          I32 [B,T]  token ids (at latent positions the id is a placeholder the model must ignore)
  case.labels       I32 [B,T]  HF convention: same length as ids, shifted inside (logits[:, t] predicts labels[:, t+1]);
                               -100 = ignored. labels[:, 0] is never used.
  case.latent_mask  I32 [B,T]  1 at latent positions (never position 0): input = final-norm hidden state of position p-1
  ref.logits        F32 [B,T,V]
  ref.hidden        F32 [B,T,H]  final-norm hidden states (what lm_head sees, what a latent is fed)
  ref.loss          F32 [1]      mean cross-entropy over all labels[:, 1:] != -100 in the whole batch
  ref.grad.<name>   F32          d(ref.loss)/d(parameter), same shape as the parameter (tied: embedding gets both uses)
  ref.adamw_losses  F32 [10]     losses of 10 torch.optim.AdamW steps on this same batch, each recorded BEFORE its update
  ref.adamw_grad_norms F32 [10]  the global pre-clip gradient norm of each of those steps (diagnostics)
  __metadata__ (strings):
    config  the HF config.json of the model (JSON)
    adamw   {"lr","betas","eps","weight_decay","clip","steps"} (JSON): one param group, weight decay on EVERY parameter
            (norms and biases included), torch.nn.utils.clip_grad_norm_(params, clip) before each step
            (scale = clip / (norm + 1e-6) when norm > clip), then opt.step().
    case    {"name","seed","B","T","latent": [[positions of seq 0], ...], "f64_gap": {...}} (JSON); f64_gap holds the
            max |f32 - f64| / max |f64| of every output, i.e. how accurate this f32 reference itself is.
  Everything is computed in float32 like HF (softmax in f32), and cross-checked against a float64 run of the same code.

Also writes test/fixtures/st_python.safetensors (tensors of many dtypes written by torch, for test/safetensors.test.ts):
  f32 F32[3,4]; bf16_src F32[N] (ties, overflow, subnormals, +-0, +-inf, NaN); bf16 BF16[N] = bf16_src.to(bfloat16)
  (torch's round-to-nearest-even); bf16_as_f32 F32[N] = bf16.float(); f16_src F32[M]; f16 F16[M]; f16_as_f32 F32[M];
  i32 I32[2,3]; i64 I64[5]; u8 U8[4]; i8 I8[3]; f64 F64[2]; empty F32[0,3]; scalar F32[] — metadata {"format":"pt","writer":"torch"}.
"""
from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qwen2_ref import causal_lm_loss, forward, gated_feedback, param_shapes, save_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'test', 'fixtures')
ADAMW = {'lr': 1e-3, 'betas': [0.9, 0.95], 'eps': 1e-8, 'weight_decay': 0.1, 'clip': 1.0, 'steps': 10}
MAX_BYTES = 200 * 1024


def hf_config(V, H, I, L, nh, nkv, tied, theta=10000.0, eps=1e-6):
    return {
        'architectures': ['Qwen2ForCausalLM'], 'model_type': 'qwen2', 'hidden_act': 'silu',
        'vocab_size': V, 'hidden_size': H, 'intermediate_size': I, 'num_hidden_layers': L,
        'num_attention_heads': nh, 'num_key_value_heads': nkv, 'max_position_embeddings': 64,
        'rms_norm_eps': eps, 'rope_theta': theta, 'tie_word_embeddings': tied, 'torch_dtype': 'float32',
        'use_sliding_window': False, 'rope_scaling': None, 'attention_dropout': 0.0,
    }


def init_params(cfg, g):
    """Random weights with O(1) activations (not the tiny HF init) so attention is far from uniform and
    gradients are not dominated by rounding noise."""
    P = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith('layernorm.weight') or name == 'model.norm.weight':
            t = 1.0 + 0.2 * torch.randn(shape, generator=g)
        elif name.endswith('.bias'):
            t = 0.3 * torch.randn(shape, generator=g)
        elif name == 'model.embed_tokens.weight':
            t = 0.3 * torch.randn(shape, generator=g)
        else:  # [out, in] linear weights (lm_head included)
            t = torch.randn(shape, generator=g) / (shape[1] ** 0.5)
        P[name] = t.to(torch.float32)
    return P


def loss_and_outputs(P, cfg, ids, labels, mask):
    hidden, logits = forward(P, cfg, ids, mask)
    return causal_lm_loss(logits, labels), hidden, logits


def run_once(P0, cfg, ids, labels, mask, dtype):
    P = {k: v.to(dtype).clone().requires_grad_(True) for k, v in P0.items()}
    loss, hidden, logits = loss_and_outputs(P, cfg, ids, labels, mask)
    loss.backward()
    return loss.detach(), hidden.detach(), logits.detach(), {k: v.grad.detach() for k, v in P.items()}


def run_adamw(P0, cfg, ids, labels, mask, dtype):
    P = {k: v.to(dtype).clone().requires_grad_(True) for k, v in P0.items()}
    params = list(P.values())
    opt = torch.optim.AdamW(params, lr=ADAMW['lr'], betas=tuple(ADAMW['betas']), eps=ADAMW['eps'],
                            weight_decay=ADAMW['weight_decay'])
    losses, norms = [], []
    for _ in range(ADAMW['steps']):
        opt.zero_grad()
        loss, _, _ = loss_and_outputs(P, cfg, ids, labels, mask)
        losses.append(loss.item())
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, ADAMW['clip'])))
        opt.step()
    return losses, norms


def rel_gap(a, b):
    """max |a - b| / max |b| (the same measure as maxRelErr in test/_conformance.ts)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-6))


def make_case(name, cfg, B, T, seed, latent=None, mask_labels=None):
    g = torch.Generator().manual_seed(seed)
    P = init_params(cfg, g)
    ids = torch.randint(0, cfg['vocab_size'], (B, T), generator=g)
    labels = ids.clone()  # the usual causal-LM setup: labels are the ids themselves, shifted inside the loss
    latent = latent or [[] for _ in range(B)]
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b, ps in enumerate(latent):
        for p in ps:
            mask[b, p] = True
            labels[b, p] = -100  # nothing predicts a latent
    if mask_labels is not None:
        labels = mask_labels(labels, g)

    loss, hidden, logits, grads = run_once(P, cfg, ids, labels, mask, torch.float32)
    loss64, hidden64, logits64, grads64 = run_once(P, cfg, ids, labels, mask, torch.float64)
    losses, norms = run_adamw(P, cfg, ids, labels, mask, torch.float32)
    losses64, _ = run_adamw(P, cfg, ids, labels, mask, torch.float64)
    gap = {
        'logits': rel_gap(logits, logits64), 'hidden': rel_gap(hidden, hidden64), 'loss': rel_gap(loss, loss64),
        'grad_max': max(rel_gap(grads[k], grads64[k]) for k in grads), 'adamw_losses': rel_gap(losses, losses64),
    }
    if not losses[-1] < losses[0]:
        raise SystemExit(f'{name}: AdamW did not lower the loss: {losses}')

    out = dict(P)
    out['case.ids'] = ids.to(torch.int32)
    out['case.labels'] = labels.to(torch.int32)
    out['case.latent_mask'] = mask.to(torch.int32)
    out['ref.logits'] = logits
    out['ref.hidden'] = hidden
    out['ref.loss'] = loss.reshape(1)
    for k, v in grads.items():
        out['ref.grad.' + k] = v
    out['ref.adamw_losses'] = torch.tensor(losses, dtype=torch.float32)
    out['ref.adamw_grad_norms'] = torch.tensor(norms, dtype=torch.float32)
    meta = {
        'format': 'pt',
        'config': json.dumps(cfg),
        'adamw': json.dumps(ADAMW),
        'case': json.dumps({'name': name, 'seed': seed, 'B': B, 'T': T, 'latent': latent, 'f64_gap': gap}),
    }
    path = os.path.join(OUT, name + '.safetensors')
    save_safetensors(path, out, meta)
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        raise SystemExit(f'{path}: {size} bytes exceeds the {MAX_BYTES} byte budget')
    valid = int((labels[:, 1:] != -100).sum())
    print(f'{name:14s} {size / 1024:6.1f} KB  loss {loss.item():.5f}  labels {valid}  adamw {losses[0]:.4f} -> {losses[-1]:.4f}'
          f'  grad-norm {norms[0]:.3f}{" (clipped)" if norms[0] > ADAMW["clip"] else ""}')
    print('    f32 vs f64: ' + '  '.join(f'{k} {v:.1e}' for k, v in gap.items()))
    return gap


def half_masked(labels, g):
    keep = torch.rand(labels.shape, generator=g) < 0.5
    return torch.where(keep, labels, torch.full_like(labels, -100))


def make_st_python():
    """Tensors of many dtypes written by torch: the TS reader must read them back identically, and the TS writer
    must reproduce torch's f32 -> bf16 / f16 rounding bit for bit."""
    g = torch.Generator().manual_seed(7)
    f32max = torch.finfo(torch.float32).max
    specials = [0.0, -0.0, 1.0, -1.0, float('inf'), float('-inf'), float('nan'), f32max, -f32max,
                1e-40, -1e-40, 1.17549435e-38, 3.0e38, 65504.0, 1e-45]
    # exact ties between two bf16 values: 1 + k*2^-8 with odd k rounds to even, so does 1 + 3*2^-8 (odd mantissa)
    ties = [1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, -(1.0 + 2 ** -8), 2.0 + 2 ** -7, 1.0 + 2 ** -8 + 2 ** -20, 1.0 + 2 ** -8 - 2 ** -20]
    bf16_src = torch.cat([torch.tensor(specials + ties, dtype=torch.float32), torch.randn(40, generator=g) * 100])
    # one more tie: the largest finite bf16 plus half an ulp rounds up to +inf
    bf16_src = torch.cat([bf16_src, torch.tensor([3.3961775e38], dtype=torch.float32)])
    f16_src = torch.cat([torch.tensor([0.0, -0.0, 1.0, 65504.0, 65520.0, 1e5, 6e-8, 3e-8, 1e-4, float('inf'), float('nan'),
                                       1.0 + 2 ** -11, 1.0 + 3 * 2 ** -11], dtype=torch.float32),
                         torch.randn(30, generator=g) * 10])
    bf16 = bf16_src.to(torch.bfloat16)
    f16 = f16_src.to(torch.float16)
    t = {
        'f32': torch.randn(3, 4, generator=g),
        'bf16_src': bf16_src, 'bf16': bf16, 'bf16_as_f32': bf16.float(),
        'f16_src': f16_src, 'f16': f16, 'f16_as_f32': f16.float(),
        'i32': torch.tensor([[1, -2, 3], [2147483647, -2147483648, 0]], dtype=torch.int32),
        'i64': torch.tensor([0, -1, 5, 1 << 40, -(1 << 33)], dtype=torch.int64),
        'u8': torch.tensor([0, 1, 128, 255], dtype=torch.uint8),
        'i8': torch.tensor([-128, 0, 127], dtype=torch.int8),
        'f64': torch.tensor([0.1, -1e300], dtype=torch.float64),
        'empty': torch.zeros(0, 3),
        'scalar': torch.tensor(2.5),
    }
    path = os.path.join(OUT, 'st_python.safetensors')
    save_safetensors(path, t, {'format': 'pt', 'writer': 'torch'})
    print(f'st_python      {os.path.getsize(path) / 1024:6.1f} KB')


def make_objectives():
    """test/fixtures/objectives/objectives.safetensors: the two training objectives that give latents content, on a
    tiny tied model with a chain of latents at positions 4..6 of a 14-position sequence (test/objectives.test.ts).
      loss = (sum CE(text labels) + w_sd * sum CE(step-decode labels)) / N_text
             + w_d * sum_p ||hidden[p] - target[p]||^2 / (H * |P|)
    step decoding: labels at the positions after latents 4..6 (the latents' outputs decode a sub-step result), weight
    w_sd; distillation: the hidden states at positions P are pulled toward fixed teacher vectors `target` (no gradient).
    Writes case.ids, case.labels, case.latent_mask, case.aux_mask (1 where the label is a step-decode label),
    case.distill_pos I32 [|P|], case.target F32 [|P|, H], params, ref.loss, ref.hidden, ref.grad.<name>;
    metadata config and case {"w_sd", "w_d"}."""
    cfg = hf_config(48, 16, 32, 2, 4, 2, True)
    g = torch.Generator().manual_seed(11)
    P = init_params(cfg, g)
    T, H = 14, cfg['hidden_size']
    ids = torch.randint(0, cfg['vocab_size'], (1, T), generator=g)
    mask = torch.zeros(1, T, dtype=torch.bool)
    mask[0, 4:7] = True
    labels = ids.clone()
    labels[0, :3] = -100  # the question
    labels[0, 4:7] = -100  # nothing predicts a latent input ...
    aux = torch.zeros(1, T, dtype=torch.bool)
    for p in (5, 6, 7):  # ... except step decoding: the output at latent p-1 predicts labels[p]
        labels[0, p] = int(torch.randint(0, cfg['vocab_size'], (1,), generator=g))
        aux[0, p] = True
    dpos = torch.tensor([6, 9], dtype=torch.long)
    target = 0.5 * torch.randn(len(dpos), H, generator=g)
    w_sd, w_d = 0.7, 1.3

    def objective(Pd, dtype):
        hidden, logits = forward(Pd, cfg, ids, mask)
        V = logits.shape[-1]
        ce = torch.nn.functional.cross_entropy(logits[0, :-1].reshape(-1, V), labels[0, 1:], ignore_index=-100, reduction='none')
        w = torch.where(aux[0, 1:], torch.tensor(w_sd, dtype=dtype), torch.tensor(1.0, dtype=dtype))
        n_text = int(((labels[0, 1:] != -100) & ~aux[0, 1:]).sum())
        distill = ((hidden[0, dpos] - target.to(dtype)) ** 2).sum() / (H * len(dpos))
        return (ce * w).sum() / n_text + w_d * distill, hidden

    out = {}
    for dtype in (torch.float64, torch.float32):  # f32 last: that is what is written
        Pd = {k: v.to(dtype).clone().requires_grad_(True) for k, v in P.items()}
        loss, hidden = objective(Pd, dtype)
        loss.backward()
        out[dtype] = (loss.detach(), hidden.detach(), {k: v.grad.detach() for k, v in Pd.items()})
    loss, hidden, grads = out[torch.float32]
    gap = max(rel_gap(grads[k], out[torch.float64][2][k]) for k in grads)
    t = dict(P)
    t.update({'case.ids': ids.to(torch.int32), 'case.labels': labels.to(torch.int32), 'case.latent_mask': mask.to(torch.int32),
              'case.aux_mask': aux.to(torch.int32), 'case.distill_pos': dpos.to(torch.int32), 'case.target': target,
              'ref.loss': loss.reshape(1), 'ref.hidden': hidden})
    for k, v in grads.items():
        t['ref.grad.' + k] = v
    os.makedirs(os.path.join(OUT, 'objectives'), exist_ok=True)
    path = os.path.join(OUT, 'objectives', 'objectives.safetensors')
    save_safetensors(path, t, {'format': 'pt', 'config': json.dumps(cfg), 'case': json.dumps({'w_sd': w_sd, 'w_d': w_d, 'f64_grad_gap': gap})})
    print(f'objectives     {os.path.getsize(path) / 1024:6.1f} KB  loss {loss.item():.5f}  f32 vs f64 grad gap {gap:.1e}')


def make_gated_case(name, cfg, tau, seed, latent):
    """test/fixtures/gated/<name>.safetensors: gated feedback (qwen2_ref.gated_feedback) on a tiny model, B = 2, with
    a chain of fed-back latents in each sequence (test/gated-feedback.test.ts). The gate's parameters are random, not
    their training init (W_g = 0, where the gradient into h through the gate would vanish), so every path is exercised.
    Writes the params (latent.gate.weight [H,H] and latent.gate.bias [H] included), case.ids, case.labels,
    case.latent_mask, ref.logits, ref.hidden, ref.loss (mean CE over labels != -100), ref.grad.<name> for every
    parameter; metadata config and case {"name", "seed", "tau", "latent", "f64_gap"}."""
    g = torch.Generator().manual_seed(seed)
    P = init_params(cfg, g)
    H = cfg['hidden_size']
    P['latent.gate.weight'] = (0.8 * torch.randn(H, H, generator=g) / H ** 0.5).to(torch.float32)
    P['latent.gate.bias'] = (0.5 + 0.8 * torch.randn(H, generator=g)).to(torch.float32)
    B, T = len(latent), 12
    ids = torch.randint(0, cfg['vocab_size'], (B, T), generator=g)
    labels = ids.clone()
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b, ps in enumerate(latent):
        for p in ps:
            mask[b, p] = True
            labels[b, p] = -100

    def run(dtype):
        Pd = {k: v.to(dtype).clone().requires_grad_(True) for k, v in P.items()}
        hidden, logits = forward(Pd, cfg, ids, mask, feedback=gated_feedback(Pd, cfg, tau))
        loss = causal_lm_loss(logits, labels)
        loss.backward()
        return loss.detach(), hidden.detach(), logits.detach(), {k: v.grad.detach() for k, v in Pd.items()}

    loss64, hidden64, logits64, grads64 = run(torch.float64)
    loss, hidden, logits, grads = run(torch.float32)
    gap = {'logits': rel_gap(logits, logits64), 'hidden': rel_gap(hidden, hidden64), 'loss': rel_gap(loss, loss64),
           'grad_max': max(rel_gap(grads[k], grads64[k]) for k in grads)}
    t = dict(P)
    t.update({'case.ids': ids.to(torch.int32), 'case.labels': labels.to(torch.int32), 'case.latent_mask': mask.to(torch.int32),
              'ref.logits': logits, 'ref.hidden': hidden, 'ref.loss': loss.reshape(1)})
    for k, v in grads.items():
        t['ref.grad.' + k] = v
    os.makedirs(os.path.join(OUT, 'gated'), exist_ok=True)
    path = os.path.join(OUT, 'gated', name + '.safetensors')
    save_safetensors(path, t, {'format': 'pt', 'config': json.dumps(cfg),
                               'case': json.dumps({'name': name, 'seed': seed, 'tau': tau, 'latent': latent, 'f64_gap': gap})})
    gnorm = {k: float(grads[k].norm()) for k in ('latent.gate.weight', 'latent.gate.bias', 'model.embed_tokens.weight')}
    print(f'{name:14s} {os.path.getsize(path) / 1024:6.1f} KB  loss {loss.item():.5f}  grad norms ' +
          '  '.join(f'{k} {v:.3e}' for k, v in gnorm.items()))
    print('    f32 vs f64: ' + '  '.join(f'{k} {v:.1e}' for k, v in gap.items()))


def make_gated():
    make_gated_case('gated_tied', hf_config(48, 16, 32, 2, 4, 2, True), tau=1.0, seed=21, latent=[[4, 5, 6], [6, 7]])
    make_gated_case('gated_untied', hf_config(40, 24, 32, 2, 4, 2, False), tau=0.7, seed=22, latent=[[3, 4, 5], [7, 8]])


def main():
    torch.set_num_threads(1)  # determinism across machines
    if sys.argv[1:] == ['--only', 'objectives']:  # regenerate just this fixture (the others stay byte-identical)
        make_objectives()
        return
    if sys.argv[1:] == ['--only', 'gated']:
        make_gated()
        return
    os.makedirs(OUT, exist_ok=True)
    gaps = {}
    gaps['gqa2_tied'] = make_case('gqa2_tied', hf_config(64, 32, 48, 2, 4, 2, True), B=2, T=12, seed=1)
    gaps['gqa7_untied'] = make_case('gqa7_untied', hf_config(80, 28, 48, 2, 7, 1, False), B=2, T=11, seed=2)
    gaps['masked_labels'] = make_case('masked_labels', hf_config(72, 24, 40, 2, 4, 4, False), B=2, T=12, seed=3,
                                      mask_labels=half_masked)
    gaps['latent_chain'] = make_case('latent_chain', hf_config(64, 32, 48, 2, 4, 2, True), B=2, T=12, seed=4,
                                     latent=[[4, 5, 6], [7]])
    gaps['rope_eps'] = make_case('rope_eps', hf_config(64, 32, 40, 2, 2, 1, True, theta=1e6, eps=1e-5), B=2, T=12, seed=5)
    make_st_python()
    make_objectives()
    make_gated()
    worst = max(max(g.values()) for g in gaps.values())
    print(f'worst f32-vs-f64 relative gap over all cases and outputs: {worst:.2e}')


if __name__ == '__main__':
    main()
