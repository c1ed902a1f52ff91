#!/usr/bin/env python3
"""Plain NumPy float64 reference implementation of RWKV-7 ("x070").

Written from docs/rwkv7.md (the spec), section numbers below refer to it.
It is deliberately simple and slow: it exists to produce golden outputs for
the C++/CUDA engine's tests (see tests/fixtures/ and docs/fixtures.md).

Conventions
-----------
* Input weights: a dict {native BlinkDL name: numpy array} with the STORED
  shapes of rwkv7.md §1.2 (x_* as [1,1,C], r_k as [H,N], linear weights as
  [out, in], LoRA matrices as [in, out]).  Any float dtype is accepted; every
  tensor is converted to float64 before use.  All math is float64.
* State: a list with one tuple per layer
      (att_shift [C], wkv [H, N, N], ffn_shift [C])
  with wkv[h][i][j] = S[h][value i][key j]  (rwkv7.md §2.6).
* Two independent code paths:
      forward_one(token, state)   one token at a time (rwkv7.md §2.2-§2.4),
                                  explicit per-head loops;
      forward_seq(tokens, state)  T tokens at once (rwkv7.md §2.5): batched
                                  [T, C] matrix products for projections,
                                  LoRAs and norms, sequential WKV loop over t.
  They must agree to ~1e-12 (checked by make_fixtures.py).

No torch is used here.
"""

import numpy as np

HEAD_SIZE = 64                 # N, fixed for every released model (§1.1)
LN_EPS = 1e-5                  # LayerNorm eps (§2, §8.6)
GN_EPS = 64e-5                 # per-head GroupNorm eps = head_size * 1e-5 (§2.2 step 12)
L2_EPS = 1e-12                 # F.normalize eps (§2.2 step 8)
DECAY_SCALE = np.exp(-0.5)     # e^{-1/2} exactly (§2.2 step 5)


# ---------------------------------------------------------------------------
# Small helpers (all operate on the last axis, so they work for [C] and [T, C])
# ---------------------------------------------------------------------------

def layer_norm(x, w, b, eps=LN_EPS):
    """LayerNorm over the last axis, biased variance (PyTorch semantics)."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def group_norm_heads(y, w, b, n_head, eps=GN_EPS):
    """Per-head GroupNorm: statistics over each head's N channels (§2.2 step 12)."""
    shape = y.shape
    yh = y.reshape(shape[:-1] + (n_head, -1))
    mean = yh.mean(axis=-1, keepdims=True)
    var = ((yh - mean) ** 2).mean(axis=-1, keepdims=True)
    yh = (yh - mean) / np.sqrt(var + eps)
    return yh.reshape(shape) * w + b


def l2_normalize_heads(x, n_head, eps=L2_EPS):
    """F.normalize(x.view(..., H, N), dim=-1): x / max(||x||, eps) per head (§2.2 step 8)."""
    shape = x.shape
    xh = x.reshape(shape[:-1] + (n_head, -1))
    norm = np.sqrt((xh * xh).sum(axis=-1, keepdims=True))
    return (xh / np.maximum(norm, eps)).reshape(shape)


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

class RWKV7Ref:
    """RWKV-7 x070 in float64 NumPy."""

    def __init__(self, weights):
        sd = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}

        # §1.3: hyper-parameters from tensor shapes
        self.V, self.C = sd['emb.weight'].shape
        self.H, self.N = sd['blocks.0.att.r_k'].shape
        assert self.N == HEAD_SIZE and self.H * self.N == self.C
        self.L = 1 + max(int(k.split('.')[1]) for k in sd if k.startswith('blocks.'))
        self.F = sd['blocks.0.ffn.key.weight'].shape[0]
        self.Dw = sd['blocks.0.att.w1'].shape[1]
        self.Da = sd['blocks.0.att.a1'].shape[1]
        self.Dg = sd['blocks.0.att.g1'].shape[1]
        self.Dv = sd['blocks.1.att.v1'].shape[1] if self.L > 1 else 0

        # §1.4 step 4: fold ln0 into the embedding table (in float64 here)
        self.emb = layer_norm(sd['emb.weight'], sd['blocks.0.ln0.weight'], sd['blocks.0.ln0.bias'])

        # §1.4 step 2: squeeze [1,1,C] -> [C], flatten r_k [H,N] -> [C].
        # Linear weights stay [out, in]; we compute x @ W.T (row vectors).
        self.blocks = []
        for l in range(self.L):
            p = f'blocks.{l}.'
            blk = {
                'ln1_w': sd[p + 'ln1.weight'], 'ln1_b': sd[p + 'ln1.bias'],
                'ln2_w': sd[p + 'ln2.weight'], 'ln2_b': sd[p + 'ln2.bias'],
                'lnx_w': sd[p + 'att.ln_x.weight'], 'lnx_b': sd[p + 'att.ln_x.bias'],
                'R': sd[p + 'att.receptance.weight'],
                'K': sd[p + 'att.key.weight'],
                'Vw': sd[p + 'att.value.weight'],
                'O': sd[p + 'att.output.weight'],
                'Kf': sd[p + 'ffn.key.weight'],
                'Vf': sd[p + 'ffn.value.weight'],
                'ffn_xk': sd[p + 'ffn.x_k'].reshape(-1),
                'r_k': sd[p + 'att.r_k'].reshape(-1),
            }
            for name in ('x_r', 'x_w', 'x_k', 'x_v', 'x_a', 'x_g', 'w0', 'a0', 'k_k', 'k_a'):
                blk[name] = sd[p + 'att.' + name].reshape(-1)
            for name in ('w1', 'w2', 'a1', 'a2', 'g1', 'g2'):
                blk[name] = sd[p + 'att.' + name]
            if l > 0:   # §1.2 / §8.7: layer 0 has no value-residual LoRA
                blk['v0'] = sd[p + 'att.v0'].reshape(-1)
                blk['v1'] = sd[p + 'att.v1']
                blk['v2'] = sd[p + 'att.v2']
            self.blocks.append(blk)

        self.ln_out_w = sd['ln_out.weight']
        self.ln_out_b = sd['ln_out.bias']
        self.head = sd['head.weight']          # [V, C]

    # ---------------------------------------------------------------- state
    def zero_state(self):
        """§2.6: all zeros."""
        return [(np.zeros(self.C), np.zeros((self.H, self.N, self.N)), np.zeros(self.C))
                for _ in range(self.L)]

    def state_from_time_state(self, time_state):
        """§6: PEFT state file {blocks.l.att.time_state: [H,N,N]} -> initial state.
        Loaded WITHOUT transposing (time_state[h][i][j] = S[h][value i][key j]);
        token-shift states start at zero."""
        st = []
        for l in range(self.L):
            S = np.asarray(time_state[f'blocks.{l}.att.time_state'], dtype=np.float64)
            assert S.shape == (self.H, self.N, self.N)
            st.append((np.zeros(self.C), S.copy(), np.zeros(self.C)))
        return st

    @staticmethod
    def flatten_state(state):
        """[L, 2C + H*N*N]: per layer [att_shift C][wkv (head,value,key) row-major][ffn_shift C]."""
        return np.stack([np.concatenate([a, S.reshape(-1), f]) for (a, S, f) in state])

    @staticmethod
    def copy_state(state):
        return [(a.copy(), S.copy(), f.copy()) for (a, S, f) in state]

    # ------------------------------------------------------ one-token mode
    def _time_mix_one(self, blk, l, x, att_prev, S, v_first, probe=None):
        H, N = self.H, self.N
        # 1. u = LN(x; ln1)
        u = layer_norm(x, blk['ln1_w'], blk['ln1_b'])
        # 2. token shift; the new shift state is the LN1 output
        d = att_prev - u
        new_att_prev = u
        # 3. six mixes
        xr = u + d * blk['x_r']
        xw = u + d * blk['x_w']
        xk = u + d * blk['x_k']
        xv = u + d * blk['x_v']
        xa = u + d * blk['x_a']
        xg = u + d * blk['x_g']
        # 4. projections (W is [out, in])
        r = blk['R'] @ xr
        k = blk['K'] @ xk
        v = blk['Vw'] @ xv
        # 5. decay = exp(-e^{-1/2} * sigmoid(w0 + tanh(xw @ w1) @ w2))
        omega = blk['w0'] + np.tanh(xw @ blk['w1']) @ blk['w2']
        decay = np.exp(-DECAY_SCALE * sigmoid(omega))
        # 6. in-context learning rate
        a = sigmoid(blk['a0'] + (xa @ blk['a1']) @ blk['a2'])
        # 7. output gate: sigmoid between the two matrices, no bias
        g = sigmoid(xg @ blk['g1']) @ blk['g2']
        # 8. removal key from the RAW k, per-head L2 normalised
        kappa = k * blk['k_k']
        kappa_hat = np.zeros(self.C)
        for h in range(H):
            sl = slice(h * N, (h + 1) * N)
            nrm = np.sqrt(np.sum(kappa[sl] ** 2))
            kappa_hat[sl] = kappa[sl] / max(nrm, L2_EPS)
        # 9. key update
        k2 = k * (1.0 + (a - 1.0) * blk['k_a'])
        # 10. value residual
        if l == 0:
            v_first = v
        else:
            v = v + (v_first - v) * sigmoid(blk['v0'] + (xv @ blk['v1']) @ blk['v2'])
        # 11. WKV update per head; S[i][j], i = value row, j = key column
        S_new = np.empty_like(S)
        y = np.zeros(self.C)
        for h in range(H):
            sl = slice(h * N, (h + 1) * N)
            Sh = S[h]                                   # old state
            a_hat = -kappa_hat[sl]
            b = kappa_hat[sl] * a[sl]
            sa = Sh @ a_hat                             # sa_i = sum_j S[i][j] a_hat_j (old S)
            Sn = Sh * decay[sl][None, :] + np.outer(sa, b) + np.outer(v[sl], k2[sl])
            S_new[h] = Sn
            y[sl] = Sn @ r[sl]                          # readout with the UPDATED state
        # 12. per-head GroupNorm (eps 64e-5) + affine
        o = np.zeros(self.C)
        for h in range(H):
            sl = slice(h * N, (h + 1) * N)
            yh = y[sl]
            mean = yh.mean()
            var = ((yh - mean) ** 2).mean()
            o[sl] = (yh - mean) / np.sqrt(var + GN_EPS)
        o = o * blk['lnx_w'] + blk['lnx_b']
        # 13. bonus term, uses k' and v'
        for h in range(H):
            sl = slice(h * N, (h + 1) * N)
            o[sl] += np.sum(r[sl] * k2[sl] * blk['r_k'][sl]) * v[sl]
        # 14. gate and output projection
        x = x + blk['O'] @ (o * g)
        if probe is not None:
            probe('att', l, dict(decay=decay, a=a, g=g, y=y))
        return x, new_att_prev, S_new, v_first

    def _channel_mix_one(self, blk, l, x, ffn_prev, probe=None):
        # §2.3 1. u2 = LN(x; ln2)
        u2 = layer_norm(x, blk['ln2_w'], blk['ln2_b'])
        # 2. token shift, state = LN2 output
        d = ffn_prev - u2
        # 3. mix
        z = u2 + d * blk['ffn_xk']
        # 4. squared ReLU
        hdn = np.maximum(blk['Kf'] @ z, 0.0) ** 2
        if probe is not None:
            probe('ffn', l, dict(h=hdn))
        # 5. down projection
        return x + blk['Vf'] @ hdn, u2

    def forward_one(self, token, state, probe=None):
        """One token (§2.1-§2.4). Returns (logits [V], new_state); `state` is not modified."""
        # §2.1 embedding (ln0 folded in)
        x = self.emb[token].copy()
        v_first = None
        new_state = []
        for l, blk in enumerate(self.blocks):
            att_prev, S, ffn_prev = state[l]
            x, att_prev, S, v_first = self._time_mix_one(blk, l, x, att_prev, S, v_first, probe)
            x, ffn_prev = self._channel_mix_one(blk, l, x, ffn_prev, probe)
            new_state.append((att_prev, S, ffn_prev))
        # §2.4 head
        logits = self.head @ layer_norm(x, self.ln_out_w, self.ln_out_b)
        return logits, new_state

    # ------------------------------------------------------- sequence mode
    def _time_mix_seq(self, blk, l, X, att_prev, S, V_first, probe=None):
        T, C, H, N = X.shape[0], self.C, self.H, self.N
        # 1. U = LN(X; ln1) row-wise
        U = layer_norm(X, blk['ln1_w'], blk['ln1_b'])
        # 2. token shift inside the chunk: previous row of position 0 is the carried state
        prev = np.vstack([att_prev[None, :], U[:-1]])
        D = prev - U
        new_att_prev = U[-1].copy()
        # 3. six mixes
        XR = U + D * blk['x_r']
        XW = U + D * blk['x_w']
        XK = U + D * blk['x_k']
        XV = U + D * blk['x_v']
        XA = U + D * blk['x_a']
        XG = U + D * blk['x_g']
        # 4. batched projections: [T, C] @ W.T
        Rm = XR @ blk['R'].T
        Km = XK @ blk['K'].T
        Vm = XV @ blk['Vw'].T
        # 5. decay = exp(-e^{-1/2} * sigmoid(omega)).  (The reference's sequence
        #    kernel uses the equivalent log-log form exp(-exp(-softplus(-omega) - 0.5));
        #    we use the direct formula in both modes.)
        omega = blk['w0'] + np.tanh(XW @ blk['w1']) @ blk['w2']
        Decay = np.exp(-DECAY_SCALE * sigmoid(omega))
        # 6. a
        A = sigmoid(blk['a0'] + (XA @ blk['a1']) @ blk['a2'])
        # 7. gate
        G = sigmoid(XG @ blk['g1']) @ blk['g2']
        # 8. removal key from raw k
        Kappa_hat = l2_normalize_heads(Km * blk['k_k'], H)
        # 9. key update
        K2 = Km * (1.0 + (A - 1.0) * blk['k_a'])
        # 10. value residual; V_first is per position [T, C]
        if l == 0:
            V_first = Vm
        else:
            Vm = Vm + (V_first - Vm) * sigmoid(blk['v0'] + (XV @ blk['v1']) @ blk['v2'])
        # 11. WKV recurrence, sequential over t (heads vectorised)
        r_h = Rm.reshape(T, H, N)
        w_h = Decay.reshape(T, H, N)
        k_h = K2.reshape(T, H, N)
        v_h = Vm.reshape(T, H, N)
        ah_h = -Kappa_hat.reshape(T, H, N)
        b_h = (Kappa_hat * A).reshape(T, H, N)
        S = S.copy()
        Y = np.zeros((T, H, N))
        for t in range(T):
            sa = np.einsum('hij,hj->hi', S, ah_h[t])                      # old S
            S = (S * w_h[t][:, None, :]
                 + sa[:, :, None] * b_h[t][:, None, :]
                 + v_h[t][:, :, None] * k_h[t][:, None, :])
            Y[t] = np.einsum('hij,hj->hi', S, r_h[t])                     # updated S
        Y = Y.reshape(T, C)
        # 12. per-head GroupNorm
        O = group_norm_heads(Y, blk['lnx_w'], blk['lnx_b'], H)
        # 13. bonus term
        bonus = (r_h * k_h * blk['r_k'].reshape(H, N)).sum(axis=-1, keepdims=True)   # [T, H, 1]
        O = O + (bonus * v_h).reshape(T, C)
        # 14. gate and output
        X = X + (O * G) @ blk['O'].T
        if probe is not None:
            probe('att', l, dict(decay=Decay, a=A, g=G, y=Y))
        return X, new_att_prev, S, V_first

    def _channel_mix_seq(self, blk, l, X, ffn_prev, probe=None):
        # §2.3 batched over T
        U2 = layer_norm(X, blk['ln2_w'], blk['ln2_b'])
        prev = np.vstack([ffn_prev[None, :], U2[:-1]])
        Z = U2 + (prev - U2) * blk['ffn_xk']
        Hd = np.maximum(Z @ blk['Kf'].T, 0.0) ** 2
        if probe is not None:
            probe('ffn', l, dict(h=Hd))
        return X + Hd @ blk['Vf'].T, U2[-1].copy()

    def forward_seq(self, tokens, state, full_output=True, probe=None):
        """T tokens (§2.5). Returns (logits [T, V] or [V] for the last position, new_state)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        assert tokens.ndim == 1 and len(tokens) >= 1
        X = self.emb[tokens].copy()                    # §2.1, [T, C]
        V_first = None
        new_state = []
        for l, blk in enumerate(self.blocks):
            att_prev, S, ffn_prev = state[l]
            X, att_prev, S, V_first = self._time_mix_seq(blk, l, X, att_prev, S, V_first, probe)
            X, ffn_prev = self._channel_mix_seq(blk, l, X, ffn_prev, probe)
            new_state.append((att_prev, S, ffn_prev))
        if not full_output:
            X = X[-1:]
        logits = layer_norm(X, self.ln_out_w, self.ln_out_b) @ self.head.T   # §2.4
        return (logits if full_output else logits[0]), new_state


def load_pth_as_numpy(path):
    """Convenience loader (uses torch only for deserialisation, not for math)."""
    import torch
    sd = torch.load(path, map_location='cpu')
    return {k: v.float().numpy().astype(np.float64) for k, v in sd.items()}


if __name__ == '__main__':
    import argparse
    import json
    ap = argparse.ArgumentParser(description='Run the float64 RWKV-7 reference on a .pth')
    ap.add_argument('model')
    ap.add_argument('--tokens', help='JSON file with {"tokens": [...]}')
    args = ap.parse_args()
    m = RWKV7Ref(load_pth_as_numpy(args.model))
    toks = json.load(open(args.tokens))['tokens'] if args.tokens else [0]
    lg, _ = m.forward_seq(toks, m.zero_state())
    print('L=%d C=%d H=%d F=%d V=%d' % (m.L, m.C, m.H, m.F, m.V))
    print('argmax per position:', lg.argmax(-1).tolist())
