// RWKV-7 "x070" forward pass. Step numbers refer to rwkv7.md §2. Row-vector convention: every [rows, C] buffer
// holds one token per row (rows = B sequences × T tokens, row b·T + t), and `matmul` computes y = M x per row.
// Only the token shift and the WKV recurrence care about sequence boundaries; every other op is per row.
#include "model/rwkv7.h"

#include <algorithm>

namespace rwkv {

ModelTensors host_tensors(const Weights& wt) {
    ModelTensors t;
    t.emb = wt.emb.data();
    t.ln_out_w = wt.ln_out_w.data();
    t.ln_out_b = wt.ln_out_b.data();
    t.head = wt.head;
    t.layers.resize(wt.layers.size());
    for (size_t l = 0; l < wt.layers.size(); l++) {
        const LayerWeights& src = wt.layers[l];
        LayerTensors& dst = t.layers[l];
#define RWKV_VIEW_VECTOR(name) dst.name = src.name.empty() ? nullptr : src.name.data();
#define RWKV_VIEW_MATRIX(name) dst.name = src.name;
        RWKV_LAYER_VECTORS(RWKV_VIEW_VECTOR)
        RWKV_LAYER_MATRICES(RWKV_VIEW_MATRIX)
#undef RWKV_VIEW_VECTOR
#undef RWKV_VIEW_MATRIX
    }
    return t;
}

Scratch::Scratch(const ModelConfig& c, int max_T_) : Scratch(c, max_T_, MemoryKind::Host, -1, false) {}

Scratch::Scratch(const ModelConfig& c, int max_T_, MemoryKind kind, int device, bool device_logits)
    : max_T(max_T_), n_layer(c.n_layer) {
    // One allocation carved into 256-byte aligned pieces: first the sizes, then the pointers.
    const size_t TC = size_t(max_T) * c.n_embd;
    const size_t d = size_t(std::max({c.d_decay, c.d_aaa, c.d_value, c.d_gate}));
    struct Piece {
        void** at;
        size_t bytes;
    };
    float** per_row[] = {&x, &u, &xr, &xw, &xk, &xv, &xa, &xg, &r, &w, &k, &v, &a, &g, &kk, &v_first, &v_gate, &y};
    std::vector<Piece> pieces;
    for (float** p : per_row) pieces.push_back({reinterpret_cast<void**>(p), TC * sizeof(float)});
    pieces.push_back({reinterpret_cast<void**>(&lora), size_t(max_T) * d * sizeof(float)});
    pieces.push_back({reinterpret_cast<void**>(&ffn), size_t(max_T) * c.n_ffn * sizeof(float)});
    logits = nullptr;
    if (device_logits) pieces.push_back({reinterpret_cast<void**>(&logits), size_t(max_T) * c.n_vocab * sizeof(float)});
    pieces.push_back({reinterpret_cast<void**>(&tokens), size_t(max_T) * sizeof(int32_t)});
    const size_t table = size_t(3) * c.n_layer * max_T;
    pieces.push_back({reinterpret_cast<void**>(&state_table), table * sizeof(float*)});
    auto align = [](size_t n) { return (n + 255) / 256 * 256; };
    size_t total = 0;
    for (const Piece& p : pieces) total += align(p.bytes);
    storage = Buffer(kind, device, total, "the context's scratch buffers");
    size_t at = 0;
    for (const Piece& p : pieces) {
        *p.at = static_cast<char*>(storage.data()) + at;
        at += align(p.bytes);
    }
    bound.reserve(max_T);
    host_table.assign(table, nullptr);
}

void bind_states(Backend& be, Scratch& s, const ModelConfig& c, float* const* bases, int B) {
    if (int(s.bound.size()) == B && std::equal(bases, bases + B, s.bound.begin())) return;  // already bound
    s.bound.clear();  // bound again only once the upload below has been issued
    const int64_t per_layer = c.layer_state_floats(), shift_to_wkv = c.n_embd,
                  wkv_to_ffn = int64_t(c.n_head) * c.head_size * c.head_size;
    for (int l = 0; l < c.n_layer; l++)
        for (int b = 0; b < B; b++) {
            float* att = bases[b] + l * per_layer;  // RecurrentState::att_shift(l)
            s.host_table[(3 * size_t(l) + 0) * s.max_T + b] = att;
            s.host_table[(3 * size_t(l) + 1) * s.max_T + b] = att + shift_to_wkv;
            s.host_table[(3 * size_t(l) + 2) * s.max_T + b] = att + shift_to_wkv + wkv_to_ffn;
        }
    // Rows up to the last layer's ffn_shift row of sequence B - 1: one contiguous upload.
    const size_t n = (3 * size_t(c.n_layer) - 1) * s.max_T + B;
    be.upload(s.state_table, s.host_table.data(), n * sizeof(float*));
    s.bound.assign(bases, bases + B);
}

namespace {

// The state pointer rows of layer l: 0 att_shift, 1 wkv, 2 ffn_shift.
float* const* state_row(const Scratch& s, int l, int kind) {
    return s.state_table + (3 * size_t(l) + kind) * s.max_T;
}

// out = act(bias + (x @ down) @ up), the LoRA shape of steps 5-7 and 10. `inner` is applied to the hidden.
void lora(Backend& be, Scratch& s, const float* x, const WeightMatrix& down, Activation inner, const WeightMatrix& up,
          const float* bias, Activation outer, float* out, int T) {
    be.matmul({&down, x, s.lora, T, false});
    if (inner != Activation::None) be.bias_act({s.lora, nullptr, inner, T, down.n_out});
    be.matmul({&up, s.lora, out, T, false});
    if (bias || outer != Activation::None) be.bias_act({out, bias, outer, T, up.n_out});
}

void time_mix(const ModelConfig& c, const LayerTensors& lw, int layer, Backend& be, Scratch& s, int B, int Tseq) {
    const int C = c.n_embd, T = B * Tseq;  // T: rows
    // 1. u = LN(x; ln1)
    be.layer_norm({s.x, lw.ln1_w, lw.ln1_b, s.u, T, C});
    // 2-3. token shift (state keeps the LN1 output) and the six mixes x_r ... x_g
    be.token_shift({s.u,
                    state_row(s, layer, 0),
                    {lw.x_r, lw.x_w, lw.x_k, lw.x_v, lw.x_a, lw.x_g},
                    {s.xr, s.xw, s.xk, s.xv, s.xa, s.xg},
                    6,
                    B,
                    Tseq,
                    C});
    // 4. r = R x_r, k = K x_k, v = V x_v
    be.matmul({&lw.receptance, s.xr, s.r, T, false});
    be.matmul({&lw.key, s.xk, s.k, T, false});
    be.matmul({&lw.value, s.xv, s.v, T, false});
    // 5. decay = exp(-e^{-1/2} σ(w0 + tanh(x_w @ w1) @ w2))
    lora(be, s, s.xw, lw.w1, Activation::Tanh, lw.w2, lw.w0, Activation::Decay, s.w, T);
    // 6. a = σ(a0 + (x_a @ a1) @ a2)
    lora(be, s, s.xa, lw.a1, Activation::None, lw.a2, lw.a0, Activation::Sigmoid, s.a, T);
    // 7. g = σ(x_g @ g1) @ g2
    lora(be, s, s.xg, lw.g1, Activation::Sigmoid, lw.g2, nullptr, Activation::None, s.g, T);
    // 10 (gate part). Layer 0: v_first = v. Later layers: v_gate = σ(v0 + (x_v @ v1) @ v2).
    const bool first = layer == 0;
    if (first)
        be.copy(s.v_first, s.v, size_t(T) * C * sizeof(float));
    else
        lora(be, s, s.xv, lw.v1, Activation::None, lw.v2, lw.v0, Activation::Sigmoid, s.v_gate, T);
    // 8-10. κ̂ = normalize(k ⊙ k_k); k' = k ⊙ (1 + (a-1) ⊙ k_a); v' = lerp(v, v_first, v_gate)
    be.key_prep({s.k, s.v, s.kk, s.a, lw.k_k, lw.k_a, first ? nullptr : s.v_first, first ? nullptr : s.v_gate, T, C});
    // 11. WKV recurrence, y = S r
    be.wkv7({state_row(s, layer, 1), s.r, s.w, s.k, s.v, s.kk, s.a, s.y, B, Tseq, c.n_head});
    // 12-13. GroupNorm(y) + bonus, times the gate (written over y)
    be.time_mix_output({s.y, s.r, s.k, s.v, s.g, lw.r_k, lw.ln_x_w, lw.ln_x_b, s.y, T, c.n_head});
    // 14. x = x + O (o ⊙ g)
    be.matmul({&lw.output, s.y, s.x, T, true});
}

void channel_mix(const ModelConfig& c, const LayerTensors& lw, int layer, Backend& be, Scratch& s, int B, int Tseq) {
    const int C = c.n_embd, T = B * Tseq;
    // 1. u2 = LN(x; ln2)
    be.layer_norm({s.x, lw.ln2_w, lw.ln2_b, s.u, T, C});
    // 2-3. z = u2 + (prev - u2) ⊙ ffn.x_k, state keeps the LN2 output
    be.token_shift({s.u, state_row(s, layer, 2), {lw.ffn_x_k}, {s.xk}, 1, B, Tseq, C});
    // 4. h = relu(Kf z)²
    be.matmul({&lw.ffn_key, s.xk, s.ffn, T, false});
    be.bias_act({s.ffn, nullptr, Activation::ReluSq, T, c.n_ffn});
    // 5. x = x + Vf h (h is ~90% exact zeros in trained models: a backend may read only the rows it needs)
    be.matmul_sparse_input({&lw.ffn_value, s.ffn, s.x, T, true});
}

}  // namespace

void rwkv7_forward(const ModelConfig& c, const ModelTensors& wt, Backend& be, Scratch& s, int B, int T, LogitRows rows,
                   float* logits) {
    const int C = c.n_embd;
    // 2.1 x = emb'[token] (ln0 folded in at load)
    be.embed({s.tokens, wt.emb, s.x, B * T, C});
    for (int l = 0; l < c.n_layer; l++) {
        time_mix(c, wt.layers[l], l, be, s, B, T);
        channel_mix(c, wt.layers[l], l, be, s, B, T);
    }
    if (rows == LogitRows::None) return;
    // 2.4 logits = head · LN(x; ln_out), for the rows asked for: every row, or each sequence's last
    int n = B * T;
    const float* last = s.x;
    if (rows == LogitRows::Last && T > 1) {  // gather row b·T + T-1 of each sequence (into a free buffer)
        be.copy_rows(s.x, T - 1, T, s.xr, B, C);
        last = s.xr;
        n = B;
    }
    be.layer_norm({last, wt.ln_out_w, wt.ln_out_b, s.u, n, C});
    be.matmul({&wt.head, s.u, logits, n, false});
}

void rwkv7_step(const ModelConfig& c, const ModelTensors& w, Backend& be, Scratch& s, float* const* bases, int B,
                const int32_t* tokens, int T, LogitRows rows, float* host_logits, bool graph) {
    bind_states(be, s, c, bases, B);
    be.upload(s.tokens, tokens, size_t(B) * T * sizeof(int32_t));
    // Host-memory backends write the caller's buffer directly; others write the scratch's and copy it back.
    float* out = s.logits ? s.logits : host_logits;
    if (graph && T == 1)
        be.run_step(uint64_t(B) << 2 | uint64_t(rows), [&] { rwkv7_forward(c, w, be, s, B, 1, rows, out); });
    else
        rwkv7_forward(c, w, be, s, B, T, rows, out);
    if (rows != LogitRows::None && s.logits && host_logits) {  // else the logits stay in the scratch
        const size_t n = rows == LogitRows::All ? size_t(B) * T : size_t(B);
        be.download(host_logits, s.logits, n * c.n_vocab * sizeof(float));
    }
    be.synchronize();
}

void rwkv7_forward(const LoadedModel& model, Backend& be, Scratch& s, RecurrentState* const* states, int B,
                   const int32_t* tokens, int T, LogitRows rows, float* logits) {
    std::vector<float*> bases(B);
    for (int b = 0; b < B; b++) bases[b] = states[b]->data.data();
    rwkv7_step(model.config, host_tensors(model.weights), be, s, bases.data(), B, tokens, T, rows, logits, false);
}

}  // namespace rwkv
