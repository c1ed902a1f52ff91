// RWKV-7 "x070" forward pass. Step numbers refer to rwkv7.md §2. Row-vector convention: every [rows, C] buffer
// holds one token per row (rows = B sequences × T tokens, row b·T + t), and `matmul` computes y = M x per row.
// Only the token shift and the WKV recurrence care about sequence boundaries; every other op is per row.
#include "model/rwkv7.h"

#include <algorithm>

namespace rwkv {

Scratch::Scratch(const ModelConfig& c, int max_T_) : max_T(max_T_) {
    const size_t TC = size_t(max_T) * c.n_embd;
    for (auto* b : {&x, &u, &xr, &xw, &xk, &xv, &xa, &xg, &r, &w, &k, &v, &a, &g, &kk, &v_first, &v_gate, &y})
        b->assign(TC, 0.0f);
    int d = std::max({c.d_decay, c.d_aaa, c.d_value, c.d_gate});
    lora.assign(size_t(max_T) * d, 0.0f);
    shift_ptr.reserve(max_T);
    wkv_ptr.reserve(max_T);
    ffn.assign(size_t(max_T) * c.n_ffn, 0.0f);
}

namespace {

// out = act(bias + (x @ down) @ up), the LoRA shape of steps 5-7 and 10. `inner` is applied to the hidden.
void lora(Backend& be, Scratch& s, const float* x, const WeightMatrix& down, Activation inner, const WeightMatrix& up,
          const float* bias, Activation outer, float* out, int T) {
    be.matmul({&down, x, s.lora.data(), T, false});
    if (inner != Activation::None) be.bias_act({s.lora.data(), nullptr, inner, T, down.n_out});
    be.matmul({&up, s.lora.data(), out, T, false});
    if (bias || outer != Activation::None) be.bias_act({out, bias, outer, T, up.n_out});
}

void time_mix(const ModelConfig& c, const LayerWeights& lw, int layer, Backend& be, Scratch& s, State* const* states,
              int B, int Tseq) {
    const int C = c.n_embd, T = B * Tseq;  // T: rows
    for (int b = 0; b < B; b++) {
        s.shift_ptr[b] = states[b]->att_shift(layer);
        s.wkv_ptr[b] = states[b]->wkv(layer);
    }
    // 1. u = LN(x; ln1)
    be.layer_norm({s.x.data(), lw.ln1_w.data(), lw.ln1_b.data(), s.u.data(), T, C});
    // 2-3. token shift (state keeps the LN1 output) and the six mixes x_r ... x_g
    be.token_shift({s.u.data(),
                    s.shift_ptr.data(),
                    {lw.x_r.data(), lw.x_w.data(), lw.x_k.data(), lw.x_v.data(), lw.x_a.data(), lw.x_g.data()},
                    {s.xr.data(), s.xw.data(), s.xk.data(), s.xv.data(), s.xa.data(), s.xg.data()},
                    6,
                    B,
                    Tseq,
                    C});
    // 4. r = R x_r, k = K x_k, v = V x_v
    be.matmul({&lw.receptance, s.xr.data(), s.r.data(), T, false});
    be.matmul({&lw.key, s.xk.data(), s.k.data(), T, false});
    be.matmul({&lw.value, s.xv.data(), s.v.data(), T, false});
    // 5. decay = exp(-e^{-1/2} σ(w0 + tanh(x_w @ w1) @ w2))
    lora(be, s, s.xw.data(), lw.w1, Activation::Tanh, lw.w2, lw.w0.data(), Activation::Decay, s.w.data(), T);
    // 6. a = σ(a0 + (x_a @ a1) @ a2)
    lora(be, s, s.xa.data(), lw.a1, Activation::None, lw.a2, lw.a0.data(), Activation::Sigmoid, s.a.data(), T);
    // 7. g = σ(x_g @ g1) @ g2
    lora(be, s, s.xg.data(), lw.g1, Activation::Sigmoid, lw.g2, nullptr, Activation::None, s.g.data(), T);
    // 10 (gate part). Layer 0: v_first = v. Later layers: v_gate = σ(v0 + (x_v @ v1) @ v2).
    const bool first = layer == 0;
    if (first)
        std::copy_n(s.v.begin(), size_t(T) * C, s.v_first.begin());
    else
        lora(be, s, s.xv.data(), lw.v1, Activation::None, lw.v2, lw.v0.data(), Activation::Sigmoid, s.v_gate.data(), T);
    // 8-10. κ̂ = normalize(k ⊙ k_k); k' = k ⊙ (1 + (a-1) ⊙ k_a); v' = lerp(v, v_first, v_gate)
    be.key_prep({s.k.data(), s.v.data(), s.kk.data(), s.a.data(), lw.k_k.data(), lw.k_a.data(),
                 first ? nullptr : s.v_first.data(), first ? nullptr : s.v_gate.data(), T, C});
    // 11. WKV recurrence, y = S r
    be.wkv7({s.wkv_ptr.data(), s.r.data(), s.w.data(), s.k.data(), s.v.data(), s.kk.data(), s.a.data(), s.y.data(), B,
             Tseq, c.n_head});
    // 12-13. GroupNorm(y) + bonus, times the gate (written over y)
    be.time_mix_output({s.y.data(), s.r.data(), s.k.data(), s.v.data(), s.g.data(), lw.r_k.data(), lw.ln_x_w.data(),
                        lw.ln_x_b.data(), s.y.data(), T, c.n_head});
    // 14. x = x + O (o ⊙ g)
    be.matmul({&lw.output, s.y.data(), s.x.data(), T, true});
}

void channel_mix(const ModelConfig& c, const LayerWeights& lw, int layer, Backend& be, Scratch& s, State* const* states,
                 int B, int Tseq) {
    const int C = c.n_embd, T = B * Tseq;
    for (int b = 0; b < B; b++) s.shift_ptr[b] = states[b]->ffn_shift(layer);
    // 1. u2 = LN(x; ln2)
    be.layer_norm({s.x.data(), lw.ln2_w.data(), lw.ln2_b.data(), s.u.data(), T, C});
    // 2-3. z = u2 + (prev - u2) ⊙ ffn.x_k, state keeps the LN2 output
    be.token_shift({s.u.data(), s.shift_ptr.data(), {lw.ffn_x_k.data()}, {s.xk.data()}, 1, B, Tseq, C});
    // 4. h = relu(Kf z)²
    be.matmul({&lw.ffn_key, s.xk.data(), s.ffn.data(), T, false});
    be.bias_act({s.ffn.data(), nullptr, Activation::ReluSq, T, c.n_ffn});
    // 5. x = x + Vf h
    be.matmul({&lw.ffn_value, s.ffn.data(), s.x.data(), T, true});
}

}  // namespace

void rwkv7_forward(const LoadedModel& model, Backend& be, Scratch& s, State* const* states, int B,
                   const int32_t* tokens, int T, LogitRows rows, float* logits) {
    const ModelConfig& c = model.config;
    const Weights& wt = model.weights;
    const int C = c.n_embd;
    s.shift_ptr.resize(B);  // capacity reserved for max_T sequences: no allocation here
    s.wkv_ptr.resize(B);
    // 2.1 x = emb'[token] (ln0 folded in at load)
    be.embed({tokens, wt.emb.data(), s.x.data(), B * T, C});
    for (int l = 0; l < c.n_layer; l++) {
        time_mix(c, wt.layers[l], l, be, s, states, B, T);
        channel_mix(c, wt.layers[l], l, be, s, states, B, T);
    }
    if (rows == LogitRows::None) return;
    // 2.4 logits = head · LN(x; ln_out), for the rows asked for: every row, or each sequence's last
    int n = B * T;
    if (rows == LogitRows::Last && T > 1) {
        for (int b = 0; b < B; b++)
            std::copy_n(s.x.begin() + (size_t(b) * T + T - 1) * C, C, s.x.begin() + size_t(b) * C);
        n = B;
    }
    be.layer_norm({s.x.data(), wt.ln_out_w.data(), wt.ln_out_b.data(), s.u.data(), n, C});
    be.matmul({&wt.head, s.u.data(), logits, n, false});
}

}  // namespace rwkv
