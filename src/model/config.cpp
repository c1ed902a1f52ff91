#include "model/config.h"

namespace rwkv {

uint64_t ModelConfig::fingerprint() const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the ten numbers, little-endian
    for (int v : {n_layer, n_embd, n_head, head_size, n_vocab, n_ffn, d_decay, d_aaa, d_value, d_gate}) {
        for (int b = 0; b < 4; b++) {
            h ^= (uint32_t(v) >> (8 * b)) & 0xff;
            h *= 1099511628211ull;
        }
    }
    return h;
}

std::string ModelConfig::describe() const {
    return "L" + std::to_string(n_layer) + " C" + std::to_string(n_embd) + " H" + std::to_string(n_head) + " V" +
           std::to_string(n_vocab) + " F" + std::to_string(n_ffn) + " lora " + std::to_string(d_decay) + "/" +
           std::to_string(d_aaa) + "/" + std::to_string(d_value) + "/" + std::to_string(d_gate);
}

}  // namespace rwkv
