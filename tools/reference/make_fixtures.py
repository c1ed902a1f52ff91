#!/usr/bin/env python3
"""Generate the golden test fixtures in tests/fixtures/ (deterministic).

    /usr/bin/python3 tools/reference/make_fixtures.py [--out tests/fixtures]

Builds a tiny random RWKV-7 model with realistic-looking weights, writes it in
the formats the engine must load (.pth fp32/bf16/fp16, safetensors with native
and Hugging Face names), a PEFT-style state-tuning file, a token sequence, and
the float64 reference outputs (tools/reference/rwkv7_ref.py) for each weight
precision.  See tests/fixtures/README.md and docs/fixtures.md.

torch is used only to round to bf16/fp16 and to write .pth files; all model
math is in rwkv7_ref.py (NumPy float64).
"""

import argparse
import collections
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rwkv7_ref import RWKV7Ref  # noqa: E402

SEED = 20250701

# Tiny model shapes (F = 2C on purpose, to keep the fixtures small).
L, C, N = 2, 128, 64
H = C // N
F = 256
V = 256
DW, DA, DV, DG = 16, 16, 8, 32
T = 24                   # token sequence length
TUNE_TOKENS = 320        # tokens used to produce the "tuned" state


# ---------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------

def orthogonal(rng, rows, cols, gain=1.0):
    """Random (semi-)orthogonal [rows, cols] matrix times gain."""
    n = max(rows, cols)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q = q * np.sign(np.diag(r))[None, :]
    return gain * q[:rows, :cols]


def make_weights(rng):
    """Float64 weights with native names, STORED shapes and the key order of rwkv7.md §1.2."""
    w = collections.OrderedDict()
    vec = lambda x: np.asarray(x, dtype=np.float64).reshape(1, 1, C)   # noqa: E731

    # Embedding with unit-ish scale so that LN0 is well conditioned.
    emb = rng.standard_normal((V, C))
    w['emb.weight'] = emb

    for l in range(L):
        p = f'blocks.{l}.'
        w[p + 'ln1.weight'] = 1.0 + 0.05 * rng.standard_normal(C)
        w[p + 'ln1.bias'] = 0.02 * rng.standard_normal(C)
        w[p + 'ln2.weight'] = 1.0 + 0.05 * rng.standard_normal(C)
        w[p + 'ln2.bias'] = 0.02 * rng.standard_normal(C)
        if l == 0:
            w[p + 'ln0.weight'] = 1.0 + 0.05 * rng.standard_normal(C)
            w[p + 'ln0.bias'] = 0.02 * rng.standard_normal(C)

        a = p + 'att.'
        # token-shift mix coefficients in (0, 1)
        for name in ('x_r', 'x_w', 'x_k', 'x_v', 'x_a', 'x_g'):
            w[a + name] = vec(rng.uniform(0.05, 0.95, C))
        # decay bias: per head a spread from -6 (decay ~0.9985) to +2.5 (decay ~0.57)
        w0 = np.concatenate([rng.permutation(np.linspace(-6.0, 2.5, N)) for _ in range(H)])
        w[a + 'w0'] = vec(w0 + 0.2 * rng.standard_normal(C))
        w[a + 'r_k'] = 0.15 * rng.standard_normal((H, N))
        w[a + 'w1'] = rng.standard_normal((C, DW)) / np.sqrt(C)
        w[a + 'w2'] = 0.6 * rng.standard_normal((DW, C)) / np.sqrt(DW)
        w[a + 'a1'] = rng.standard_normal((C, DA)) / np.sqrt(C)
        w[a + 'a2'] = 0.8 * rng.standard_normal((DA, C)) / np.sqrt(DA)
        w[a + 'a0'] = vec(-0.2 + 0.6 * rng.standard_normal(C))
        w[a + 'g1'] = 1.5 * rng.standard_normal((C, DG)) / np.sqrt(C)
        w[a + 'g2'] = 2.0 * rng.standard_normal((DG, C)) / np.sqrt(DG)
        if l > 0:   # layer 0 has no v0/v1/v2 in released files (§1.2)
            w[a + 'v2'] = 0.8 * rng.standard_normal((DV, C)) / np.sqrt(DV)
            w[a + 'v1'] = rng.standard_normal((C, DV)) / np.sqrt(C)
            w[a + 'v0'] = vec(0.3 + 0.8 * rng.standard_normal(C))
        w[a + 'k_k'] = vec(0.85 + 0.05 * rng.standard_normal(C))
        w[a + 'k_a'] = vec(1.0 + 0.05 * rng.standard_normal(C))
        w[a + 'receptance.weight'] = orthogonal(rng, C, C, 1.0)
        w[a + 'key.weight'] = orthogonal(rng, C, C, 1.0)
        w[a + 'value.weight'] = orthogonal(rng, C, C, 1.0)
        w[a + 'output.weight'] = orthogonal(rng, C, C, 1.0)
        w[a + 'ln_x.weight'] = 0.7 + 0.05 * rng.standard_normal(C)
        w[a + 'ln_x.bias'] = 0.02 * rng.standard_normal(C)

        f = p + 'ffn.'
        w[f + 'x_k'] = vec(rng.uniform(0.05, 0.95, C))
        w[f + 'key.weight'] = rng.standard_normal((F, C)) / np.sqrt(C)
        w[f + 'value.weight'] = 0.7 * rng.standard_normal((C, F)) / np.sqrt(F)

    w['ln_out.weight'] = 1.0 + 0.05 * rng.standard_normal(C)
    w['ln_out.bias'] = 0.02 * rng.standard_normal(C)
    # LM head: partly tied to a permutation of the (LN0-normalised) embedding,
    # partly random, so logits spread over several units with a clear top-1.
    e = emb - emb.mean(1, keepdims=True)
    e /= np.sqrt((e ** 2).mean(1, keepdims=True))
    perm = rng.permutation(V)
    w['head.weight'] = (0.85 * e[perm] + 1.0 * rng.standard_normal((V, C))) / np.sqrt(C)
    return w


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------

def to_torch(weights, dtype):
    """numpy float64 dict -> OrderedDict of torch tensors in `dtype` (rounded once, from fp32)."""
    out = collections.OrderedDict()
    for k, v in weights.items():
        t32 = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
        out[k] = t32.to(dtype).contiguous()
    return out


def torch_to_f64(sd):
    return {k: v.float().numpy().astype(np.float64) for k, v in sd.items()}


_ST_DTYPE = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16'}


def tensor_bytes(t):
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().astype('<i2').tobytes()
    if t.dtype == torch.float16:
        return t.contiguous().numpy().astype('<f2').tobytes()
    return t.contiguous().numpy().astype('<f4').tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer: u64 LE header length, JSON header (space padded
    to a multiple of 8), then the raw little-endian tensor data, contiguous, in
    insertion order.  Every tensor here is a multiple of 8 bytes, so every
    offset is 8-byte aligned.  Like files written by the `safetensors` package,
    the header lists "__metadata__" first and the tensor names sorted; the data
    stays in insertion order, so header order != data order (legal: readers
    must use data_offsets)."""
    entries = {}
    blobs = []
    off = 0
    for name, t in tensors.items():
        b = tensor_bytes(t)
        assert len(b) % 8 == 0, name
        entries[name] = {'dtype': _ST_DTYPE[t.dtype], 'shape': list(t.shape),
                         'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header = {'__metadata__': metadata or {'format': 'pt'}}
    for name in sorted(entries):
        header[name] = entries[name]
    hj = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hj += b' ' * ((8 - len(hj) % 8) % 8)
    with open(path, 'wb') as fh:
        fh.write(struct.pack('<Q', len(hj)))
        fh.write(hj)
        for b in blobs:
            fh.write(b)


def read_safetensors(path):
    """Reader used only to self-check the writer."""
    with open(path, 'rb') as fh:
        raw = fh.read()
    n = struct.unpack('<Q', raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for k, m in hdr.items():
        if k == '__metadata__':
            continue
        s, e = m['data_offsets']
        buf = raw[base + s: base + e]
        if m['dtype'] == 'BF16':
            u = np.frombuffer(buf, '<u2').astype(np.uint32) << 16
            a = u.view(np.float32)
        elif m['dtype'] == 'F16':
            a = np.frombuffer(buf, '<f2').astype(np.float32)
        else:
            a = np.frombuffer(buf, '<f4')
        out[k] = a.reshape(m['shape']).astype(np.float64)
    return out


def native_to_hf(sd):
    """Native BlinkDL names/shapes -> Hugging Face (fla) names/shapes, rwkv7.md §1.6."""
    out = collections.OrderedDict()
    top = {'emb.weight': 'model.embeddings.weight', 'ln_out.weight': 'model.norm.weight',
           'ln_out.bias': 'model.norm.bias', 'head.weight': 'lm_head.weight'}
    proj = {'receptance': 'r_proj', 'key': 'k_proj', 'value': 'v_proj', 'output': 'o_proj',
            'ln_x': 'g_norm'}
    for name, t in sd.items():
        if name in top:
            out[top[name]] = t
            continue
        parts = name.split('.')
        l, mod, rest = parts[1], parts[2], parts[3:]
        pre = f'model.layers.{l}.'
        if mod in ('ln0', 'ln1', 'ln2'):
            out[pre + {'ln0': 'pre_norm', 'ln1': 'attn_norm', 'ln2': 'ffn_norm'}[mod] + '.' + rest[0]] = t
        elif mod == 'ffn':
            if rest[0] == 'x_k':
                out[pre + 'ffn.x_k'] = t.reshape(C)                    # [C] in fla
            else:
                out[pre + 'ffn.' + '.'.join(rest)] = t                 # key/value [out,in]
        else:  # att
            r0 = rest[0]
            if len(r0) == 2 and r0[0] in 'wavg' and r0[1] in '012':
                typ, num = r0
                if num == '0':
                    out[pre + f'attn.{typ}_lora.lora.2.bias'] = t.reshape(C)
                elif num == '1':
                    out[pre + f'attn.{typ}_lora.lora.0.weight'] = t.t().contiguous()   # [D, C]
                else:
                    out[pre + f'attn.{typ}_lora.lora.2.weight'] = t.t().contiguous()   # [C, D]
            elif r0 in proj:
                out[pre + f'attn.{proj[r0]}.{rest[1]}'] = t
            elif r0 in ('k_k', 'k_a'):
                out[pre + 'attn.' + r0] = t.reshape(C)
            elif r0 == 'r_k':
                out[pre + 'attn.r_k'] = t                              # [H, N]
            elif r0.startswith('x_'):
                out[pre + 'attn.' + r0] = t                            # [1,1,C]
            else:
                raise KeyError(name)
    return out


def hf_to_native_check(name, a):
    """Inverse of native_to_hf, written from the table of rwkv7.md §1.6 (self-check only)."""
    fixed = {'model.embeddings.weight': 'emb.weight', 'model.norm.weight': 'ln_out.weight',
             'model.norm.bias': 'ln_out.bias', 'lm_head.weight': 'head.weight'}
    if name in fixed:
        return fixed[name], a
    _, _, l, *rest = name.split('.')
    rest = '.'.join(rest)
    norms = {'pre_norm': 'ln0', 'attn_norm': 'ln1', 'ffn_norm': 'ln2'}
    mod, tail = rest.split('.', 1)
    if mod in norms:
        return f'blocks.{l}.{norms[mod]}.{tail}', a
    if mod == 'ffn':
        return f'blocks.{l}.ffn.{tail}', (a.reshape(1, 1, C) if tail == 'x_k' else a)
    if tail.startswith(('w_lora', 'a_lora', 'v_lora', 'g_lora')):
        typ = tail[0]
        if tail.endswith('lora.2.bias'):
            return f'blocks.{l}.att.{typ}0', a.reshape(1, 1, C)
        if tail.endswith('lora.0.weight'):
            return f'blocks.{l}.att.{typ}1', a.T
        return f'blocks.{l}.att.{typ}2', a.T
    projs = {'r_proj': 'receptance', 'k_proj': 'key', 'v_proj': 'value', 'o_proj': 'output',
             'g_norm': 'ln_x'}
    head, _, sub = tail.partition('.')
    if head in projs:
        return f'blocks.{l}.att.{projs[head]}.{sub}', a
    if tail in ('k_k', 'k_a'):
        return f'blocks.{l}.att.{tail}', a.reshape(1, 1, C)
    return f'blocks.{l}.att.{tail}', a          # x_* [1,1,C], r_k [H,N]


# ---------------------------------------------------------------------------
# Checks and statistics
# ---------------------------------------------------------------------------

def top_margins(logits):
    s = np.sort(logits, axis=-1)
    gap = s[:, -1] - s[:, -2]
    rng_ = s[:, -1] - s[:, 0]
    return gap, rng_


def run_both_modes(model, tokens, state0, label):
    """Sequence mode, one-token mode and a 2-chunk prefill; assert they agree."""
    lg_seq, st_seq = model.forward_seq(tokens, model.copy_state(state0))
    st = model.copy_state(state0)
    rows = []
    for tok in tokens:
        lg, st = model.forward_one(tok, st)
        rows.append(lg)
    lg_one = np.stack(rows)
    cut = len(tokens) // 3
    lg_a, st_c = model.forward_seq(tokens[:cut], model.copy_state(state0))
    lg_b, st_c = model.forward_seq(tokens[cut:], st_c)
    lg_chunk = np.concatenate([lg_a, lg_b])

    scale = max(1.0, np.abs(lg_seq).max())
    fs, fo, fc = (RWKV7Ref.flatten_state(s) for s in (st_seq, st, st_c))
    sscale = max(1.0, np.abs(fs).max())
    d_one = np.abs(lg_seq - lg_one).max() / scale
    d_chunk = np.abs(lg_seq - lg_chunk).max() / scale
    d_st = max(np.abs(fs - fo).max(), np.abs(fs - fc).max()) / sscale
    print(f'  [{label}] seq vs one-token: rel logits diff {d_one:.2e}; seq vs 2-chunk {d_chunk:.2e}; '
          f'rel state diff {d_st:.2e}')
    assert d_one < 1e-12 and d_chunk < 1e-12 and d_st < 1e-12, 'reference modes disagree'
    return lg_seq, st_seq


def print_stats(model, tokens, label, logits, state):
    gap, rg = top_margins(logits)
    ok = gap > 0.05 * rg
    print(f'  [{label}] max|logit| {np.abs(logits).max():.3f}, logit range per position '
          f'{rg.min():.2f}..{rg.max():.2f}, logit std {logits.std():.3f}')
    print(f'  [{label}] top1-top2 margin: min {gap.min():.3f} median {np.median(gap):.3f}; '
          f'positions with margin > 0.05*range: {ok.sum()}/{len(ok)}')
    S = np.stack([s[1] for s in state])
    print(f'  [{label}] final WKV state: max|S| {np.abs(S).max():.3f}, rms {np.sqrt((S ** 2).mean()):.3f}; '
          f'shift states rms {np.sqrt(np.mean([np.mean(s[0] ** 2) for s in state])):.3f}')
    return ok.mean()


def collect_internal_stats(model, tokens):
    acc = collections.defaultdict(list)

    def probe(kind, l, d):
        for k, v in d.items():
            acc[(kind, k)].append(np.asarray(v))
    model.forward_seq(tokens, model.zero_state(), probe=probe)
    dec = np.concatenate([x.ravel() for x in acc[('att', 'decay')]])
    a = np.concatenate([x.ravel() for x in acc[('att', 'a')]])
    g = np.concatenate([x.ravel() for x in acc[('att', 'g')]])
    h = np.concatenate([x.ravel() for x in acc[('ffn', 'h')]])
    zero_frac = float(np.mean(h == 0.0))
    print(f'  decay range {dec.min():.4f}..{dec.max():.6f} (quantiles 5/50/95%: '
          f'{np.quantile(dec, .05):.3f}/{np.quantile(dec, .5):.3f}/{np.quantile(dec, .95):.4f})')
    print(f'  a range {a.min():.3f}..{a.max():.3f}; gate g std {g.std():.3f}')
    print(f'  FFN relu^2: exact-zero fraction {zero_frac:.3f}, max {h.max():.2f}')
    # how much the blocks matter: logits of the same model with every block skipped
    lg, _ = model.forward_seq(tokens, model.zero_state())
    x = model.emb[np.asarray(tokens)]
    lg0 = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5) \
        * model.ln_out_w + model.ln_out_b
    lg0 = lg0 @ model.head.T
    print(f'  blocks skipped: max|dlogit| {np.abs(lg - lg0).max():.3f}, '
          f'top-1 unchanged on {np.mean(lg.argmax(-1) == lg0.argmax(-1)):.2f} of positions')
    return dec, zero_frac


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 '..', '..', 'tests', 'fixtures'))
    args = ap.parse_args()
    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)
    P = lambda name: os.path.join(out, name)   # noqa: E731

    rng = np.random.default_rng(SEED)
    w64 = make_weights(rng)
    tok_rng = np.random.default_rng(SEED + 1)
    tokens = [int(t) for t in tok_rng.integers(1, V - 1, T)]
    tokens[3] = 0
    tokens[11] = V - 1
    tokens[17] = 0
    tune_tokens = [int(t) for t in np.random.default_rng(SEED + 2).integers(0, V, TUNE_TOKENS)]

    sds = {'f32': to_torch(w64, torch.float32),
           'bf16': to_torch(w64, torch.bfloat16),
           'f16': to_torch(w64, torch.float16)}

    results = {}
    for dt in ('f32', 'bf16', 'f16'):
        print(f'== {dt}')
        model = RWKV7Ref(torch_to_f64(sds[dt]))
        assert (model.L, model.C, model.H, model.F, model.V) == (L, C, H, F, V)
        assert (model.Dw, model.Da, model.Dv, model.Dg) == (DW, DA, DV, DG)
        lg, st = run_both_modes(model, tokens, model.zero_state(), dt)
        frac_ok = print_stats(model, tokens, dt, lg, st)
        assert frac_ok >= 0.75, 'top-1 margins too small'
        results[dt] = (model, lg, st)

    model32, lg32, st32 = results['f32']
    print('== internal statistics (f32 weights)')
    dec, zero_frac = collect_internal_stats(model32, tokens)
    assert dec.min() < 0.62 and dec.max() > 0.995, 'decays do not cover (0.55, 1)'
    assert 0.3 < zero_frac < 0.7, 'unrealistic relu^2 sparsity'
    S = np.stack([s[1] for s in st32])
    assert np.abs(S).max() > 0.5, 'WKV state stays near zero'

    # The "tuned" state: the f32 model's WKV state after TUNE_TOKENS random
    # tokens (realistic scale), perturbed a little so it is not exactly a
    # reachable state, rounded to fp32.  Shifts start at zero (§6).
    _, st_tune = model32.forward_seq(tune_tokens, model32.zero_state())
    pert = np.random.default_rng(SEED + 3)
    time_state = collections.OrderedDict()
    for l in range(L):
        S_l = st_tune[l][1]
        S_l = S_l + 0.1 * S_l.std() * pert.standard_normal(S_l.shape)
        time_state[f'blocks.{l}.att.time_state'] = torch.from_numpy(S_l.astype(np.float32))
    ts64 = {k: v.numpy().astype(np.float64) for k, v in time_state.items()}
    print('== f32 + tuned state')
    tS = np.stack(list(ts64.values()))
    print(f'  time_state max|S| {np.abs(tS).max():.3f}, rms {np.sqrt((tS ** 2).mean()):.3f}, '
          f'asymmetry rms |S-S^T| {np.sqrt(((tS - tS.transpose(0, 1, 3, 2)) ** 2).mean()):.3f}')
    init = model32.state_from_time_state(ts64)
    lg_t, st_t = run_both_modes(model32, tokens, init, 'f32-tuned')
    print_stats(model32, tokens, 'f32-tuned', lg_t, st_t)
    # sensitivity: the tuned state must change the logits, and the transposed
    # state (a classic layout bug) must give clearly different logits.
    init_T = [(a, S.transpose(0, 2, 1).copy(), f) for (a, S, f) in init]
    lg_tT, _ = model32.forward_seq(tokens, init_T)
    d_zero = np.abs(lg_t - lg32).max()
    d_tr = np.abs(lg_t - lg_tT).max()
    print(f'  max|tuned - untuned| logits {d_zero:.3f}; max|tuned - tuned(transposed S)| {d_tr:.3f}; '
          f'first position: {np.abs(lg_t[0] - lg32[0]).max():.3f} / {np.abs(lg_t[0] - lg_tT[0]).max():.3f}')
    assert d_zero > 0.5 and d_tr > 0.2

    print('== cross-precision')
    for dt in ('bf16', 'f16'):
        lg = results[dt][1]
        same = np.mean(lg.argmax(-1) == lg32.argmax(-1))
        print(f'  {dt} vs f32 reference: max|dlogit| {np.abs(lg - lg32).max():.4f}, top-1 agreement {same:.3f}')

    # ---------------------------------------------------------------- write
    torch.save(sds['f32'], P('tiny-f32.pth'))
    torch.save(sds['bf16'], P('tiny-bf16.pth'))
    torch.save(sds['f16'], P('tiny-f16.pth'))
    write_safetensors(P('tiny-bf16.safetensors'), sds['bf16'])
    hf = native_to_hf(sds['bf16'])
    write_safetensors(P('tiny-bf16-hf.safetensors'), hf)
    torch.save(dict(time_state), P('tiny-state.pth'))
    with open(P('tiny-tokens.json'), 'w') as fh:
        json.dump({'tokens': tokens}, fh)
        fh.write('\n')
    for dt in ('f32', 'bf16', 'f16'):
        _, lg, st = results[dt]
        np.save(P(f'tiny-{dt}-logits.npy'), lg.astype(np.float32))
        np.save(P(f'tiny-{dt}-state.npy'), RWKV7Ref.flatten_state(st).astype(np.float32))
    np.save(P('tiny-f32-tuned-logits.npy'), lg_t.astype(np.float32))
    np.save(P('tiny-f32-tuned-state.npy'), RWKV7Ref.flatten_state(st_t).astype(np.float32))

    # ---------------------------------------------------------- self-checks
    ref_bf16 = torch_to_f64(sds['bf16'])
    back = read_safetensors(P('tiny-bf16.safetensors'))
    assert set(back) == set(ref_bf16)
    for k in ref_bf16:
        assert back[k].shape == ref_bf16[k].shape and np.array_equal(back[k], ref_bf16[k]), k
    # HF file: map back with an independently written inverse and compare
    back_hf = read_safetensors(P('tiny-bf16-hf.safetensors'))
    assert len(back_hf) == len(ref_bf16)
    assert 'model.layers.0.attn.v_lora.lora.0.weight' not in back_hf
    for k, a in back_hf.items():
        nk, arr = hf_to_native_check(k, a)
        assert arr.shape == ref_bf16[nk].shape and np.array_equal(arr, ref_bf16[nk]), (k, nk)
    for dt in ('f32', 'bf16', 'f16'):
        re = torch.load(P(f'tiny-{dt}.pth'))
        assert list(re) == list(sds[dt]) and all(torch.equal(re[k], sds[dt][k]) for k in re)
        assert 'blocks.0.att.v0' not in re
    print('== files')
    total = 0
    for fn in sorted(f for f in os.listdir(out) if f.startswith('tiny-')):
        sz = os.path.getsize(P(fn))
        total += sz
        print(f'  {fn:32s} {sz:9d}')
    print(f'  total {total} bytes')


if __name__ == '__main__':
    main()
