// Shared by the fuzz targets: what counts as a correct reaction to a hostile input, and the checks on what a
// reader returns when it accepts one.
//
// A reader may refuse an input only by throwing rwkv::Error with a non-empty message. Any other exception
// (std::bad_alloc, std::length_error, a JSON library exception, ...) escapes the target, and libFuzzer reports
// it as a crash: a huge allocation or an unhandled case is a finding, not an acceptable refusal.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/checkpoint.h"
#include "model/config.h"
#include "rwkv/error.hpp"

namespace rwkv::fuzz {

// Stops the run with a message: a broken invariant (libFuzzer saves the input as a crash).
[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
}
#define RWKV_FUZZ_CHECK(cond)                                     \
    do {                                                          \
        if (!(cond)) ::rwkv::fuzz::fail(#cond " (" __FILE__ ")"); \
    } while (0)

// Runs `f`; an rwkv::Error is the expected refusal (returns false); success returns true.
template <typename F>
bool accepts(F&& f) {
    try {
        f();
        return true;
    } catch (const rwkv::Error& e) {
        RWKV_FUZZ_CHECK(e.what()[0] != '\0');
        return false;
    }
}

// Every tensor of an accepted checkpoint must lie inside the mapped file, or in a buffer the checkpoint owns
// (heap memory: reading all of it lets ASan check its extent).
inline void check_tensors(const Checkpoint& ckpt) {
    const uint8_t* map = ckpt.file().data();
    const size_t size = ckpt.file().size();
    for (const TensorView& t : ckpt.tensors()) {
        const size_t n = t.nbytes();  // throws rwkv::Error for an absurd shape: would be a reader bug here
        const auto* p = static_cast<const uint8_t*>(t.data);
        RWKV_FUZZ_CHECK(p != nullptr);
        if (p >= map && p <= map + size) {
            RWKV_FUZZ_CHECK(n <= size_t(map + size - p));
        } else {
            RWKV_FUZZ_CHECK(n <= size || n <= 64);  // copies are bounded by the file size
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < n; i++) sink = sink ^ p[i];
        }
    }
}

// The model shape whose state files fuzz_state reads (small, so that a state file is a few hundred bytes;
// the state reader does not care that head_size is not 64).
inline ModelConfig fuzz_state_config() {
    ModelConfig c;
    c.n_layer = 2;
    c.n_embd = 8;
    c.n_head = 2;
    c.head_size = 4;
    c.n_vocab = 256;
    c.n_ffn = 32;
    c.d_decay = 4;
    c.d_aaa = 4;
    c.d_value = 4;
    c.d_gate = 4;
    return c;
}

}  // namespace rwkv::fuzz
