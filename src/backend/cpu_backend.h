// The CPU backend: the kernels/cpu twins, matmuls spread over a thread pool. Matmuls use the vectorised kernels
// (kernels/cpu/matmul_fast.h, runtime ISA dispatch) unless `reference` asks for the plain loops of matmul_cpu,
// which stay the oracle (RWKV_CPU_REFERENCE=1 selects them for a whole process).
#pragma once

#include "backend/backend.h"
#include "common/thread_pool.h"
#include "kernels/cpu/matmul_fast.h"

namespace rwkv {

class CpuBackend final : public Backend {
  public:
    CpuBackend(int n_threads, bool reference) : pool_(n_threads), reference_(reference) {}
    const char* name() const override { return reference_ ? "cpu-reference" : "cpu"; }

    void embed(const EmbedArgs& a) override;
    void layer_norm(const LayerNormArgs& a) override { layer_norm_cpu(a); }
    void token_shift(const TokenShiftArgs& a) override { token_shift_cpu(a); }
    void matmul(const MatmulArgs& a) override { reference_ ? matmul_cpu(a, pool_) : matmul_fast_cpu(a, pool_); }
    void bias_act(const BiasActArgs& a) override { bias_act_cpu(a); }
    void key_prep(const KeyPrepArgs& a) override { key_prep_cpu(a); }
    void wkv7(const Wkv7Args& a) override { wkv7_cpu(a); }
    void time_mix_output(const TimeMixOutputArgs& a) override { time_mix_output_cpu(a); }

    int n_threads() const { return pool_.size(); }

  private:
    ThreadPool pool_;
    bool reference_;
};

// True when RWKV_CPU_REFERENCE=1: contexts use the plain reference kernels.
bool cpu_reference_requested();

}  // namespace rwkv
