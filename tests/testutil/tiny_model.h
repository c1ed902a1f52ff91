// The synthetic "tiny" model (random weights, 2 layers of width 128, the full 65,536-token head) and a context on
// it, built in memory through the public API: for the tests and fuzz targets that need a model but not a file.
// Header-only, so that the fuzz targets (which do not link the test utilities) can use it too.
#pragma once

#include <stdexcept>
#include <string>

#include "rwkv/rwkv.h"

namespace rwkv::test {

class TinyModel {
  public:
    // Throws std::runtime_error with the library's message when the model cannot be made.
    explicit TinyModel(int n_threads = 1) {
        rwkv_synthetic_params sp = rwkv_synthetic_default_params();
        sp.preset = "tiny";
        rwkv_model_params mp = rwkv_model_default_params();
        mp.n_threads = n_threads;
        if (rwkv_model_load_synthetic(&sp, &mp, &model_) != RWKV_STATUS_OK ||
            rwkv_context_init(model_, nullptr, &ctx_) != RWKV_STATUS_OK) {
            const std::string why = rwkv_last_error_message();
            rwkv_model_free(model_);
            throw std::runtime_error("synthetic tiny model: " + why);
        }
    }
    ~TinyModel() {
        rwkv_context_free(ctx_);
        rwkv_model_free(model_);
    }
    TinyModel(const TinyModel&) = delete;
    TinyModel& operator=(const TinyModel&) = delete;

    rwkv_model* model() const { return model_; }
    rwkv_context* ctx() const { return ctx_; }

  private:
    rwkv_model* model_ = nullptr;
    rwkv_context* ctx_ = nullptr;
};

}  // namespace rwkv::test
