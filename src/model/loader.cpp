// From a checkpoint's named tensors to Weights: config inference (rwkv7.md §1.3), name mapping for native BlinkDL
// and Hugging Face/fla files (§1.2, §1.6), shape checks, and the ln0 fold into the embedding (§1.4).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <string>

#include "common/error.h"
#include "common/half.h"
#include "common/log.h"
#include "common/thread_pool.h"
#include "kernels/norm.h"
#include "model/weights.h"

namespace rwkv {
namespace {

std::string shape_str(std::initializer_list<int64_t> dims) {
    std::string s = "[";
    for (int64_t d : dims) s += (s.size() > 1 ? ", " : "") + std::to_string(d);
    return s + "]";
}

// Parses "<prefix><number>.<rest>" and returns the number, or -1.
int layer_index(const std::string& name, const std::string& prefix) {
    if (name.compare(0, prefix.size(), prefix) != 0) return -1;
    size_t p = prefix.size(), q = p;
    while (q < name.size() && q - p < 6 && std::isdigit(static_cast<unsigned char>(name[q]))) q++;
    if (q == p || q >= name.size() || name[q] != '.') return -1;
    return std::stoi(name.substr(p, q - p));
}

// dst[c, r] = src[r, c] for a [rows, cols] matrix, in 64 × 64 blocks (both sides stay in cache), block rows of
// the destination spread over the threads.
template <typename E>
void transpose(const E* src, E* dst, int64_t rows, int64_t cols, ThreadPool& pool) {
    constexpr int64_t kBlock = 64;
    pool.parallel_for((cols + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t c0 = b0 * kBlock; c0 < std::min(cols, b1 * kBlock); c0 += kBlock)
            for (int64_t r0 = 0; r0 < rows; r0 += kBlock)
                for (int64_t c = c0; c < std::min(cols, c0 + kBlock); c++)
                    for (int64_t r = r0; r < std::min(rows, r0 + kBlock); r++) dst[c * rows + r] = src[r * cols + c];
    });
}

class Loader {
  public:
    Loader(const Checkpoint& ckpt, TensorNaming naming) : ckpt_(ckpt), naming_(naming) {}

    const TensorView& get(const std::string& name) {
        const TensorView* t = ckpt_.find(name);
        if (!t) throw_format(ckpt_.path() + ": missing tensor '" + name + "'");
        if (used_.insert(name).second) {
            n_params_ += t->numel();
            n_bytes_ += int64_t(t->nbytes());
        }
        return *t;
    }

    // A vector of n values stored as [n], [1, n], [1, 1, n] or (r_k) [H, N]: converted to fp32.
    std::vector<float> vector(const std::string& name, int64_t n, int64_t rows = 1) {
        const TensorView& t = get(name);
        bool ok =
            t.numel() == n && !t.shape.empty() &&
            (t.shape.back() == n || (rows > 1 && t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == n / rows));
        for (size_t d = 0; ok && d + 1 < t.shape.size(); d++) ok = t.shape[d] == 1 || (rows > 1 && d == 0);
        if (!ok)
            throw_format(ckpt_.path() + ": tensor '" + name + "': expected " + shape_str({n}) +
                         (rows > 1 ? " or " + shape_str({rows, n / rows}) : "") + ", found " + t.shape_string());
        std::vector<float> out(n);
        to_f32(t, out.data());
        return out;
    }

    // A matrix stored [rows, cols]; `layout` says how it maps to (out, in).
    WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols, WeightMatrix::Layout layout) {
        const TensorView& t = get(name);
        if (t.shape.size() != 2 || t.shape[0] != rows || t.shape[1] != cols)
            throw_format(ckpt_.path() + ": tensor '" + name + "': expected " + shape_str({rows, cols}) + ", found " +
                         t.shape_string());
        WeightMatrix m;
        m.data = t.data;
        m.dtype = t.dtype;
        m.layout = layout;
        m.n_out = int(layout == WeightMatrix::Layout::OutIn ? rows : cols);
        m.n_in = int(layout == WeightMatrix::Layout::OutIn ? cols : rows);
        return m;
    }

    // A projection with nn.Linear layout [out, in] in both namings.
    WeightMatrix linear(const std::string& name, int64_t out, int64_t in) {
        return matrix(name, out, in, WeightMatrix::Layout::OutIn);
    }

    // A projection with nn.Linear layout [out, in], copied transposed into a buffer kept in `owned` and used as
    // the InOut matrix [in, out]: row k holds input k's weights. For ffn.value, whose input is the ReLU² hidden:
    // a decode step then reads only the rows of the non-zero activations (the sparse FFN).
    WeightMatrix linear_transposed(const std::string& name, int64_t out, int64_t in,
                                   std::vector<std::unique_ptr<std::byte[]>>& owned, ThreadPool& pool) {
        WeightMatrix m = matrix(name, out, in, WeightMatrix::Layout::OutIn);
        const size_t elem = dtype_size(m.dtype);
        owned.push_back(std::make_unique_for_overwrite<std::byte[]>(size_t(out) * size_t(in) * elem));
        void* dst = owned.back().get();
        if (elem == 2)
            transpose(static_cast<const uint16_t*>(m.data), static_cast<uint16_t*>(dst), out, in, pool);
        else
            transpose(static_cast<const uint32_t*>(m.data), static_cast<uint32_t*>(dst), out, in, pool);
        m.data = dst;
        m.layout = WeightMatrix::Layout::InOut;
        return m;
    }
    // A LoRA matrix mapping n_in -> n_out. Native files store it as used, x @ W ([in, out]); HF files store the
    // nn.Linear transpose ([out, in]). Both are used in place.
    WeightMatrix lora(const std::string& native, const std::string& hf, int64_t n_in, int64_t n_out) {
        if (naming_ == TensorNaming::Native) return matrix(native, n_in, n_out, WeightMatrix::Layout::InOut);
        return matrix(hf, n_out, n_in, WeightMatrix::Layout::OutIn);
    }

    static void to_f32(const TensorView& t, float* out) {
        const int64_t n = t.numel();
        if (t.dtype == DType::F32) {
            std::copy_n(static_cast<const float*>(t.data), n, out);
            return;
        }
        const uint16_t* p = static_cast<const uint16_t*>(t.data);
        for (int64_t i = 0; i < n; i++) out[i] = t.dtype == DType::F16 ? f16_to_f32(p[i]) : bf16_to_f32(p[i]);
    }

    const std::set<std::string>& used() const { return used_; }
    int64_t n_params() const { return n_params_; }
    int64_t n_bytes() const { return n_bytes_; }

  private:
    const Checkpoint& ckpt_;
    TensorNaming naming_;
    std::set<std::string> used_;
    int64_t n_params_ = 0, n_bytes_ = 0;
};

// Names of one layer's tensors in either naming.
struct LayerNames {
    std::string p;  // "blocks.3." or "model.layers.3."
    bool hf;
    std::string att(const std::string& native, const std::string& hf_name) const {
        return p + (hf ? "attn." + hf_name : "att." + native);
    }
};

void reject_variants(const Checkpoint& ckpt) {
    const std::string& path = ckpt.path();
    for (const TensorView& t : ckpt.tensors()) {
        const std::string& n = t.name;
        if (n.find("ffn.s_emb") != std::string::npos || n.find("ffn.s0") != std::string::npos ||
            n.find("ffn.s1") != std::string::npos || n.find("ffn.s2") != std::string::npos)
            throw_unsupported(path + ": tensor '" + n +
                              "' belongs to the DeepEmbed variant (rwkv7a), whose channel-mix differs from RWKV-7 "
                              "x070; it is not supported");
        if (n.find("att.time_decay") != std::string::npos || n.find("att.time_faaaa") != std::string::npos ||
            n.find("att.time_first") != std::string::npos)
            throw_unsupported(path + ": tensor '" + n + "' is from an RWKV-4/5/6 model; librwkv runs RWKV-7 only");
    }
}

}  // namespace

LoadedModel load_model(std::unique_ptr<Checkpoint> checkpoint) {
    const Checkpoint& ckpt = *checkpoint;
    const std::string& path = ckpt.path();
    reject_variants(ckpt);

    LoadedModel m;
    if (ckpt.find("emb.weight"))
        m.naming = TensorNaming::Native;
    else if (ckpt.find("model.embeddings.weight"))
        m.naming = TensorNaming::HuggingFace;
    else
        throw_format(path +
                     ": no 'emb.weight' (native) or 'model.embeddings.weight' (Hugging Face) tensor: not an "
                     "RWKV checkpoint");
    const bool hf = m.naming == TensorNaming::HuggingFace;
    const std::string layer_prefix = hf ? "model.layers." : "blocks.";
    auto layer = [&](int l) { return LayerNames{layer_prefix + std::to_string(l) + ".", hf}; };

    // ---- config (rwkv7.md §1.3)
    ModelConfig& c = m.config;
    const TensorView& emb = *ckpt.find(hf ? "model.embeddings.weight" : "emb.weight");
    if (emb.shape.size() != 2 || emb.shape[0] <= 0 || emb.shape[1] <= 0 || emb.shape[0] > (1 << 24) ||
        emb.shape[1] > (1 << 16))
        throw_format(path + ": tensor '" + emb.name + "': expected [V, C], found " + emb.shape_string());
    c.n_vocab = int(emb.shape[0]);
    c.n_embd = int(emb.shape[1]);
    if (c.n_vocab == 50304)
        throw_unsupported(path +
                          ": vocabulary of 50304 rows: this is a Pile model (GPT-NeoX tokenizer), not an "
                          "RWKV World model; it is not supported");
    int max_layer = -1;
    for (const TensorView& t : ckpt.tensors()) max_layer = std::max(max_layer, layer_index(t.name, layer_prefix));
    if (max_layer < 0) throw_format(path + ": no layer tensors ('" + layer_prefix + "0.*') found");
    c.n_layer = max_layer + 1;

    const std::string kk_name = layer(0).att("k_k", "k_k");
    if (!ckpt.find(kk_name)) throw_unsupported(path + ": no '" + kk_name + "': not an RWKV-7 (x070) checkpoint");
    const TensorView* r_k = ckpt.find(layer(0).att("r_k", "r_k"));
    if (!r_k || r_k->shape.size() != 2)
        throw_format(path + ": tensor '" + layer(0).att("r_k", "r_k") + "' missing or not [H, N]");
    c.n_head = int(r_k->shape[0]);
    c.head_size = int(r_k->shape[1]);
    if (c.head_size != 64)
        throw_unsupported(path + ": head size " + std::to_string(c.head_size) + " (from " + r_k->name + " " +
                          r_k->shape_string() + "); only 64 is supported");
    if (int64_t(c.n_head) * c.head_size != c.n_embd)
        throw_format(path + ": " + r_k->name + " " + r_k->shape_string() +
                     " does not match the width C = " + std::to_string(c.n_embd) + " of " + emb.name);

    auto dim = [&](const std::string& name, int axis) {
        const TensorView* t = ckpt.find(name);
        if (!t) throw_format(path + ": missing tensor '" + name + "'");
        if (t->shape.size() != 2 || t->shape[axis] <= 0 || t->shape[axis] > (1 << 20))
            throw_format(path + ": tensor '" + name + "': expected a matrix, found " + t->shape_string());
        return int(t->shape[axis]);
    };
    c.n_ffn = dim(layer(0).p + "ffn.key.weight", 0);
    // LoRA "down" matrices: native [C, D] (axis 1), HF lora.0.weight [D, C] (axis 0).
    const int lora_axis = hf ? 0 : 1;
    c.d_decay = dim(layer(0).att("w1", "w_lora.lora.0.weight"), lora_axis);
    c.d_aaa = dim(layer(0).att("a1", "a_lora.lora.0.weight"), lora_axis);
    c.d_gate = dim(layer(0).att("g1", "g_lora.lora.0.weight"), lora_axis);
    c.d_value = c.n_layer > 1 ? dim(layer(1).att("v1", "v_lora.lora.0.weight"), lora_axis) : 0;

    // ---- tensors, every one checked for presence and shape
    const int64_t C = c.n_embd, F = c.n_ffn, V = c.n_vocab;
    Loader ld(ckpt, m.naming);
    Weights& w = m.weights;
    ThreadPool pool(default_thread_count());
    w.layers.resize(c.n_layer);
    for (int l = 0; l < c.n_layer; l++) {
        const LayerNames n = layer(l);
        LayerWeights& lw = w.layers[l];
        lw.ln1_w = ld.vector(n.p + (hf ? "attn_norm.weight" : "ln1.weight"), C);
        lw.ln1_b = ld.vector(n.p + (hf ? "attn_norm.bias" : "ln1.bias"), C);
        lw.ln2_w = ld.vector(n.p + (hf ? "ffn_norm.weight" : "ln2.weight"), C);
        lw.ln2_b = ld.vector(n.p + (hf ? "ffn_norm.bias" : "ln2.bias"), C);
        lw.x_r = ld.vector(n.att("x_r", "x_r"), C);
        lw.x_w = ld.vector(n.att("x_w", "x_w"), C);
        lw.x_k = ld.vector(n.att("x_k", "x_k"), C);
        lw.x_v = ld.vector(n.att("x_v", "x_v"), C);
        lw.x_a = ld.vector(n.att("x_a", "x_a"), C);
        lw.x_g = ld.vector(n.att("x_g", "x_g"), C);
        lw.w0 = ld.vector(n.att("w0", "w_lora.lora.2.bias"), C);
        lw.w1 = ld.lora(n.att("w1", ""), n.att("", "w_lora.lora.0.weight"), C, c.d_decay);
        lw.w2 = ld.lora(n.att("w2", ""), n.att("", "w_lora.lora.2.weight"), c.d_decay, C);
        lw.a0 = ld.vector(n.att("a0", "a_lora.lora.2.bias"), C);
        lw.a1 = ld.lora(n.att("a1", ""), n.att("", "a_lora.lora.0.weight"), C, c.d_aaa);
        lw.a2 = ld.lora(n.att("a2", ""), n.att("", "a_lora.lora.2.weight"), c.d_aaa, C);
        if (l > 0) {  // layer 0 has no value residual (rwkv7.md §8 item 7); its v0/v1/v2 are ignored if present
            lw.v0 = ld.vector(n.att("v0", "v_lora.lora.2.bias"), C);
            lw.v1 = ld.lora(n.att("v1", ""), n.att("", "v_lora.lora.0.weight"), C, c.d_value);
            lw.v2 = ld.lora(n.att("v2", ""), n.att("", "v_lora.lora.2.weight"), c.d_value, C);
        }
        lw.g1 = ld.lora(n.att("g1", ""), n.att("", "g_lora.lora.0.weight"), C, c.d_gate);
        lw.g2 = ld.lora(n.att("g2", ""), n.att("", "g_lora.lora.2.weight"), c.d_gate, C);
        lw.k_k = ld.vector(n.att("k_k", "k_k"), C);
        lw.k_a = ld.vector(n.att("k_a", "k_a"), C);
        lw.r_k = ld.vector(n.att("r_k", "r_k"), C, c.n_head);
        lw.receptance = ld.linear(n.att("receptance.weight", "r_proj.weight"), C, C);
        lw.key = ld.linear(n.att("key.weight", "k_proj.weight"), C, C);
        lw.value = ld.linear(n.att("value.weight", "v_proj.weight"), C, C);
        lw.output = ld.linear(n.att("output.weight", "o_proj.weight"), C, C);
        lw.ln_x_w = ld.vector(n.att("ln_x.weight", "g_norm.weight"), C);
        lw.ln_x_b = ld.vector(n.att("ln_x.bias", "g_norm.bias"), C);
        lw.ffn_x_k = ld.vector(n.p + "ffn.x_k", C);
        lw.ffn_key = ld.linear(n.p + "ffn.key.weight", F, C);
        lw.ffn_value = ld.linear_transposed(n.p + "ffn.value.weight", C, F, w.owned, pool);
    }
    w.ln_out_w = ld.vector(hf ? "model.norm.weight" : "ln_out.weight", C);
    w.ln_out_b = ld.vector(hf ? "model.norm.bias" : "ln_out.bias", C);
    w.head = ld.linear(hf ? "lm_head.weight" : "head.weight", V, C);
    m.weight_dtype = w.head.dtype;

    // ---- ln0 folded into the embedding, in fp32 (rwkv7.md §1.4 step 4)
    const TensorView& emb_t = ld.get(emb.name);
    std::vector<float> ln0_w = ld.vector(hf ? "model.layers.0.pre_norm.weight" : "blocks.0.ln0.weight", C);
    std::vector<float> ln0_b = ld.vector(hf ? "model.layers.0.pre_norm.bias" : "blocks.0.ln0.bias", C);
    w.emb.resize(V * C);
    Loader::to_f32(emb_t, w.emb.data());
    layer_norm_cpu({w.emb.data(), ln0_w.data(), ln0_b.data(), w.emb.data(), int(V), int(C)});

    // ---- anything else: warn, except what is known to be unused
    std::vector<std::string> unknown;
    bool has_time_state = false;
    for (const TensorView& t : ckpt.tensors()) {
        if (ld.used().count(t.name)) continue;
        const std::string& s = t.name;
        if (s.find("time_state") != std::string::npos) {
            has_time_state = true;
            continue;
        }
        const LayerNames l0 = layer(0);  // layer 0's value-residual LoRA exists in some files and is never used
        bool layer0_v = hf ? s.rfind(l0.att("", "v_lora."), 0) == 0
                           : s == l0.att("v0", "") || s == l0.att("v1", "") || s == l0.att("v2", "");
        if (layer0_v) continue;
        unknown.push_back(s);
    }
    if (has_time_state)
        log_warn(path +
                 ": contains state-tuning tensors (att.time_state); they are not applied to the model — pass "
                 "this file as the initial state (--state) to use them");
    if (!unknown.empty()) {
        std::string list;
        for (size_t i = 0; i < unknown.size() && i < 5; i++) list += (i ? ", '" : "'") + unknown[i] + "'";
        if (unknown.size() > 5) list += ", ...";
        log_warn(path + ": " + std::to_string(unknown.size()) + " unknown tensor(s) ignored: " + list);
    }

    m.n_params = ld.n_params();
    m.n_bytes = ld.n_bytes();
    m.checkpoint = std::move(checkpoint);
    return m;
}

}  // namespace rwkv
