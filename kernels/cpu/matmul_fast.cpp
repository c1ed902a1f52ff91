// Dispatcher of the fast CPU matmul: picks the kernel family once (cpu_isa_selected(), cached) and forwards.
#include "kernels/cpu/matmul_fast.h"

namespace rwkv {

void matmul_fast_cpu(const MatmulArgs& args, ThreadPool& pool, CpuIsa isa) {
    switch (isa) {
        case CpuIsa::Avx512:
            detail::matmul_fast_avx512(args, pool);
            return;
        case CpuIsa::Avx2:
            detail::matmul_fast_avx2(args, pool);
            return;
        case CpuIsa::Scalar:
            break;
    }
    matmul_cpu(args, pool);
}

void matmul_fast_cpu(const MatmulArgs& args, ThreadPool& pool) {
    static const CpuIsa isa = cpu_isa_selected();
    matmul_fast_cpu(args, pool, isa);
}

}  // namespace rwkv
