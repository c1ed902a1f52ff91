// The CPU backend over a thread pool: the vectorised kernels (kernels/cpu/matmul_fast.h with runtime ISA dispatch,
// kernels/cpu/ops_fast.h) unless `reference` asks for the plain reference twins (kernels/cpu/*.cpp), which stay
// the oracle (RWKV_CPU_REFERENCE=1 selects them for a whole process).
#pragma once

#include "backend/backend.h"
#include "common/thread_pool.h"
#include "kernels/cpu/matmul_fast.h"
#include "kernels/cpu/ops_fast.h"

namespace rwkv {

class CpuBackend final : public Backend {
  public:
    CpuBackend(int n_threads, bool reference) : pool_(n_threads), reference_(reference) {}
    const char* name() const override { return reference_ ? "cpu-reference" : "cpu"; }

    void embed(const EmbedArgs& a) override;
    void layer_norm(const LayerNormArgs& a) override { reference_ ? layer_norm_cpu(a) : layer_norm_fast(a, pool_); }
    void token_shift(const TokenShiftArgs& a) override { reference_ ? token_shift_cpu(a) : token_shift_fast(a, pool_); }
    void matmul(const MatmulArgs& a) override { reference_ ? matmul_cpu(a, pool_) : matmul_fast_cpu(a, pool_); }
    void bias_act(const BiasActArgs& a) override { reference_ ? bias_act_cpu(a) : bias_act_fast(a, pool_); }
    void key_prep(const KeyPrepArgs& a) override { reference_ ? key_prep_cpu(a) : key_prep_fast(a, pool_); }
    void wkv7(const Wkv7Args& a) override { reference_ ? wkv7_cpu(a) : wkv7_fast(a, pool_); }
    void time_mix_output(const TimeMixOutputArgs& a) override {
        reference_ ? time_mix_output_cpu(a) : time_mix_output_fast(a, pool_);
    }

    int n_threads() const { return pool_.size(); }

  private:
    ThreadPool pool_;
    bool reference_;
};

// True when RWKV_CPU_REFERENCE=1: contexts use the plain reference kernels.
bool cpu_reference_requested();

}  // namespace rwkv
