// The RWKV-7 forward pass, written once over the Backend ops (rwkv7.md §2), and what it runs on: the weights as
// the backend sees them (ModelTensors), the activations (Scratch) and the states, all in the backend's memory.
// This header stays C++17 (the CUDA backend's .cu files include it).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/state.h"
#include "model/weights.h"

namespace rwkv {

// The weights of weights.h as pointers into one backend's memory. For the CPU they are views of the loaded model
// (host_tensors); the CUDA backend uploads its own copies (backend/cuda/cuda.h). The lists below name every field
// of LayerWeights the forward reads, so that building a view is one line per kind.
// clang-format off
#define RWKV_LAYER_VECTORS(X) \
    X(ln1_w) X(ln1_b) X(ln2_w) X(ln2_b) X(x_r) X(x_w) X(x_k) X(x_v) X(x_a) X(x_g) X(w0) X(a0) X(v0) X(k_k) X(k_a) \
    X(r_k) X(ln_x_w) X(ln_x_b) X(ffn_x_k)
#define RWKV_LAYER_MATRICES(X) \
    X(w1) X(w2) X(a1) X(a2) X(v1) X(v2) X(g1) X(g2) X(receptance) X(key) X(value) X(output) X(ffn_key) X(ffn_value)
// clang-format on

struct LayerTensors {
#define RWKV_DECLARE_VECTOR(name) const float* name = nullptr;  // [C] fp32 (v0: nullptr in layer 0)
#define RWKV_DECLARE_MATRIX(name) WeightMatrix name;            // as in LayerWeights (v1, v2: empty in layer 0)
    RWKV_LAYER_VECTORS(RWKV_DECLARE_VECTOR)
    RWKV_LAYER_MATRICES(RWKV_DECLARE_MATRIX)
#undef RWKV_DECLARE_VECTOR
#undef RWKV_DECLARE_MATRIX
};

struct ModelTensors {
    const float* emb = nullptr;        // [V, C] fp32, ln0 folded in
    std::vector<LayerTensors> layers;  // [L]
    const float* ln_out_w = nullptr;   // [C]
    const float* ln_out_b = nullptr;   // [C]
    WeightMatrix head;                 // [V, C]
};

// Views of a host-resident model (zero copy): what the CPU backend runs on.
ModelTensors host_tensors(const Weights& w);

// Activations for up to max_T rows, allocated once per context in the backend's memory (no allocation per token),
// plus the inputs of a step at fixed addresses (token ids, the state pointer table) so that a CUDA graph captured
// once stays valid.
struct Scratch {
    // Host memory, no logits buffer (the CPU backend writes logits straight into the caller's buffer).
    Scratch(const ModelConfig& c, int max_T);
    // `kind` memory on `device`; `device_logits`: a [max_T, V] logits buffer (backends whose memory the caller
    // cannot read).
    Scratch(const ModelConfig& c, int max_T, MemoryKind kind, int device, bool device_logits);

    int max_T;
    int n_layer;
    Buffer storage;                      // everything below, one allocation
    float* x;                            // [T, C] residual stream
    float* u;                            // [T, C] LN output (ln1, ln2, ln_out)
    float *xr, *xw, *xk, *xv, *xa, *xg;  // [T, C] token-shift mixes
    float *r, *w, *k, *v, *a, *g;        // [T, C] receptance, decay, key, value, ICL rate, gate
    float* kk;                           // [T, C] removal key κ̂
    float* v_first;                      // [T, C] layer 0's value (rwkv7.md §8 item 7)
    float* v_gate;                       // [T, C] value-residual gate
    float* y;                            // [T, C] WKV readout, then gated GroupNorm output
    float* lora;                         // [T, max(Dw, Da, Dv, Dg)] LoRA hidden
    float* ffn;                          // [T, F] ReLU² hidden
    float* logits;                       // [T, V] or nullptr (see the constructors)
    int32_t* tokens;                     // [max_T] the step's token ids
    // [L][3][max_T]: for layer l, table[(3l + 0) * max_T + b] is sequence b's att_shift(l), + 1 its wkv(l), + 2 its
    // ffn_shift(l). Filled by bind_states; the forward passes its rows to token_shift and wkv7.
    float** state_table;

    // Host mirror of the bound state bases, so that binding the same states again uploads nothing.
    std::vector<float*> bound;
    std::vector<float*> host_table;
};

enum class LogitRows { None, Last, All };

// Points the scratch's state table at B states (`bases[b]`: RecurrentState::data layout, in the backend's memory).
void bind_states(Backend& be, Scratch& s, const ModelConfig& c, float* const* bases, int B);

// The forward proper: B independent sequences of T tokens each (B * T <= s.max_T rows), token ids in s.tokens
// (tokens[b * T + t]), sequence b's state bound by bind_states. Writes logits for the last token of each sequence
// ([B, V]) or for every token ([B * T, V]) into `logits` (backend memory) as `rows` says. Only step ops: it can
// be captured in a CUDA graph. B = 1 is prefill (T > 1) or decode (T = 1); T = 1 with B > 1 is batched decode.
void rwkv7_forward(const ModelConfig& c, const ModelTensors& w, Backend& be, Scratch& s, int B, int T, LogitRows rows,
                   float* logits);

// A step as the library runs it: binds `bases`, uploads the host `tokens`, runs the forward (as a replayed graph
// for decode steps, T = 1, when `graph` is set), and copies the logits into the host buffer `host_logits` (may be
// nullptr with rows == None). Returns when the results are in host memory.
void rwkv7_step(const ModelConfig& c, const ModelTensors& w, Backend& be, Scratch& s, float* const* bases, int B,
                const int32_t* tokens, int T, LogitRows rows, float* host_logits, bool graph);

// Host-memory convenience for tests and tools: host states, host tokens, host logits.
void rwkv7_forward(const LoadedModel& model, Backend& be, Scratch& s, RecurrentState* const* states, int B,
                   const int32_t* tokens, int T, LogitRows rows, float* logits);

}  // namespace rwkv
