// One sequence's recurrent state (rwkv7.md §2.6), and its file formats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace rwkv {

struct RecurrentState {
    explicit RecurrentState(const ModelConfig& c) : config(c), data(c.state_floats(), 0.0f) {}

    ModelConfig config;
    // Per layer l, at offset l * config.layer_state_floats():
    //   att_shift [C]        LN1 output of the previous token
    //   wkv       [H, N, N]  S[h][value i][key j], fp32
    //   ffn_shift [C]        LN2 output of the previous token
    std::vector<float> data;

    float* att_shift(int l) { return data.data() + l * config.layer_state_floats(); }
    float* wkv(int l) { return att_shift(l) + config.n_embd; }
    float* ffn_shift(int l) { return wkv(l) + int64_t(config.n_head) * config.head_size * config.head_size; }
};

// Versioned binary state file (see docs/formats.md): magic, version, the config numbers, fingerprint, the floats,
// CRC-32. Written atomically. Loading checks everything and leaves `state` untouched on any error.
void save_state(const RecurrentState& state, const std::string& path);
void load_state(RecurrentState& state, const std::string& path);
// The same format in memory. `where` names the source in error messages.
std::vector<uint8_t> serialize_state(const RecurrentState& state);
void deserialize_state(RecurrentState& state, const uint8_t* bytes, size_t n, const std::string& where);

// RecurrentState tuning (rwkv7.md §6): blocks.l.att.time_state [H, N, N] (any float dtype) from a .pth or .safetensors
// file, loaded untransposed into the WKV matrices; shifts zero.
void load_tuning_state(RecurrentState& state, const std::string& path);

}  // namespace rwkv
