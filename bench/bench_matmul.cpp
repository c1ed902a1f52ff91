// CPU matmul lab: the machine's streaming-read bandwidth and FMA peak, then decode GEMV GB/s (T = 1, as % of the
// measured bandwidth) and prefill GEMM GFLOPS (T = 128, 512) for every ISA path, dtype and model shape.
//
//   g++ -std=c++20 -O2 -Iinclude -Isrc -I. bench/bench_matmul.cpp kernels/cpu/matmul.cpp
//       kernels/cpu/matmul_fast*.cpp kernels/cpu/cpu_features.cpp src/common/thread_pool.cpp -pthread
//       -o /tmp/bench_matmul
//   /tmp/bench_matmul [--reps N] [--threads N] [--isa scalar,avx2,avx512] [--dtype f32,f16,bf16]
//                     [--only bw,gemv,gemm] [--gemv-T N] [--shape OUTxIN] [--quick]
//                     [--inout] [--zeros FRACTION]
//   --inout: the weights in the InOut layout (the LoRAs, the transposed FFN value matrix); --zeros: that fraction
//   of the GEMV input set to exact zeros (the ReLU² hidden of the sparse FFN: InOut skips their rows).
//
// Method. Bandwidth: sum of a 1 GiB fp32 buffer with 8-lane loads, 1 and `threads` threads, timed per 16 MiB
// chunk (each thread reads its share of the chunk as 1 or as 8 interleaved streams; the 8-stream figure is the
// reference). GEMV: T = 1 calls cycle over enough copies of the weights (>= 256 MB together) that every call reads
// them from DRAM, as in real decode where the whole model streams through; GB/s counts the weight bytes only;
// matrices over 32 MB are timed per call on 16 MB slices of their rows. GEMM: one matrix, x [T, n_in], time per
// call; GFLOPS = 2·T·n_out·n_in / time. Every figure is the median (and the best) of the samples of `reps`
// repetitions after a warm-up: on a machine shared with other work the best sample estimates the unloaded machine.
// Random weights ~ N(0, 1/n_in), never zeros.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "common/half.h"
#include "common/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul_fast.h"

namespace {

using namespace rwkv;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU time of all the threads of the process (threads waiting on the pool's condition variable take none).
double process_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct Options {
    int reps = 7;
    int threads = 2;
    int gemv_T = 1;
    bool quick = false;
    int shape_out = 0, shape_in = 0;  // --shape OUTxIN: only this shape
    std::vector<CpuIsa> isas;
    std::vector<DType> dtypes = {DType::BF16, DType::F16, DType::F32};
    bool bw = true, gemv = true, gemm = true;
    bool inout = false;  // --inout
    double zeros = 0;    // --zeros
};
Options g_opt;

const char* dtype_str(DType t) {
    return t == DType::F32 ? "f32" : t == DType::F16 ? "f16" : "bf16";
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    size_t p = 0;
    while (p <= s.size()) {
        size_t q = s.find(',', p);
        if (q == std::string::npos) q = s.size();
        out.push_back(s.substr(p, q - p));
        p = q + 1;
    }
    return out;
}

// ---- machine figures

// Sum of n floats read as `streams` interleaved sequential streams (one 64-byte line from each per iteration):
// several streams keep more cache misses in flight than one, as the GEMV's row tiles do.
__attribute__((target("avx2"))) double sum_avx2(const float* p, size_t n, int streams) {
    const size_t len = n / streams / 16 * 16;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (size_t i = 0; i < len; i += 16)
        for (int s = 0; s < streams; s++) {
            a0 = _mm256_add_ps(a0, _mm256_load_ps(p + s * len + i));
            a1 = _mm256_add_ps(a1, _mm256_load_ps(p + s * len + i + 8));
        }
    alignas(32) float s[8];
    _mm256_store_ps(s, _mm256_add_ps(a0, a1));
    return double(s[0]) + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

double sum_scalar(const float* p, size_t n, int streams) {
    const size_t len = n / streams / 8 * 8;
    float a[8] = {};
    for (size_t i = 0; i < len; i += 8)
        for (int s = 0; s < streams; s++)
            for (int l = 0; l < 8; l++) a[l] += p[s * len + i + l];
    return double(a[0]) + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

// Median and best of a set of throughputs.
struct Rate {
    double median = 0, best = 0;
};

Rate rate_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.back()};
}

// Streaming-read GB/s over a 1 GiB buffer, timed per 16 MiB chunk (each chunk split between `threads` threads, each
// reading its part as `streams` interleaved streams), over `reps` passes: the median and the best chunk.
Rate read_bandwidth(const float* buf, size_t n, int threads, int streams, int reps) {
    ThreadPool pool(threads);
    const bool avx2 = cpu_isa_supported(CpuIsa::Avx2);
    const size_t chunk = (size_t(16) << 20) / 4;
    std::vector<double> gbs;
    volatile double sink = 0;
    for (int r = 0; r <= reps; r++)
        for (size_t c0 = 0; c0 + chunk <= n; c0 += chunk) {
            std::vector<double> part(threads);
            auto t0 = Clock::now();
            pool.parallel_for(threads, 1, [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; i++) {
                    const float* p = buf + c0 + chunk / threads * i;
                    part[i] = avx2 ? sum_avx2(p, chunk / threads, streams) : sum_scalar(p, chunk / threads, streams);
                }
            });
            const double sec = seconds_since(t0);
            for (double v : part) sink = sink + v;
            if (r > 0) gbs.push_back(double(chunk) * 4 / sec / 1e9);
        }
    return rate_of(gbs);
}

// Peak fp32 FMA rate: 12 independent accumulator chains per thread, no memory traffic.
__attribute__((target("avx2,fma"))) double fma_avx2(int64_t iters) {
    __m256 acc[12];
    for (int j = 0; j < 12; j++) acc[j] = _mm256_set1_ps(float(j));
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
    float out = 0;
    for (int j = 0; j < 12; j++) out += _mm256_cvtss_f32(acc[j]);
    return out;
}

__attribute__((target("avx512f"))) double fma_avx512(int64_t iters) {
    __m512 acc[12];
    for (int j = 0; j < 12; j++) acc[j] = _mm512_set1_ps(float(j));
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
    float out = 0;
    for (int j = 0; j < 12; j++) out += _mm512_cvtss_f32(acc[j]);
    return out;
}

Rate peak_gflops(CpuIsa isa, int threads, int reps) {
    ThreadPool pool(threads);
    const int64_t iters = 2'000'000;  // ~10 ms per sample
    const int lanes = isa == CpuIsa::Avx512 ? 16 : 8;
    std::vector<double> g;
    volatile double sink = 0;
    for (int r = 0; r <= 4 * reps; r++) {
        auto t0 = Clock::now();
        pool.parallel_for(threads, 1, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; i++) sink = sink + (isa == CpuIsa::Avx512 ? fma_avx512(iters) : fma_avx2(iters));
        });
        const double s = seconds_since(t0);
        if (r > 0) g.push_back(double(iters) * 12 * lanes * 2 * threads / s / 1e9);
    }
    return rate_of(g);
}

// ---- test matrices

struct Matrix {
    std::vector<uint16_t> h;
    std::vector<float> f;
    WeightMatrix w;
};

Matrix make_matrix(DType dtype, int n_out, int n_in, std::mt19937& rng) {
    Matrix m;
    std::normal_distribution<float> nd(0.0f, 1.0f / std::sqrt(float(n_in)));
    const size_t n = size_t(n_out) * n_in;
    if (dtype == DType::F32) {
        m.f.resize(n);
        for (float& v : m.f) v = nd(rng);
        m.w.data = m.f.data();
    } else {
        // Fast fill: 4096 random values, repeated with a per-block offset (the contents do not matter for timing,
        // only that they are normal non-zero numbers).
        std::vector<uint16_t> pool(4096 + 257);
        for (uint16_t& v : pool) {
            const float x = nd(rng);
            if (dtype == DType::BF16) {
                v = f32_to_bf16(x);
            } else {
                _Float16 hx = _Float16(x);
                std::memcpy(&v, &hx, 2);
            }
        }
        m.h.resize(n);
        for (size_t i = 0; i < n; i += 4096)
            std::memcpy(m.h.data() + i, pool.data() + (i / 4096) % 257, std::min<size_t>(4096, n - i) * 2);
        m.w.data = m.h.data();
    }
    m.w.dtype = dtype;
    m.w.n_out = n_out;
    m.w.n_in = n_in;
    m.w.layout = g_opt.inout ? WeightMatrix::Layout::InOut : WeightMatrix::Layout::OutIn;
    return m;
}

std::vector<float> activations(size_t n, std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<float> x(n);
    for (float& v : x) v = u(rng) < g_opt.zeros ? 0.0f : nd(rng);
    return x;
}

struct Shape {
    int n_out, n_in;
    const char* what;
};

}  // namespace

int main(int argc, char** argv) {
    Options& opt = g_opt;
    for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512})
        if (cpu_isa_supported(isa)) opt.isas.push_back(isa);
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--reps") {
            opt.reps = std::max(1, std::atoi(next().c_str()));
        } else if (a == "--threads") {
            opt.threads = std::max(1, std::atoi(next().c_str()));
        } else if (a == "--gemv-T") {
            opt.gemv_T = std::max(1, std::atoi(next().c_str()));
        } else if (a == "--shape") {
            const std::string v = next();
            const size_t xpos = v.find('x');
            opt.shape_out = std::atoi(v.substr(0, xpos).c_str());
            opt.shape_in = xpos == std::string::npos ? 0 : std::atoi(v.substr(xpos + 1).c_str());
        } else if (a == "--inout") {
            opt.inout = true;
        } else if (a == "--zeros") {
            opt.zeros = std::atof(next().c_str());
        } else if (a == "--quick") {
            opt.quick = true;
        } else if (a == "--isa") {
            opt.isas.clear();
            for (const std::string& s : split(next())) {
                CpuIsa isa = s == "avx512" ? CpuIsa::Avx512 : s == "avx2" ? CpuIsa::Avx2 : CpuIsa::Scalar;
                if (cpu_isa_supported(isa)) opt.isas.push_back(isa);
            }
        } else if (a == "--dtype") {
            opt.dtypes.clear();
            for (const std::string& s : split(next()))
                opt.dtypes.push_back(s == "f32" ? DType::F32 : s == "f16" ? DType::F16 : DType::BF16);
        } else if (a == "--only") {
            opt.bw = opt.gemv = opt.gemm = false;
            for (const std::string& s : split(next())) {
                opt.bw |= s == "bw";
                opt.gemv |= s == "gemv";
                opt.gemm |= s == "gemm";
            }
        } else {
            std::fprintf(stderr, "unknown option %s (see the header of bench/bench_matmul.cpp)\n", a.c_str());
            return 2;
        }
    }
    std::printf("isa best %s; threads %d; %d repetitions; med = median, best = fastest sample\n",
                cpu_isa_name(cpu_isa_best()), opt.threads, opt.reps);

    // ---- bandwidth and peak
    Rate bw1, bwn;
    if (opt.bw || opt.gemv) {
        const size_t n = (size_t(1) << 30) / 4;
        float* buf = static_cast<float*>(std::aligned_alloc(64, n * 4));
        ThreadPool fill(opt.threads);  // first touch by the threads that will read
        fill.parallel_for(int64_t(n), 1 << 20, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; i++) buf[i] = float(i & 1023) * 1e-3f;
        });
        const Rate one1 = read_bandwidth(buf, n, 1, 1, opt.reps);
        const Rate onen = read_bandwidth(buf, n, opt.threads, 1, opt.reps);
        bw1 = read_bandwidth(buf, n, 1, 8, opt.reps);
        bwn = read_bandwidth(buf, n, opt.threads, 8, opt.reps);
        std::free(buf);
        std::printf("\nstreaming read, 1 GiB in 16 MiB chunks, GB/s (med / best chunk):\n");
        std::printf("  1 stream per thread:  1 thread %.1f / %.1f, %d threads %.1f / %.1f\n", one1.median, one1.best,
                    opt.threads, onen.median, onen.best);
        std::printf("  8 streams per thread: 1 thread %.1f / %.1f, %d threads %.1f / %.1f   <- the reference below\n",
                    bw1.median, bw1.best, opt.threads, bwn.median, bwn.best);
        for (CpuIsa isa : opt.isas)
            if (isa != CpuIsa::Scalar && opt.bw) {
                const Rate p1 = peak_gflops(isa, 1, opt.reps), pn = peak_gflops(isa, opt.threads, opt.reps);
                std::printf("fp32 FMA peak %-6s, GFLOPS (med / best): 1 thread %.0f / %.0f, %d threads %.0f / %.0f\n",
                            cpu_isa_name(isa), p1.median, p1.best, opt.threads, pn.median, pn.best);
            }
    }

    std::mt19937 rng(42);

    // ---- decode GEMV
    if (opt.gemv) {
        std::vector<Shape> shapes = {
            {768, 768, "0.1B att"}, {3072, 768, "0.1B ffn.key"}, {2048, 2048, "1.5B att"}, {8192, 2048, "1.5B ffn.key"},
            {4096, 4096, "7B att"}, {16384, 4096, "7B ffn.key"}, {65536, 768, "0.1B head"}};
        if (opt.quick) shapes = {{768, 768, "0.1B att"}, {4096, 4096, "7B att"}, {16384, 4096, "7B ffn.key"}};
        if (opt.shape_out > 0) shapes = {{opt.shape_out, opt.shape_in, "--shape"}};
        std::printf(
            "\nGEMV T=%d, weights cycled through >= 256 MB of copies (read from DRAM), GB/s of weights per "
            "call (med / best call), %% of the streaming read (med of med / best of best)\n",
            opt.gemv_T);
        std::printf(
            "| shape         | what         | dtype | isa    |    MB | 1 thr GB/s  |  %%bw1   | %d thr GB/s  "
            "|  %%bw    |\n",
            opt.threads);
        std::printf(
            "|---------------|--------------|-------|--------|------:|------------:|---------:|------------:|"
            "---------:|\n");
        for (const Shape& s : shapes)
            for (DType dt : opt.dtypes) {
                const double mb = double(s.n_out) * s.n_in * dtype_size(dt) / 1e6;
                const int copies = std::max(1, int(std::ceil(256.0 / mb)));
                // Calls on matrices over 32 MB are timed per slice of rows of <= 16 MB (the same kernel on a
                // contiguous part of the matrix), as the reference bandwidth is per 16 MiB chunk: a sample of
                // several milliseconds on a shared machine mostly measures the scheduler.
                const int slice_rows = mb > 32 ? int(16e6 / (double(s.n_in) * dtype_size(dt))) : s.n_out;
                std::vector<Matrix> ms;
                for (int c = 0; c < copies; c++) ms.push_back(make_matrix(dt, s.n_out, s.n_in, rng));
                const std::vector<float> x = activations(size_t(opt.gemv_T) * s.n_in, rng);
                std::vector<float> y(size_t(opt.gemv_T) * s.n_out);
                for (CpuIsa isa : opt.isas) {
                    Rate g[2];
                    for (int pass = 0; pass < 2; pass++) {
                        ThreadPool pool(pass == 0 ? 1 : opt.threads);
                        std::vector<double> v;
                        for (int r = 0; r <= opt.reps; r++)
                            for (int c = 0; c < copies; c++)
                                for (int o = 0; o < s.n_out; o += slice_rows) {
                                    WeightMatrix part = ms[c].w;  // rows [o, o + rows): a contiguous OutIn matrix
                                    part.n_out = std::min(slice_rows, s.n_out - o);
                                    part.data =
                                        static_cast<const char*>(part.data) + size_t(o) * s.n_in * dtype_size(dt);
                                    auto t0 = Clock::now();
                                    matmul_fast_cpu({&part, x.data(), y.data(), opt.gemv_T, false}, pool, isa);
                                    const double sec = seconds_since(t0);
                                    if (r > 0) v.push_back(double(part.n_out) * s.n_in * dtype_size(dt) / 1e9 / sec);
                                }
                        g[pass] = rate_of(v);
                    }
                    std::printf(
                        "| %5d x %-5d | %-12s | %-5s | %-6s | %5.1f | %5.1f/%5.1f | %3.0f/%3.0f%% | %5.1f/%5.1f | "
                        "%3.0f/%3.0f%% |\n",
                        s.n_out, s.n_in, s.what, dtype_str(dt), cpu_isa_name(isa), mb, g[0].median, g[0].best,
                        100 * g[0].median / bw1.median, 100 * g[0].best / bw1.best, g[1].median, g[1].best,
                        100 * g[1].median / bwn.median, 100 * g[1].best / bwn.best);
                    std::fflush(stdout);
                }
            }
    }

    // ---- prefill GEMM
    if (opt.gemm) {
        std::vector<Shape> shapes = {{768, 768, "0.1B att"},       {3072, 768, "0.1B ffn.key"},
                                     {768, 3072, "0.1B ffn.val"},  {1024, 1024, "0.4B att"},
                                     {4096, 1024, "0.4B ffn.key"}, {1024, 4096, "0.4B ffn.val"}};
        std::vector<int> Ts = {128, 512};
        if (opt.quick) shapes = {{768, 768, "0.1B att"}, {3072, 768, "0.1B ffn.key"}, {768, 3072, "0.1B ffn.val"}};
        if (opt.shape_out > 0) shapes = {{opt.shape_out, opt.shape_in, "--shape"}};
        std::printf(
            "\nGEMM, %d threads: GFLOPS = 2*T*n_out*n_in / wall time (med / best call); per CPU-s = the same "
            "over the process CPU time (med), i.e. per core actually given to us\n",
            opt.threads);
        std::printf(
            "| shape         | what         | dtype | isa    |   T | ms/call (med) | GFLOPS med/best | per CPU-s |\n");
        std::printf(
            "|---------------|--------------|-------|--------|----:|--------------:|----------------:|----------:|\n");
        ThreadPool pool(opt.threads);
        for (const Shape& s : shapes)
            for (DType dt : opt.dtypes) {
                Matrix m = make_matrix(dt, s.n_out, s.n_in, rng);
                for (int T : Ts) {
                    const std::vector<float> x = activations(size_t(T) * s.n_in, rng);
                    std::vector<float> y(size_t(T) * s.n_out);
                    for (CpuIsa isa : opt.isas) {
                        std::vector<double> v, c;
                        const double flop = 2.0 * T * s.n_out * s.n_in;
                        for (int r = 0; r <= opt.reps; r++) {
                            const double c0 = process_cpu_seconds();
                            auto t0 = Clock::now();
                            matmul_fast_cpu({&m.w, x.data(), y.data(), T, false}, pool, isa);
                            const double sec = seconds_since(t0), cpu = process_cpu_seconds() - c0;
                            if (r > 0) v.push_back(flop / sec / 1e9);
                            if (r > 0) c.push_back(flop / cpu / 1e9);
                        }
                        const Rate g = rate_of(v), per_cpu = rate_of(c);
                        std::printf("| %5d x %-5d | %-12s | %-5s | %-6s | %3d | %13.2f | %7.1f/%7.1f | %9.1f |\n",
                                    s.n_out, s.n_in, s.what, dtype_str(dt), cpu_isa_name(isa), T, flop / g.median / 1e6,
                                    g.median, g.best, per_cpu.median);
                        std::fflush(stdout);
                    }
                }
            }
    }
    return 0;
}
