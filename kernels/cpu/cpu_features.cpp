// Run-time CPU feature detection for the x86-64 kernels. The checks follow the Intel SDM: a feature is usable when
// cpuid reports it and XCR0 (read with xgetbv, itself only valid when cpuid reports OSXSAVE) shows that the OS saves
// the registers it needs: XMM|YMM for AVX, plus opmask|ZMM_Hi256|Hi16_ZMM for AVX-512, plus XTILECFG|XTILEDATA for
// AMX.
#include "kernels/cpu/cpu_features.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define RWKV_HAVE_X86_KERNELS 1
#endif

namespace rwkv {
namespace {

#ifdef RWKV_HAVE_X86_KERNELS
uint64_t read_xcr0() {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t(hi) << 32) | lo;
}
#endif

CpuFeatures detect() {
    CpuFeatures f;
#ifdef RWKV_HAVE_X86_KERNELS
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29), avx = c & (1u << 28);
    if (!osxsave || !avx) return f;
    const uint64_t xcr0 = read_xcr0();
    const bool os_avx = (xcr0 & 0x6) == 0x6;                 // XMM, YMM
    const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
    const bool os_amx = (xcr0 & 0x60000) == 0x60000;         // XTILECFG, XTILEDATA
    if (!os_avx) return f;
    f.fma = fma;
    f.f16c = f16c;
    unsigned max_leaf = __get_cpuid_max(0, nullptr);
    if (max_leaf < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = b & (1u << 5);
    if (os_avx512) {
        f.avx512f = b & (1u << 16);
        f.avx512dq = b & (1u << 17);
        f.avx512bw = b & (1u << 30);
        f.avx512vl = b & (1u << 31);
    }
    if (os_amx) {
        f.amx_bf16 = d & (1u << 22);
        f.amx_tile = d & (1u << 24);
    }
    if (a >= 1 && os_avx512) {  // leaf 7 sub-leaf 1: eax bit 5 = AVX512_BF16
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        f.avx512_bf16 = a1 & (1u << 5);
    }
#endif
    return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

const char* cpu_isa_name(CpuIsa isa) {
    switch (isa) {
        case CpuIsa::Scalar:
            return "scalar";
        case CpuIsa::Avx2:
            return "avx2";
        case CpuIsa::Avx512:
            return "avx512";
    }
    return "?";
}

bool cpu_isa_supported(CpuIsa isa) {
    const CpuFeatures& f = cpu_features();
    switch (isa) {
        case CpuIsa::Scalar:
            return true;
        case CpuIsa::Avx2:
            return f.avx2 && f.fma && f.f16c;
        case CpuIsa::Avx512:
            return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
    }
    return false;
}

CpuIsa cpu_isa_best() {
    if (cpu_isa_supported(CpuIsa::Avx512)) return CpuIsa::Avx512;
    if (cpu_isa_supported(CpuIsa::Avx2)) return CpuIsa::Avx2;
    return CpuIsa::Scalar;
}

CpuIsa cpu_isa_selected() {
    static const CpuIsa selected = [] {
        CpuIsa best = cpu_isa_best();
        const char* env = std::getenv("RWKV_CPU_ISA");
        if (!env) return best;
        CpuIsa want = best;
        if (std::strcmp(env, "scalar") == 0)
            want = CpuIsa::Scalar;
        else if (std::strcmp(env, "avx2") == 0)
            want = CpuIsa::Avx2;
        else if (std::strcmp(env, "avx512") == 0)
            want = CpuIsa::Avx512;
        return want < best ? want : best;
    }();
    return selected;
}

}  // namespace rwkv
