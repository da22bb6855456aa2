#!/usr/bin/env python3
"""Independent PyTorch reference for Qwen2 (HF transformers `modeling_qwen2`, eager attention) with Coconut latents.

Written against the HF source, NOT against our TypeScript model, so parity tests compare two independent
implementations. Needs only torch (1.13 is enough) and numpy: no transformers, no safetensors package
(a small safetensors reader/writer lives here).

What it computes, exactly as HF Qwen2ForCausalLM does:
  * embeddings: embed_tokens[ids]
  * per layer:  x += o_proj(attn(input_layernorm(x)));  x += down(silu(gate(h)) * up(h)), h = post_attention_layernorm(x)
  * RMSNorm:    weight * (x * rsqrt(mean(x^2, -1) + eps))   (computed in f32, no "+1" on the weight)
  * q/k/v projections have biases, o_proj has none; MLP projections have none
  * rotary:     inv_freq = 1 / theta ** (arange(0, D, 2) / D); cos/sin of cat(freqs, freqs); q*cos + rotate_half(q)*sin,
                rotate_half(x) = cat(-x[D/2:], x[:D/2])
  * GQA:        repeat_kv: kv head j serves query heads j*n_rep .. j*n_rep + n_rep - 1
  * attention:  softmax(q k^T / sqrt(D) + causal mask) in f32, then @ v
  * final norm, then lm_head (tied: embed_tokens.weight)
  * loss:       labels are as long as ids and shifted inside: logits[:, :-1] predicts labels[:, 1:];
                cross-entropy averaged over labels != -100 across the whole batch.
Latent positions (Coconut): at a latent position p (p >= 1) the input embedding is not embed_tokens[ids[p]] but the
final-norm hidden state of position p-1. Latents are filled in increasing position order, one full causal pass each
(a latent at p+1 right after one at p sees the hidden state computed with p's latent input), then one final pass;
plain autograd through the chain gives exact gradients. forward(..., feedback=gated_feedback(P, cfg, tau)) feeds
instead HRPO-style gated inputs (see gated_feedback; the CLI below always uses plain feedback).

CLI (mirrors the TypeScript `dump` command):
  /usr/bin/python3 scripts/reference/qwen2_ref.py --model DIR --case CASE.json --out OUT.safetensors [--no-grad]
  DIR holds config.json + model.safetensors (or model.safetensors.index.json + shards), any of F32/F16/BF16;
  weights are upcast to f32 and everything is computed in f32 (HF would compute a bf16 model in bf16).
  CASE.json: {"ids": [...], "labels": [...], "latent": [positions]} for one sequence ("labels" optional: no loss/grads).
  OUT (F32): logits [T,V], loss [1], hidden [T,H] (final-norm), grad.<HF name> for every parameter.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------------------------
# safetensors (https://github.com/huggingface/safetensors): u64 LE header length N, N bytes of JSON header
# {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data section.
# The writer follows the reference implementation: tensors laid out by descending dtype size then name (so every
# tensor is aligned to its element size) and the header padded with spaces to a multiple of 8 bytes.
# ---------------------------------------------------------------------------------------------------------------

ST_DTYPES = {
    'F64': torch.float64, 'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16,
    'I64': torch.int64, 'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8, 'U8': torch.uint8, 'BOOL': torch.bool,
}
TORCH_TO_ST = {v: k for k, v in ST_DTYPES.items()}


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        t = t.view(torch.int16)
    assert sys.byteorder == 'little', 'safetensors is little-endian; this writer assumes a little-endian host'
    return t.numpy().tobytes()


def save_safetensors(path: str, tensors: dict, metadata: dict | None = None) -> None:
    """Writes {name: torch.Tensor} to `path` atomically (temp file + rename)."""
    order = sorted(tensors, key=lambda n: (-tensors[n].element_size(), n))
    header: dict = {}
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    blobs, off = [], 0
    for name in order:
        t = tensors[name]
        if t.dtype not in TORCH_TO_ST:
            raise ValueError(f'{path}: tensor {name!r} has unsupported dtype {t.dtype}')
        b = _tensor_bytes(t)
        header[name] = {'dtype': TORCH_TO_ST[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(',', ':')).encode()
    hb += b' ' * ((8 - len(hb) % 8) % 8)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path: str) -> tuple[dict, dict]:
    """Returns ({name: torch.Tensor}, metadata). Validates offsets like the reference implementation."""
    with open(path, 'rb') as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError(f'{path}: file too short ({len(buf)} bytes)')
    (n,) = struct.unpack('<Q', buf[:8])
    if 8 + n > len(buf):
        raise ValueError(f'{path}: header length {n} exceeds file size {len(buf)}')
    header = json.loads(buf[8:8 + n].decode())
    data = memoryview(buf)[8 + n:]
    meta = header.pop('__metadata__', {}) or {}
    out, spans = {}, []
    for name, e in header.items():
        dt = ST_DTYPES.get(e['dtype'])
        if dt is None:
            raise ValueError(f'{path}: tensor {name!r} has unsupported dtype {e["dtype"]}')
        b, end = e['data_offsets']
        shape = [int(s) for s in e['shape']]
        numel = math.prod(shape)
        esize = torch.empty((), dtype=dt).element_size()
        if end > len(data) or b > end or end - b != numel * esize:
            raise ValueError(f'{path}: tensor {name!r} has bad offsets [{b}, {end}] for {e["dtype"]}{shape}')
        spans.append((b, end, name))
        if numel == 0:
            out[name] = torch.empty(shape, dtype=dt)
            continue
        raw = bytearray(data[b:end])
        if dt == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=dt)
        out[name] = t.reshape(shape).clone()
    spans.sort()
    pos = 0
    for b, end, name in spans:
        if b != pos:
            raise ValueError(f'{path}: tensor {name!r} starts at {b}, expected {pos} (overlap or hole)')
        pos = end
    if pos != len(data):
        raise ValueError(f'{path}: tensors cover {pos} of {len(data)} data bytes')
    return out, meta


def load_hf_dir(model_dir: str) -> tuple[dict, dict]:
    """config.json + model.safetensors or model.safetensors.index.json (shards) -> (config, {name: tensor})."""
    with open(os.path.join(model_dir, 'config.json')) as f:
        config = json.load(f)
    single = os.path.join(model_dir, 'model.safetensors')
    if os.path.exists(single):
        tensors, _ = load_safetensors(single)
    else:
        with open(os.path.join(model_dir, 'model.safetensors.index.json')) as f:
            index = json.load(f)
        tensors = {}
        for shard in sorted(set(index['weight_map'].values())):
            t, _ = load_safetensors(os.path.join(model_dir, shard))
            tensors.update(t)
    return config, tensors


# ---------------------------------------------------------------------------------------------------------------
# The model, functional over a {HF name: tensor} dict (so the same code runs in f32 and in f64).
# ---------------------------------------------------------------------------------------------------------------

def param_shapes(cfg: dict) -> dict:
    """Every HF parameter name of Qwen2ForCausalLM with its shape (lm_head only when untied)."""
    V, H, I = cfg['vocab_size'], cfg['hidden_size'], cfg['intermediate_size']
    nh, nkv = cfg['num_attention_heads'], cfg.get('num_key_value_heads') or cfg['num_attention_heads']
    D = H // nh
    s = {'model.embed_tokens.weight': [V, H]}
    for i in range(cfg['num_hidden_layers']):
        p = f'model.layers.{i}.'
        s[p + 'self_attn.q_proj.weight'] = [nh * D, H]
        s[p + 'self_attn.q_proj.bias'] = [nh * D]
        s[p + 'self_attn.k_proj.weight'] = [nkv * D, H]
        s[p + 'self_attn.k_proj.bias'] = [nkv * D]
        s[p + 'self_attn.v_proj.weight'] = [nkv * D, H]
        s[p + 'self_attn.v_proj.bias'] = [nkv * D]
        s[p + 'self_attn.o_proj.weight'] = [H, nh * D]
        s[p + 'mlp.gate_proj.weight'] = [I, H]
        s[p + 'mlp.up_proj.weight'] = [I, H]
        s[p + 'mlp.down_proj.weight'] = [H, I]
        s[p + 'input_layernorm.weight'] = [H]
        s[p + 'post_attention_layernorm.weight'] = [H]
    s['model.norm.weight'] = [H]
    if not cfg.get('tie_word_embeddings', False):
        s['lm_head.weight'] = [V, H]
    return s


def rms_norm(x, w, eps):
    # HF Qwen2RMSNorm: upcast to f32 (no-op here: we compute in f32, or f64 for the accuracy check)
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def rotary_cos_sin(T, D, theta, dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).to(dtype) / D))
    t = torch.arange(T, dtype=dtype)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, D]
    return emb.cos(), emb.sin()


def repeat_kv(x, n_rep):
    # [B, nkv, T, D] -> [B, nkv*n_rep, T, D]; query head h uses kv head h // n_rep
    B, nkv, T, D = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(B, nkv, n_rep, T, D).reshape(B, nkv * n_rep, T, D)


def body(P: dict, cfg: dict, x):
    """Decoder stack + final norm on input embeddings x [B, T, H] -> final-norm hidden [B, T, H]."""
    B, T, H = x.shape
    nh = cfg['num_attention_heads']
    nkv = cfg.get('num_key_value_heads') or nh
    D = H // nh
    eps = cfg['rms_norm_eps']
    cos, sin = rotary_cos_sin(T, D, float(cfg.get('rope_theta', 10000.0)), x.dtype)
    mask = torch.full((T, T), torch.finfo(x.dtype).min, dtype=x.dtype).triu(1)  # HF adds finfo.min above the diagonal
    for i in range(cfg['num_hidden_layers']):
        p = f'model.layers.{i}.'
        h = rms_norm(x, P[p + 'input_layernorm.weight'], eps)
        q = torch.nn.functional.linear(h, P[p + 'self_attn.q_proj.weight'], P[p + 'self_attn.q_proj.bias'])
        k = torch.nn.functional.linear(h, P[p + 'self_attn.k_proj.weight'], P[p + 'self_attn.k_proj.bias'])
        v = torch.nn.functional.linear(h, P[p + 'self_attn.v_proj.weight'], P[p + 'self_attn.v_proj.bias'])
        q = q.view(B, T, nh, D).transpose(1, 2)
        k = k.view(B, T, nkv, D).transpose(1, 2)
        v = v.view(B, T, nkv, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, nh // nkv)
        v = repeat_kv(v, nh // nkv)
        s = torch.matmul(q, k.transpose(2, 3)) * (D ** -0.5) + mask
        a = torch.softmax(s, dim=-1, dtype=torch.float32).to(q.dtype) if q.dtype != torch.float64 else torch.softmax(s, dim=-1)
        o = torch.matmul(a, v).transpose(1, 2).reshape(B, T, nh * D)
        x = x + torch.nn.functional.linear(o, P[p + 'self_attn.o_proj.weight'])
        h = rms_norm(x, P[p + 'post_attention_layernorm.weight'], eps)
        m = torch.nn.functional.silu(torch.nn.functional.linear(h, P[p + 'mlp.gate_proj.weight'])) * \
            torch.nn.functional.linear(h, P[p + 'mlp.up_proj.weight'])
        x = x + torch.nn.functional.linear(m, P[p + 'mlp.down_proj.weight'])
    return rms_norm(x, P['model.norm.weight'], eps)


def output_head(P: dict, cfg: dict):
    """The LM head's weight [V, H]: the embedding table itself when tied."""
    return P['model.embed_tokens.weight'] if cfg.get('tie_word_embeddings', False) else P['lm_head.weight']


def gated_feedback(P: dict, cfg: dict, tau: float = 1.0):
    """HRPO-style gated feedback (Yue et al. 2025), written from the paper's description, not from our TypeScript:
    the next input is a per-dimension convex mix of the embedding of the model's own next-token distribution and the
    hidden state itself,
        e_hat = softmax(lm_head(h) / tau) @ embed_tokens,   g = sigmoid(h @ W_g^T + b_g),   x = g * e_hat + (1 - g) * h
    with W_g = P['latent.gate.weight'] [H, H] and b_g = P['latent.gate.bias'] [H]. Returns h [B, H] -> x [B, H]."""
    def feed(h):
        probs = torch.softmax(torch.nn.functional.linear(h, output_head(P, cfg)) / tau, dim=-1)
        e_hat = probs @ P['model.embed_tokens.weight']
        g = torch.sigmoid(torch.nn.functional.linear(h, P['latent.gate.weight'], P['latent.gate.bias']))
        return g * e_hat + (1 - g) * h
    return feed


def forward(P: dict, cfg: dict, ids, latent_mask=None, feedback=None):
    """ids [B, T] long, latent_mask [B, T] bool (or None) -> (final-norm hidden [B,T,H], logits [B,T,V]).
    feedback: h [B, H] -> latent input [B, H] (default: h itself, Coconut; see gated_feedback)."""
    emb = P['model.embed_tokens.weight'][ids]
    if latent_mask is not None and bool(latent_mask.any()):
        if bool(latent_mask[:, 0].any()):
            raise ValueError('a latent at position 0 has no previous hidden state')
        for p in sorted({int(p) for p in torch.nonzero(latent_mask)[:, 1]}):
            h = body(P, cfg, emb)  # causal: hidden[p-1] depends only on inputs 0..p-1, all final by now
            fed = h[:, p - 1] if feedback is None else feedback(h[:, p - 1])
            row = torch.where(latent_mask[:, p, None], fed, emb[:, p])
            emb = torch.cat([emb[:, :p], row[:, None], emb[:, p + 1:]], dim=1)  # no in-place: keeps autograd exact
    hidden = body(P, cfg, emb)
    logits = torch.nn.functional.linear(hidden, output_head(P, cfg))
    return hidden, logits


def causal_lm_loss(logits, labels):
    """HF ForCausalLMLoss without num_items_in_batch: mean CE of logits[:, :-1] vs labels[:, 1:], ignoring -100."""
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', required=True, help='directory with config.json + model.safetensors')
    ap.add_argument('--case', required=True, help='JSON {"ids": [...], "labels": [...], "latent": [positions]}')
    ap.add_argument('--out', required=True, help='output .safetensors')
    ap.add_argument('--no-grad', action='store_true', help='skip the backward pass (no grad.* tensors)')
    a = ap.parse_args(argv)
    cfg, raw = load_hf_dir(a.model)
    with open(a.case) as f:
        case = json.load(f)
    shapes = param_shapes(cfg)
    P = {}
    for name, shape in shapes.items():
        if name not in raw:
            raise SystemExit(f'{a.model}: missing tensor {name!r}')
        if list(raw[name].shape) != shape:
            raise SystemExit(f'{a.model}: tensor {name!r} has shape {list(raw[name].shape)}, expected {shape}')
        P[name] = raw[name].to(torch.float32).requires_grad_(not a.no_grad)
    ids = torch.tensor([case['ids']], dtype=torch.long)
    T = ids.shape[1]
    mask = torch.zeros(1, T, dtype=torch.bool)
    for p in case.get('latent', []):
        if not 1 <= p < T:
            raise SystemExit(f'{a.case}: latent position {p} outside 1..{T - 1}')
        mask[0, p] = True
    out = {}
    hidden, logits = forward(P, cfg, ids, mask)
    out['logits'] = logits[0].detach()
    out['hidden'] = hidden[0].detach()
    labels = case.get('labels')
    if labels is not None:
        if len(labels) != T:
            raise SystemExit(f'{a.case}: labels has {len(labels)} entries, ids has {T}')
        loss = causal_lm_loss(logits, torch.tensor([labels], dtype=torch.long))
        out['loss'] = loss.detach().reshape(1)
        if not a.no_grad and torch.isfinite(loss):
            loss.backward()
            for name, t in P.items():
                out['grad.' + name] = t.grad.detach().clone()
    save_safetensors(a.out, {k: v.to(torch.float32).contiguous() for k, v in out.items()}, {'format': 'pt'})
    print(f'wrote {a.out}: T={T} loss={out["loss"].item() if "loss" in out else "n/a"}', file=sys.stderr)


if __name__ == '__main__':
    main()
