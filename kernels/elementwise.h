// Small per-element ops of the RWKV-7 block: token shift with its mixes, and bias + activation epilogues.
#pragma once

namespace rwkv {

// Token shift (rwkv7.md §2.2 steps 2-3, §2.3 steps 2-3), for B sequences of T tokens each (rows b·T + t).
// For each mix m, sequence b and token t:
//   out[m][b,t] = u[b,t] + (u[b,t-1] - u[b,t]) * mu[m],   with u[b,-1] = prev[b] (the carried LN output)
// and afterwards prev[b] <- u[b,T-1].
struct TokenShiftArgs {
    const float* u;      // [B*T, C] LN output of this chunk
    float* const* prev;  // B pointers to [C] carried shift states (att_shift or ffn_shift), updated
    const float* mu[6];  // n_mix vectors [C]: att.x_r, x_w, x_k, x_v, x_a, x_g (or ffn.x_k)
    float* out[6];       // n_mix outputs [B*T, C]
    int n_mix, B, T, C;  // u, out[m] and every prev[b] are distinct, non-overlapping buffers
};
void token_shift_cpu(const TokenShiftArgs& a);

enum class Activation {
    None,     // y + b
    Tanh,     // tanh(y + b)
    Sigmoid,  // σ(y + b)
    ReluSq,   // relu(y + b)²
    Decay,    // exp(-e^{-1/2} σ(y + b)): the RWKV-7 decay, in (0.545, 1)  (rwkv7.md §2.2 step 5)
};

// y[t][i] = act(y[t][i] + (b ? b[i] : 0)) for T rows of n values.
struct BiasActArgs {
    float* y;        // [T, n]
    const float* b;  // [n] or nullptr
    Activation act;
    int T, n;
};
void bias_act_cpu(const BiasActArgs& a);

// The RWKV-7 decay from its pre-activation ω, exp(-exp(-0.5) · sigmoid(ω)).
inline float rwkv7_decay(float omega) {
    constexpr float kExpMinusHalf = 0.60653065971263342f;  // e^{-1/2}
    return __builtin_expf(-kExpMinusHalf / (1.0f + __builtin_expf(-omega)));
}

}  // namespace rwkv
