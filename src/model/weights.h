// The weights of an RWKV-7 model, with the checkpoint's own names. Large matrices are views into the mapped
// checkpoint (zero copy, stored dtype); small vectors are fp32 copies. Math orientation: y = M x (rwkv7.md §2).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "io/checkpoint.h"
#include "kernels/matmul.h"
#include "model/config.h"

namespace rwkv {

struct LayerWeights {
    std::vector<float> ln1_w, ln1_b;                  // [C] blocks.l.ln1
    std::vector<float> ln2_w, ln2_b;                  // [C] blocks.l.ln2
    std::vector<float> x_r, x_w, x_k, x_v, x_a, x_g;  // [C] att.x_* token-shift mixes (stored [1,1,C])
    std::vector<float> w0, a0, v0;                    // [C] LoRA biases (v0 empty in layer 0)
    WeightMatrix w1, w2;                              // decay LoRA: C -> Dw -> C
    WeightMatrix a1, a2;                              // in-context learning rate LoRA: C -> Da -> C
    WeightMatrix v1, v2;                              // value residual LoRA: C -> Dv -> C (layers >= 1)
    WeightMatrix g1, g2;                              // gate LoRA: C -> Dg -> C
    std::vector<float> k_k, k_a;                      // [C]
    std::vector<float> r_k;                           // [C] bonus (stored [H, N])
    WeightMatrix receptance, key, value, output;      // [C, C] att.*.weight
    std::vector<float> ln_x_w, ln_x_b;                // [C] att.ln_x per-head GroupNorm affine
    std::vector<float> ffn_x_k;                       // [C]
    WeightMatrix ffn_key;                             // [F, C]
    WeightMatrix ffn_value;                           // [C, F] used as InOut: an owned transposed copy (sparse FFN)
};

struct Weights {
    std::vector<float> emb;                           // [V, C] emb.weight with blocks.0.ln0 folded in, fp32
    std::vector<LayerWeights> layers;                 // [L]
    std::vector<float> ln_out_w, ln_out_b;            // [C]
    WeightMatrix head;                                // [V, C] head.weight
    std::vector<std::unique_ptr<std::byte[]>> owned;  // matrices the loader re-laid out (the transposed ffn.value)
};

enum class TensorNaming { Native, HuggingFace };

// Everything the loader learns from a checkpoint.
struct LoadedModel {
    std::unique_ptr<Checkpoint> checkpoint;  // owns the mapping the matrices point into
    ModelConfig config;
    TensorNaming naming = TensorNaming::Native;
    DType weight_dtype = DType::F32;  // dtype of the large matrices
    int64_t n_params = 0;             // elements of the tensors used
    int64_t n_bytes = 0;              // their bytes as stored
    Weights weights;
};

// Infers the config, checks every required tensor's presence and shape, rejects variants with other math
// (DeepEmbed, Pile vocabulary, RWKV-5/6) and warns about unknown extra tensors. Throws rwkv::Error.
LoadedModel load_model(std::unique_ptr<Checkpoint> checkpoint);

}  // namespace rwkv
