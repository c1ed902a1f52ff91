// The RWKV-7 forward pass, written once over the Backend ops (rwkv7.md §2).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/state.h"
#include "model/weights.h"

namespace rwkv {

// Activations for up to max_T tokens, allocated once per context (no allocation per token).
struct Scratch {
    Scratch(const ModelConfig& c, int max_T);
    int max_T;
    std::vector<float> x;                       // [T, C] residual stream
    std::vector<float> u;                       // [T, C] LN output (ln1, ln2, ln_out)
    std::vector<float> xr, xw, xk, xv, xa, xg;  // [T, C] token-shift mixes
    std::vector<float> r, w, k, v, a, g;        // [T, C] receptance, decay, key, value, ICL rate, gate
    std::vector<float> kk;                      // [T, C] removal key κ̂
    std::vector<float> v_first;                 // [T, C] layer 0's value (rwkv7.md §8 item 7)
    std::vector<float> v_gate;                  // [T, C] value-residual gate
    std::vector<float*> shift_ptr, wkv_ptr;     // [B] per-sequence state pointers of the current layer
    std::vector<float> y;                       // [T, C] WKV readout, then gated GroupNorm output
    std::vector<float> lora;                    // [T, max(Dw, Da, Dv, Dg)] LoRA hidden
    std::vector<float> ffn;                     // [T, F] ReLU² hidden
};

enum class LogitRows { None, Last, All };

// Runs B independent sequences of T tokens each through the model (B * T <= scratch.max_T rows; tokens[b * T + t]),
// sequence b starting from and updating *states[b]. Writes logits for the last token of each sequence ([B, V]) or
// for every token ([B * T, V]) into `logits` as `rows` says. B = 1 is prefill (T > 1) or decode (T = 1); T = 1
// with B > 1 is batched decode.
void rwkv7_forward(const LoadedModel& model, Backend& be, Scratch& s, State* const* states, int B,
                   const int32_t* tokens, int T, LogitRows rows, float* logits);

}  // namespace rwkv
