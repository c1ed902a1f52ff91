// RWKV-7 hyper-parameters, inferred from tensor shapes (rwkv7.md §1.3).
#pragma once

#include <cstdint>
#include <string>

namespace rwkv {

struct ModelConfig {
    int n_layer = 0;    // L
    int n_embd = 0;     // C
    int n_head = 0;     // H = C / N
    int head_size = 0;  // N, always 64
    int n_vocab = 0;    // V (65536 for World models)
    int n_ffn = 0;      // F (4C in released models)
    int d_decay = 0;    // Dw: att.w1 [C, Dw]
    int d_aaa = 0;      // Da: att.a1 [C, Da]
    int d_value = 0;    // Dv: att.v1 [C, Dv] (layers >= 1; 0 when L == 1)
    int d_gate = 0;     // Dg: att.g1 [C, Dg]

    // Floats of one layer's state: att_shift [C] + wkv [H, N, N] + ffn_shift [C].
    int64_t layer_state_floats() const { return 2 * int64_t(n_embd) + int64_t(n_head) * head_size * head_size; }
    int64_t state_floats() const { return n_layer * layer_state_floats(); }
    // A hash of every number above: two models share states iff their fingerprints match.
    uint64_t fingerprint() const;
    std::string describe() const;  // "L12 C768 H12 V65536 F3072 lora 64/64/32/128"
};

}  // namespace rwkv
