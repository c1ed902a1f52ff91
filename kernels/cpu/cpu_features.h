// What the CPU we run on can execute, detected once with cpuid/xgetbv (the instruction set must be reported by
// the CPU *and* its register state enabled by the OS), and the vector instruction set the fast CPU kernels use.
#pragma once

namespace rwkv {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512dq = false;
    bool avx512_bf16 = false;  // vdpbf16ps / vcvtne2ps2bf16
    bool amx_tile = false;     // AMX tiles (cpuid + XCR0; Linux also wants arch_prctl permission before use)
    bool amx_bf16 = false;
};

// Detected on first call, then cached. All false on non-x86 builds.
const CpuFeatures& cpu_features();

// The kernel families of the fast CPU kernels, in increasing order of capability.
enum class CpuIsa {
    Scalar,  // portable C++ (the reference kernels)
    Avx2,    // AVX2 + FMA + F16C, 8 fp32 lanes
    Avx512,  // AVX-512 F/BW/VL/DQ + FMA + F16C, 16 fp32 lanes
};

const char* cpu_isa_name(CpuIsa isa);  // "scalar", "avx2", "avx512"
bool cpu_isa_supported(CpuIsa isa);    // this CPU (and this build) can run it
CpuIsa cpu_isa_best();                 // the most capable supported family

// The family the kernels use: cpu_isa_best(), lowered by the environment variable RWKV_CPU_ISA=scalar|avx2|avx512
// (a request above what the CPU supports falls back to the best supported; an unknown value is ignored). Read once.
CpuIsa cpu_isa_selected();

}  // namespace rwkv
