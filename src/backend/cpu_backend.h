// The reference CPU backend: the kernels/cpu twins, matmuls spread over a thread pool.
#pragma once

#include "backend/backend.h"
#include "common/thread_pool.h"

namespace rwkv {

class CpuBackend final : public Backend {
  public:
    explicit CpuBackend(int n_threads) : pool_(n_threads) {}
    const char* name() const override { return "cpu"; }

    void embed(const EmbedArgs& a) override;
    void layer_norm(const LayerNormArgs& a) override { layer_norm_cpu(a); }
    void token_shift(const TokenShiftArgs& a) override { token_shift_cpu(a); }
    void matmul(const MatmulArgs& a) override { matmul_cpu(a, pool_); }
    void bias_act(const BiasActArgs& a) override { bias_act_cpu(a); }
    void key_prep(const KeyPrepArgs& a) override { key_prep_cpu(a); }
    void wkv7(const Wkv7Args& a) override { wkv7_cpu(a); }
    void time_mix_output(const TimeMixOutputArgs& a) override { time_mix_output_cpu(a); }

    int n_threads() const { return pool_.size(); }

  private:
    ThreadPool pool_;
};

}  // namespace rwkv
