// The RWKV-7 time-mix core: key preparation, the WKV recurrence, and GroupNorm + bonus + gate.
// State layout: S[h][i][j], i = value channel (row), j = key channel (column), fp32, row-major
// (rwkv7.md §2.6). Decay, removal key and receptance act along j.
#pragma once

namespace rwkv {

constexpr int kHeadSize = 64;
constexpr float kGroupNormEps = 64e-5f;  // head_size * 1e-5 (rwkv7.md §2.2 step 12)
constexpr float kL2NormEps = 1e-12f;

// Steps 8-10 of rwkv7.md §2.2, per token:
//   kk = normalize_per_head(k ⊙ k_k)          (removal key κ̂, from the raw k)
//   k  = k ⊙ (1 + (a - 1) ⊙ k_a)              (in place: k')
//   v  = v + (v_first - v) ⊙ v_gate           (in place: v', layers ≥ 1; v_gate = nullptr for layer 0)
struct KeyPrepArgs {
    float* k;              // [T, C] in: k, out: k'
    float* v;              // [T, C] in: v, out: v'
    float* kk;             // [T, C] out: κ̂
    const float* a;        // [T, C] in-context learning rate, (0, 1)
    const float* k_k;      // [C]
    const float* k_a;      // [C]
    const float* v_first;  // [T, C] layer 0's v for these tokens (nullptr for layer 0)
    const float* v_gate;   // [T, C] σ(v0 + x_v@v1@v2) (nullptr for layer 0)
    int T, C;
};
void key_prep_cpu(const KeyPrepArgs& a);

// Step 11, for B sequences of T tokens (rows b·T + t), sequentially over t, for every sequence and head:
//   sa_i = Σ_j S[i][j] · (-κ̂_j)
//   S[i][j] = S[i][j] · w_j + sa_i · (κ̂_j a_j) + v_i · k_j
//   y_i = Σ_j S[i][j] · r_j        (the updated S)
struct Wkv7Args {
    float* const* state;  // B pointers to [H, N, N] states, updated in place
    const float* r;       // [B*T, C]
    const float* w;       // [B*T, C] decay in (0.545, 1)
    const float* k;       // [B*T, C] k'
    const float* v;       // [B*T, C] v'
    const float* kk;      // [B*T, C] κ̂
    const float* a;       // [B*T, C]
    float* y;             // [B*T, C]
    int B, T, H;
};
void wkv7_cpu(const Wkv7Args& a);

// Steps 12-14 before the output projection, per token and head:
//   o = GroupNorm(y; ln_x) + (Σ_j r_j k_j r_k_j) · v,   then o = o ⊙ g
struct TimeMixOutputArgs {
    const float* y;       // [T, C] WKV readout
    const float* r;       // [T, C]
    const float* k;       // [T, C] k'
    const float* v;       // [T, C] v'
    const float* g;       // [T, C] output gate
    const float* r_k;     // [C]
    const float* ln_x_w;  // [C]
    const float* ln_x_b;  // [C]
    float* out;           // [T, C]
    int T, H;
};
void time_mix_output_cpu(const TimeMixOutputArgs& a);

}  // namespace rwkv
