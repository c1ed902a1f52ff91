// Sampling on the device: argmax, logit edits (bans, bias, penalties) and the CPU sampler's select()
// (src/text/sampler.*, docs/sampling.md §1.2) so that a decode step copies one int32 per sequence, not V floats.
//
// argmax            one block of 1024 threads per row: max (and the NaN/+inf check), then the lowest id equal to
//                   the max. Bytes: reads B·V·4 twice (the second pass from L2).
// apply_logit_edits one thread per call walks the edit list in order (lists are short: bans, bias, the occurrence
//                   map), so the float rounding of l + bias - penalty is the CPU's.
// sample            one block of 1024 threads per row; the weights w[i] live in the workspace [B, V] fp32.
//   1. max + check (NaN/+inf or all -inf: out = -1); temperature 0: argmax.
//   2. w[i] = exp_nonpositive(l[i] - max): the CPU sampler's Cody-Waite + Cephes polynomial with explicit
//      __fmul_rn/__fadd_rn, so w is bit-identical to the CPU's. Z = Σ w in fixed point, round(w · 2^(62 -
//      ceil log2 V)) (2^46 at V = 65536): uint64 sums are exact and associative, so the result is the same in any
//      order, hence deterministic without float atomics.
//   3. Cuts (each keeps a prefix of the order (w desc, id asc)): top-p: the cutoff is the largest τ such that
//      mass(w >= τ) >= top_p·Z, found by a 4-pass radix select on the bit pattern of w (non-negative floats order
//      like their bits) over shared-memory histograms (integer atomics); N_p = #(w >= τ). top-k: N <= k. min-p:
//      N <= #(w >= min_p). Then τ = the N-th largest weight (radix select on counts), and the survivors are
//      w > τ plus the first N - #(w > τ) ids with w == τ (lower ids win ties at the k-th place; at a top-p
//      cutoff all ties survive since N = N_p).
//   4. Draw: thread t owns ids [t·V/1024, (t+1)·V/1024); it sums q = tempered weight (w, or exp_np((l - max)·(1/T))
//      for T != 1; 0 for non-survivors) over its ids in double, in id order; an inclusive block scan of the
//      partial sums (fixed shuffle tree) gives S; target = u·S; the thread whose [prefix, prefix + sum) holds the
//      target walks its ids and returns the first whose running sum exceeds the target (rounding fallbacks as in
//      the CPU: the last id with q > 0 of the range, or overall).
//   Differs from the CPU only in the rounding of Z (fixed point vs double lanes) and of the draw's partial sums,
//   so a cut or a draw within ~1e-7 relative of a boundary may go the other way. Bytes: ~12 passes over V floats
//   per row, all but the first from L2 (the row's 256 KB at V = 65536).
#include <cfloat>
#include <climits>
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch.h"

namespace rwkv::cuda {
namespace {

using detail::kFullMask;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr float kInf = __builtin_huge_valf();  // +inf

// ---- block reductions (every thread gets the result; contain __syncthreads)

template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, o));
    return v;
}

template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T identity) {
    __shared__ T red[kWarps];
    __shared__ T result;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_reduce(v, op);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T t = lane < kWarps ? red[lane] : identity;
        t = warp_reduce(t, op);
        if (lane == 0) result = t;
    }
    __syncthreads();
    const T r = result;
    __syncthreads();  // red/result may be reused by the next call
    return r;
}

struct MaxF {
    __device__ float operator()(float a, float b) const { return a > b ? a : b; }
};
struct MinI {
    __device__ int operator()(int a, int b) const { return a < b ? a : b; }
};
struct MaxI {
    __device__ int operator()(int a, int b) const { return a > b ? a : b; }
};
struct SumU64 {
    __device__ unsigned long long operator()(unsigned long long a, unsigned long long b) const { return a + b; }
};

// ---- the CPU sampler's exp for d <= 0 (src/common/exp_poly.h), one IEEE operation per step, no contraction.
__device__ __forceinline__ float exp_np(float d) {
    constexpr float kExpFloor = -87.0f;
    const float x = d < kExpFloor ? kExpFloor : d;
    const float t = __fmul_rn(x, 1.44269504088896341f);
    const float tr = __fadd_rn(t, 12582912.0f);
    const float kf = __fsub_rn(tr, 12582912.0f);
    const float a = __fmul_rn(kf, 0.693359375f);
    const float r1 = __fsub_rn(x, a);
    const float b = __fmul_rn(kf, -2.12194440e-4f);
    const float r = __fsub_rn(r1, b);
    const float z = __fmul_rn(r, r);
    float p = __fmul_rn(r, 1.9875691500e-4f);
    p = __fadd_rn(p, 1.3981999507e-3f);
    p = __fmul_rn(p, r);
    p = __fadd_rn(p, 8.3334519073e-3f);
    p = __fmul_rn(p, r);
    p = __fadd_rn(p, 4.1665795894e-2f);
    p = __fmul_rn(p, r);
    p = __fadd_rn(p, 1.6666665459e-1f);
    p = __fmul_rn(p, r);
    p = __fadd_rn(p, 5.0000001201e-1f);
    p = __fmul_rn(p, z);
    p = __fadd_rn(p, r);
    p = __fadd_rn(p, 1.0f);
    const int k = int(kf);
    const float scale = __uint_as_float(uint32_t(k + 127) << 23);
    const float y = __fmul_rn(p, scale);
    return d < kExpFloor ? 0.0f : y;
}

__device__ __forceinline__ float tempered(float l, float m, float w, float temperature, float inv_t) {
    if (temperature == 1.0f) return w;
    const float d = __fsub_rn(l, m);
    const float dt = __fmul_rn(d, inv_t);
    return w > 0.0f ? exp_np(dt) : 0.0f;
}

// Weight in fixed point: round(w · 2^s) with 2^s = `scale` chosen by the launcher so that V · 2^s <= 2^62 (w <= 1):
// every sum fits in a uint64, and integer sums are exact in any order.
__device__ __forceinline__ unsigned long long fixed_mass(float w, float scale) {
    return __float2ull_rn(w * scale);  // the product is exact (a power of two), then rounded to an integer
}

// Step 1: max and validity. Returns false (after writing -1) when the row cannot be sampled.
__device__ bool row_max(const float* l, int V, float* m_out) {
    float m = -kInf;
    int bad = 0;
    for (int i = threadIdx.x; i < V; i += kThreads) {
        const float x = l[i];
        bad |= !(x < kInf);
        m = x > m ? x : m;
    }
    bad = __syncthreads_or(bad);
    m = block_reduce(m, MaxF(), -kInf);
    *m_out = m;
    return !bad && m != -kInf;
}

__device__ int lowest_index_of(const float* l, int V, float m) {
    int best = INT_MAX;
    for (int i = threadIdx.x; i < V; i += kThreads)
        if (l[i] == m) {
            best = i;
            break;  // strided: the first hit of this thread is its lowest
        }
    return block_reduce(best, MinI(), INT_MAX);
}

__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* logits, int V, int32_t* out) {
    const float* l = logits + int64_t(blockIdx.x) * V;
    float m;
    if (!row_max(l, V, &m)) {
        if (threadIdx.x == 0) out[blockIdx.x] = -1;
        return;
    }
    const int id = lowest_index_of(l, V, m);
    if (threadIdx.x == 0) out[blockIdx.x] = id;
}

__global__ void logit_edits_kernel(float* logits, int V, const LogitEdit* edits, const int32_t* n_edits,
                                   int max_edits) {
    const int n = min(*n_edits, max_edits);
    for (int e = 0; e < n; e++) {
        const LogitEdit d = edits[e];
        if (d.id < 0 || d.id >= V || d.row < 0) continue;
        float& l = logits[int64_t(d.row) * V + d.id];
        if (d.op == 0)
            l = d.value;
        else if (d.op == 1)
            l = __fadd_rn(l, d.value);
        else
            l = __fsub_rn(l, d.value);
    }
}

// ---- radix select over the bit patterns of w (all >= 0, so bit 31 is clear and the order is the integer order).
// Returns the largest pattern τ with F(τ) >= target, where F(τ) = Σ_{w >= τ} key(w) and key is the fixed-point
// mass (by_mass) or 1 (counts). Requires F(0) >= target >= 1 (then τ is the pattern of some w).
__device__ uint32_t radix_select(const float* w, int V, bool by_mass, float scale, unsigned long long target) {
    __shared__ unsigned long long hist[256];
    __shared__ uint32_t sh_prefix;
    __shared__ unsigned long long sh_above;
    uint32_t prefix = 0;           // the bits of τ above the current digit
    unsigned long long above = 0;  // F of the patterns above the current prefix range
    const int shifts[4] = {23, 15, 7, 0};
    const int widths[4] = {8, 8, 8, 7};
    for (int pass = 0; pass < 4; pass++) {
        const int sh = shifts[pass], wd = widths[pass], top = sh + wd;
        for (int d = threadIdx.x; d < 256; d += kThreads) hist[d] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < V; i += kThreads) {
            const uint32_t bits = __float_as_uint(w[i]);
            if ((bits >> top) == prefix) {
                const unsigned long long key = by_mass ? fixed_mass(w[i], scale) : 1ull;
                if (key) atomicAdd(&hist[(bits >> sh) & ((1u << wd) - 1)], key);
            }
        }
        __syncthreads();
        if (threadIdx.x < 32) {  // warp 0: lane l owns digits 8l .. 8l + 7
            const int lane = threadIdx.x;
            unsigned long long mine = 0;
            for (int d = 8 * lane; d < 8 * lane + 8; d++) mine += hist[d];
            unsigned long long suffix = mine;  // Σ over lanes >= lane
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const unsigned long long v = __shfl_down_sync(kFullMask, suffix, o);
                if (lane + o < 32) suffix += v;
            }
            const unsigned long long after = suffix - mine;  // Σ over lanes > lane
            if (above + after < target && above + suffix >= target) {
                unsigned long long acc = above + after;
                for (int d = 8 * lane + 7; d >= 8 * lane; d--) {
                    if (acc + hist[d] >= target) {
                        sh_prefix = (prefix << wd) | uint32_t(d);
                        sh_above = acc;
                        break;
                    }
                    acc += hist[d];
                }
            }
        }
        __syncthreads();
        prefix = sh_prefix;
        above = sh_above;
        __syncthreads();
    }
    return prefix;
}

// #(w >= τ) (strict = false) or #(w > τ) (strict = true), on bit patterns.
__device__ int count_at_least(const float* w, int V, uint32_t tau, bool strict) {
    int c = 0;
    for (int i = threadIdx.x; i < V; i += kThreads) {
        const uint32_t b = __float_as_uint(w[i]);
        c += strict ? b > tau : b >= tau;
    }
    return int(block_reduce((unsigned long long)c, SumU64(), 0ull));
}

// Inclusive block scan (fixed tree: warp shuffles, then warp totals). Every thread gets its inclusive value and
// the block total.
template <typename T>
__device__ T block_inclusive_scan(T v, T* total) {
    __shared__ T warp_tot[kWarps];
    __shared__ T sh_total;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const T u = __shfl_up_sync(kFullMask, v, o);
        if (lane >= o) v += u;
    }
    if (lane == 31) warp_tot[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T t = warp_tot[lane];  // kWarps == 32
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const T u = __shfl_up_sync(kFullMask, t, o);
            if (lane >= o) t += u;
        }
        warp_tot[lane] = t;  // inclusive over warps
        if (lane == 31) sh_total = t;
    }
    __syncthreads();
    if (warp > 0) v += warp_tot[warp - 1];
    *total = sh_total;
    __syncthreads();
    return v;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits, int V, const DeviceSamplerParams* params, const double* uniform, int32_t* out,
                  float* wbuf, float scale) {
    static_assert(kWarps == 32, "block_inclusive_scan assumes 32 warps");
    const int row = blockIdx.x;
    const float* l = logits + int64_t(row) * V;
    float* w = wbuf + int64_t(row) * V;
    const DeviceSamplerParams p = params[row];
    float m;
    if (!row_max(l, V, &m)) {
        if (threadIdx.x == 0) out[row] = -1;
        return;
    }
    if (p.temperature == 0.0f) {
        const int id = lowest_index_of(l, V, m);
        if (threadIdx.x == 0) out[row] = id;
        return;
    }
    // 2. weights and Z
    unsigned long long z = 0;
    for (int i = threadIdx.x; i < V; i += kThreads) {
        const float wi = exp_np(__fsub_rn(l[i], m));
        w[i] = wi;
        z += fixed_mass(wi, scale);
    }
    z = block_reduce(z, SumU64(), 0ull);  // (its barriers also publish w[] to the block)

    // 3. cuts
    const bool cut_p = p.top_p<1.0f, cut_k = p.top_k> 0 && p.top_k<V, cut_m = p.min_p> 0.0f;
    const bool all = !(cut_p || cut_k || cut_m);
    uint32_t tau = 0;
    int ties_keep = INT_MAX;
    if (!all) {
        int n = V, n_p = -1;
        uint32_t tau_p = 0;
        if (cut_p) {
            double tgt = ceil(double(p.top_p) * double(z));
            unsigned long long target = tgt < 1.0 ? 1ull : (unsigned long long)tgt;
            if (target > z) target = z;  // z >= scale (the max has w = 1)
            tau_p = radix_select(w, V, true, scale, target);
            n = n_p = count_at_least(w, V, tau_p, false);
        }
        if (cut_k) n = min(n, p.top_k);
        if (cut_m) n = min(n, count_at_least(w, V, __float_as_uint(p.min_p), false));
        n = max(n, 1);   // the max always survives (w = 1 >= any min_p <= 1)
        if (n == n_p) {  // the top-p cut decides: every w >= τ_p survives, ties at τ_p included
            tau = tau_p;
        } else {  // τ = the n-th largest weight; lower ids win the ties at τ
            tau = radix_select(w, V, false, scale, (unsigned long long)n);
            ties_keep = n - count_at_least(w, V, tau, true);
        }
    }

    // 4. draw
    const int chunk = (V + kThreads - 1) / kThreads;
    const int begin = min(V, int(threadIdx.x) * chunk), end = min(V, begin + chunk);
    const float inv_t = 1.0f / p.temperature;
    int my_ties = 0;
    if (!all)
        for (int i = begin; i < end; i++) my_ties += __float_as_uint(w[i]) == tau;
    int ties_total;
    const int tie_base = block_inclusive_scan(my_ties, &ties_total) - my_ties;
    auto survives = [&](uint32_t bits, int& rank) {
        if (all || bits > tau) return true;
        if (bits == tau) return rank++ < ties_keep;
        return false;
    };
    double sum = 0.0;
    int last = -1;
    {
        int rank = tie_base;
        for (int i = begin; i < end; i++) {
            const float wi = w[i];
            if (!survives(__float_as_uint(wi), rank)) continue;
            const float q = tempered(l[i], m, wi, p.temperature, inv_t);
            if (q > 0.0f) {
                sum += double(q);
                last = i;
            }
        }
    }
    double S;
    const double incl = block_inclusive_scan(sum, &S);
    __shared__ double prev_incl[kThreads];
    __shared__ int chosen;
    prev_incl[threadIdx.x] = incl;
    if (threadIdx.x == 0) chosen = -1;
    __syncthreads();
    const double target = uniform[row] * S;
    const double lo = threadIdx.x == 0 ? 0.0 : prev_incl[threadIdx.x - 1];
    if (sum > 0.0 && lo <= target && target < incl) {
        int rank = tie_base;
        double run = lo;
        int pick = last;
        for (int i = begin; i < end; i++) {
            const float wi = w[i];
            if (!survives(__float_as_uint(wi), rank)) continue;
            const float q = tempered(l[i], m, wi, p.temperature, inv_t);
            if (q > 0.0f) {
                run += double(q);
                if (run > target) {
                    pick = i;
                    break;
                }
            }
        }
        atomicMax(&chosen, pick);  // at most one thread gets here, except through rounding: then the higher id
    }
    __syncthreads();
    int result = chosen;
    if (result < 0) result = block_reduce(last, MaxI(), -1);  // u·S rounded up to S: the last id with q > 0
    if (threadIdx.x == 0) out[row] = result;
}

}  // namespace

void argmax(const float* logits, int B, int V, int32_t* out, cudaStream_t s) {
    if (B == 0) return;
    argmax_kernel<<<B, kThreads, 0, s>>>(logits, V, out);
    RWKV_CUDA_CHECK_LAUNCH("argmax");
}

void apply_logit_edits(float* logits, int V, const LogitEdit* edits, const int32_t* n_edits, int max_edits,
                       cudaStream_t s) {
    if (max_edits <= 0) return;
    logit_edits_kernel<<<1, 1, 0, s>>>(logits, V, edits, n_edits, max_edits);
    RWKV_CUDA_CHECK_LAUNCH("apply_logit_edits");
}

size_t sample_workspace_bytes(int B, int V) {
    return size_t(B) * size_t(V) * sizeof(float);
}

void sample(const float* logits, int B, int V, const DeviceSamplerParams* params, const double* u, int32_t* out,
            void* workspace, size_t workspace_bytes, cudaStream_t s) {
    if (B == 0) return;
    if (V <= 0 || V >= (1 << 23)) throw Error(RWKV_STATUS_INTERNAL, "cuda::sample: vocabulary size out of range");
    if (workspace == nullptr || workspace_bytes < sample_workspace_bytes(B, V))
        throw Error(RWKV_STATUS_INTERNAL, "cuda::sample: workspace too small");
    int bits = 0;  // ceil(log2(V))
    while ((int64_t(1) << bits) < V) bits++;
    const float scale = std::ldexp(1.0f, 62 - bits);  // V · 2^(62 - bits) <= 2^62
    sample_kernel<<<B, kThreads, 0, s>>>(logits, V, params, u, out, static_cast<float*>(workspace), scale);
    RWKV_CUDA_CHECK_LAUNCH("sample");
}

}  // namespace rwkv::cuda
