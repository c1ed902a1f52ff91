// Synthetic RWKV-7 models with the shapes of the released ones (rwkv7.md §7): random weights of realistic scale,
// generated in memory, deterministically from a seed, for benchmarks and tests that need a real-sized model
// without downloading one. An optional knob biases the FFN so that a chosen fraction of the ReLU² pre-activations
// is <= 0, like trained models (rwkv7.md §3, performance.md §5). See docs/synthetic.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "model/config.h"

namespace rwkv {

class ThreadPool;

struct SyntheticSpec {
    std::string preset;  // "0.1b", "0.4b", "1.5b", "2.9b", "7.2b", "13.3b", or "tiny" (L2 C128 F256 V256, the
                         // shapes of tests/fixtures)
    DType dtype = DType::BF16;
    float ffn_sparsity = -1;  // < 0: natural (random weights give ~50%); else the target fraction of ReLU²
                              // pre-activations <= 0, in [0, 0.99]
    uint64_t seed = 1;
    int n_vocab = 0;  // rows of emb.weight and head.weight; <= 0 means the preset's own (65536; 256 for "tiny")
};

// The presets' names, in size order: "tiny", "0.1b", ..., "13.3b".
const std::vector<std::string>& synthetic_presets();

// The shapes of a preset (rwkv7.md §7): L, C, H = C/64, N = 64, F = 4C (2C for "tiny"), V = 65536 (256 for
// "tiny") and the LoRA widths Dw, Da, Dv, Dg. Throws rwkv::Error(INVALID_ARGUMENT) listing the presets.
ModelConfig synthetic_config(const std::string& preset);

// Elements of every tensor of a released-style native checkpoint with this config (layer 0 without v0/v1/v2,
// ln0 included): the "Params" column of rwkv7.md §7.
int64_t checkpoint_param_count(const ModelConfig& c);

// An in-memory checkpoint holding every tensor of the native BlinkDL layout with its stored shape (rwkv7.md §1.2;
// layer 0 without v0/v1/v2, as released files), in spec.dtype, generated straight into the checkpoint's own
// buffers. Each element is a function of (seed, tensor index, element index) only, so the bytes do not depend on
// the thread count. `pool` may be null (one thread). `achieved_sparsity`, when not null, receives the fraction of
// ReLU² pre-activations <= 0 measured on held-out LayerNorm-like inputs through the stored ffn.key matrices,
// averaged over layers. The checkpoint's path() is "synthetic:<preset>" and its format() Safetensors.
// Throws rwkv::Error(INVALID_ARGUMENT) for an unknown preset, a sparsity outside [0, 0.99] (other than < 0) or a
// bad vocabulary size.
std::unique_ptr<Checkpoint> make_synthetic_checkpoint(const SyntheticSpec& spec, ThreadPool* pool = nullptr,
                                                      double* achieved_sparsity = nullptr);

// Converts n floats between the checkpoint dtypes (f32 -> f16/bf16 rounds to nearest even; f16 overflows to inf).
void convert_floats(const void* src, DType src_type, void* dst, DType dst_type, int64_t n);

}  // namespace rwkv
