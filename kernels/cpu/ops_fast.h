// The fast CPU versions of the small RWKV-7 ops: the same contracts as their reference twins (kernels/norm.h,
// elementwise.h, time_mix.h), vectorised over 16 fp32 lanes (kernels/cpu/vec16.h, one source compiled per ISA)
// and spread over the thread pool when a call is big enough to pay for it (prefill; decode runs them inline).
//
// Numerics: each output is computed by one thread in an order that depends only on the shapes, never on the
// thread count or on T, so results are bitwise identical for 1 and N threads and for decode vs prefill. Against
// the reference (double statistics, libm exp/tanh, scalar sums) they differ by float rounding only: lane partial
// sums in a fixed tree, and exp/tanh/σ from a Cephes polynomial (< 2 ulp). docs/cpu-kernels.md has the figures.
#pragma once

#include "kernels/elementwise.h"
#include "kernels/norm.h"
#include "kernels/time_mix.h"

namespace rwkv {

class ThreadPool;

void layer_norm_fast(const LayerNormArgs& a, ThreadPool& pool);
void token_shift_fast(const TokenShiftArgs& a, ThreadPool& pool);
void bias_act_fast(const BiasActArgs& a, ThreadPool& pool);
void key_prep_fast(const KeyPrepArgs& a, ThreadPool& pool);
void wkv7_fast(const Wkv7Args& a, ThreadPool& pool);
void time_mix_output_fast(const TimeMixOutputArgs& a, ThreadPool& pool);

}  // namespace rwkv
