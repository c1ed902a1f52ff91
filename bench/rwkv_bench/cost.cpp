// The cost model: bytes read per decode step and FLOPs per prompt token, from the model's shapes alone.
#include <algorithm>
#include <cmath>

#include "bench.h"

namespace rwkv_bench {

CostModel cost_model(const rwkv_model_info& i) {
    const double es = i.weight_dtype == RWKV_DTYPE_F32 ? 4 : 2;
    const double L = i.n_layer, C = i.n_embd, F = i.n_ffn, V = i.n_vocab, N = i.head_size;
    CostModel c;
    // n_bytes holds every tensor as stored: the time-mix matrices (4·C² per layer), the LoRAs, the FFN key and
    // value (2·C·F), the head (V·C), the vectors and the embedding (V·C), of which a decode step reads one row.
    const double emb_bytes = V * C * es;
    c.weight_bytes = double(i.n_bytes) - emb_bytes;
    c.ffn_value_bytes = L * F * C * es;
    c.emb_row_bytes = C * es;
    c.state_rw_bytes = 2.0 * double(i.state_bytes);
    c.matmul_flops = 2.0 * (double(i.n_params) - 2 * V * C);
    // Per head and token: decay S·diag(w) (N²), S·a (2N²), the rank-1 update with b (2N²), v·kᵀ (2N²), S·r (2N²).
    c.wkv_flops = 9.0 * N * C * L;
    c.head_flops = 2.0 * V * C;
    return c;
}

double decode_step_bytes(const CostModel& c, int batch, bool batched, double sparsity) {
    const double B = batch, s = sparsity > 0 ? sparsity : 0;
    const double other = c.weight_bytes - c.ffn_value_bytes;
    const double per_seq = c.emb_row_bytes + c.state_rw_bytes;
    if (batched) return other + c.ffn_value_bytes * (1 - std::pow(s, B)) + B * per_seq;
    return B * (other + c.ffn_value_bytes * (1 - s) + per_seq);
}

double prompt_flops(const CostModel& c, int n_prompt) {
    return double(n_prompt) * (c.matmul_flops + c.wkv_flops) + c.head_flops;
}

Summary summarize(const std::vector<double>& v) {
    Summary s;
    if (v.empty()) return s;
    double sum = 0;
    for (double x : v) sum += x;
    s.mean = sum / double(v.size());
    if (v.size() > 1) {
        double sq = 0;
        for (double x : v) sq += (x - s.mean) * (x - s.mean);
        s.sd = std::sqrt(sq / double(v.size() - 1));
    }
    std::vector<double> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    const size_t n = sorted.size();
    s.median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    return s;
}

}  // namespace rwkv_bench
