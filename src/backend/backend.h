// The seam between the forward pass and the hardware: the RWKV-shaped ops the forward calls. Each op has a CPU
// twin in kernels/ (the reference). Pointers are in the backend's memory; ops never allocate or synchronise.
#pragma once

#include <cstdint>

#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/time_mix.h"

namespace rwkv {

struct EmbedArgs {
    const int32_t* tokens;  // [T], each < V (checked by the caller)
    const float* emb;       // [V, C] with ln0 folded in
    float* x;               // [T, C]
    int T, C;
};

class Backend {
  public:
    virtual ~Backend() = default;
    virtual const char* name() const = 0;

    virtual void embed(const EmbedArgs& a) = 0;
    virtual void layer_norm(const LayerNormArgs& a) = 0;
    virtual void token_shift(const TokenShiftArgs& a) = 0;
    virtual void matmul(const MatmulArgs& a) = 0;
    virtual void bias_act(const BiasActArgs& a) = 0;
    virtual void key_prep(const KeyPrepArgs& a) = 0;
    virtual void wkv7(const Wkv7Args& a) = 0;
    virtual void time_mix_output(const TimeMixOutputArgs& a) = 0;
};

}  // namespace rwkv
