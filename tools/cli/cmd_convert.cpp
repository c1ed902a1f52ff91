// rwkv-cli convert: write a model as .pth or .safetensors with native BlinkDL names, either a synthetic model of a
// released shape (docs/synthetic.md) or an existing checkpoint (native or Hugging Face/fla names).
//
// This command reaches librwkv's internal code (checkpoint, writers, synthetic models): rwkv-cli must have src/ on
// its include path and link rwkv_internal. Until it does, a stub that says so is compiled instead.
#include "commands.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "io/checkpoint.h"
#include "io/pth_writer.h"
#include "io/safetensors_writer.h"
#include "model/synthetic.h"

namespace cli {
namespace {

using rwkv::DType;
using rwkv::TensorView;

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

DType parse_dtype(const std::string& s) {
    if (s == "f32") return DType::F32;
    if (s == "f16") return DType::F16;
    return DType::BF16;
}

std::string human_bytes(double b) {
    char buf[64];
    if (b >= 1e9)
        std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
    else if (b >= 1e6)
        std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%.0f bytes", b);
    return buf;
}

// Tensors to write, with storage for those that had to be rebuilt (transposed or converted).
struct TensorSet {
    std::vector<TensorView> views;
    std::vector<std::unique_ptr<uint8_t[]> > owned;
    void* own(size_t n) {
        owned.push_back(std::make_unique_for_overwrite<uint8_t[]>(n ? n : 1));
        return owned.back().get();
    }
};

// [rows, cols] -> [cols, rows], any dtype.
TensorView transposed(const TensorView& t, TensorSet& set) {
    TensorView out = t;
    const int64_t rows = t.shape[0], cols = t.shape[1];
    const size_t es = rwkv::dtype_size(t.dtype);
    out.shape = {cols, rows};
    uint8_t* dst = static_cast<uint8_t*>(set.own(t.nbytes()));
    const uint8_t* src = static_cast<const uint8_t*>(t.data);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) std::memcpy(dst + (c * rows + r) * es, src + (r * cols + c) * es, es);
    out.data = dst;
    return out;
}

// Hugging Face / fla names back to native ones (rwkv7.md §1.6), with the native stored shapes: LoRA matrices are
// transposed back to "x @ W" layout and vectors become [1, 1, C]. Returns false for a name it does not know.
bool hf_to_native(const TensorView& t, int n_head, TensorSet& set, TensorView* out) {
    const std::string& n = t.name;
    *out = t;
    auto as_vec = [&](const std::string& name) {
        out->name = name;
        out->shape = {1, 1, t.numel()};
        return true;
    };
    if (n == "model.embeddings.weight") return out->name = "emb.weight", true;
    if (n == "model.norm.weight") return out->name = "ln_out.weight", true;
    if (n == "model.norm.bias") return out->name = "ln_out.bias", true;
    if (n == "lm_head.weight") return out->name = "head.weight", true;
    const std::string lp = "model.layers.";
    if (n.rfind(lp, 0) != 0) return false;
    const size_t dot = n.find('.', lp.size());
    if (dot == std::string::npos) return false;
    const std::string l = n.substr(lp.size(), dot - lp.size()), rest = n.substr(dot + 1);
    const std::string p = "blocks." + l + ".";
    struct Simple {
        const char *hf, *native;
        bool vec;
    };
    static const Simple simple[] = {
        {"pre_norm.weight", "ln0.weight", false},
        {"pre_norm.bias", "ln0.bias", false},
        {"attn_norm.weight", "ln1.weight", false},
        {"attn_norm.bias", "ln1.bias", false},
        {"ffn_norm.weight", "ln2.weight", false},
        {"ffn_norm.bias", "ln2.bias", false},
        {"attn.x_r", "att.x_r", true},
        {"attn.x_w", "att.x_w", true},
        {"attn.x_k", "att.x_k", true},
        {"attn.x_v", "att.x_v", true},
        {"attn.x_a", "att.x_a", true},
        {"attn.x_g", "att.x_g", true},
        {"attn.k_k", "att.k_k", true},
        {"attn.k_a", "att.k_a", true},
        {"attn.w_lora.lora.2.bias", "att.w0", true},
        {"attn.a_lora.lora.2.bias", "att.a0", true},
        {"attn.v_lora.lora.2.bias", "att.v0", true},
        {"attn.r_proj.weight", "att.receptance.weight", false},
        {"attn.k_proj.weight", "att.key.weight", false},
        {"attn.v_proj.weight", "att.value.weight", false},
        {"attn.o_proj.weight", "att.output.weight", false},
        {"attn.g_norm.weight", "att.ln_x.weight", false},
        {"attn.g_norm.bias", "att.ln_x.bias", false},
        {"ffn.x_k", "ffn.x_k", true},
        {"ffn.key.weight", "ffn.key.weight", false},
        {"ffn.value.weight", "ffn.value.weight", false},
    };
    for (const Simple& s : simple) {
        if (rest != s.hf) continue;
        if (s.vec) return as_vec(p + s.native);
        out->name = p + s.native;
        return true;
    }
    if (rest == "attn.r_k") {
        out->name = p + "att.r_k";
        if (t.numel() % n_head == 0) out->shape = {n_head, t.numel() / n_head};
        return true;
    }
    static const char* const kLoras[][3] = {{"w", "w1", "w2"}, {"a", "a1", "a2"}, {"v", "v1", "v2"}, {"g", "g1", "g2"}};
    for (const auto& lo : kLoras) {
        const std::string base = std::string("attn.") + lo[0] + "_lora.lora.";
        const bool down = rest == base + "0.weight", up = rest == base + "2.weight";
        if ((!down && !up) || t.shape.size() != 2) continue;
        *out = transposed(t, set);
        out->name = p + "att." + (down ? lo[1] : lo[2]);
        return true;
    }
    return false;
}

}  // namespace

Runner add_convert(CLI::App& root) {
    auto* cmd = root.add_subcommand(
        "convert",
        "Write a model as .pth or .safetensors with native names: a synthetic model of a released shape, or an "
        "existing checkpoint in the other format");
    struct Opts {
        std::string synthetic, model, out, dtype, format;
        float ffn_sparsity = -1;
        uint64_t seed = 1;
        int vocab = 0, threads = 0;
    };
    auto o = std::make_shared<Opts>();
    std::string presets;
    for (const std::string& p : rwkv::synthetic_presets()) presets += (presets.empty() ? "" : ", ") + p;
    auto* syn = cmd->add_option("--synthetic", o->synthetic, "Generate a random model of this shape: " + presets);
    auto* mdl = cmd->add_option("-m,--model", o->model, "Rewrite this checkpoint (.pth or .safetensors)")
                    ->check(CLI::ExistingFile);
    syn->excludes(mdl);
    cmd->add_option("--out", o->out, "Output file; the format follows the extension (.pth/.pt or .safetensors)")
        ->required();
    cmd->add_option("--format", o->format, "Output format, when the extension does not say")
        ->check(CLI::IsMember({"pth", "safetensors"}));
    cmd->add_option("--dtype", o->dtype,
                    "Weight dtype: f32, f16 or bf16 (synthetic default bf16; with -m the stored dtypes are kept "
                    "unless given, and converting holds the converted model in memory)")
        ->check(CLI::IsMember({"f32", "f16", "bf16"}));
    cmd->add_option("--ffn-sparsity", o->ffn_sparsity,
                    "Synthetic: target fraction of FFN ReLU² pre-activations <= 0, in [0, 0.99] (default: natural, "
                    "~0.5; trained models show 0.86-0.90)");
    cmd->add_option("--seed", o->seed, "Synthetic: random seed")->capture_default_str();
    cmd->add_option("--vocab", o->vocab, "Synthetic: vocabulary rows (default: the preset's, 65536)");
    cmd->add_option("-t,--threads", o->threads, "Threads for generation (0: all cores)");

    return [o] {
        if (o->synthetic.empty() && o->model.empty())
            throw std::runtime_error("convert: give --synthetic PRESET or -m MODEL");
        std::string format = o->format;
        if (format.empty()) {
            if (ends_with(o->out, ".safetensors"))
                format = "safetensors";
            else if (ends_with(o->out, ".pth") || ends_with(o->out, ".pt"))
                format = "pth";
            else
                throw std::runtime_error("convert: cannot tell the format of '" + o->out +
                                         "' (use a .pth or .safetensors name, or --format)");
        }
        if (!o->model.empty() && (o->ffn_sparsity >= 0 || o->vocab != 0))
            throw std::runtime_error("convert: --ffn-sparsity and --vocab apply to --synthetic only");

        using clock = std::chrono::steady_clock;
        const auto t0 = clock::now();
        std::unique_ptr<rwkv::Checkpoint> ckpt;
        TensorSet set;
        double achieved = -1;
        std::string what;
        if (!o->synthetic.empty()) {
            rwkv::SyntheticSpec spec;
            spec.preset = o->synthetic;
            spec.dtype = o->dtype.empty() ? DType::BF16 : parse_dtype(o->dtype);
            spec.ffn_sparsity = o->ffn_sparsity;
            spec.seed = o->seed;
            if (o->vocab > 0) spec.n_vocab = o->vocab;
            rwkv::ThreadPool pool(o->threads > 0 ? o->threads : rwkv::default_thread_count());
            ckpt = rwkv::make_synthetic_checkpoint(spec, &pool, &achieved);
            for (const TensorView& t : ckpt->tensors()) set.views.push_back(t);
            rwkv::ModelConfig cfg = rwkv::synthetic_config(o->synthetic);
            cfg.n_vocab = int(ckpt->find("emb.weight")->shape[0]);
            what = "synthetic " + o->synthetic + " (" + cfg.describe() + ", " + rwkv::dtype_name(spec.dtype) +
                   ", seed " + std::to_string(o->seed) + ")";
        } else {
            ckpt = rwkv::Checkpoint::open(o->model);
            const bool hf = ckpt->find("model.embeddings.weight") && !ckpt->find("emb.weight");
            int n_head = 0;
            if (hf)
                if (const TensorView* rk = ckpt->find("model.layers.0.attn.r_k"); rk && !rk->shape.empty())
                    n_head = int(rk->shape[0]);
            int unknown = 0;
            for (const TensorView& t : ckpt->tensors()) {
                TensorView v;
                if (hf && !hf_to_native(t, n_head > 0 ? n_head : 1, set, &v)) {
                    v = t;
                    unknown++;
                } else if (!hf) {
                    v = t;
                }
                set.views.push_back(std::move(v));
            }
            if (unknown) std::fprintf(stderr, "convert: %d tensor(s) with unknown names copied unchanged\n", unknown);
            if (!o->dtype.empty()) {
                const DType dt = parse_dtype(o->dtype);
                for (TensorView& v : set.views) {
                    if (v.dtype == dt) continue;
                    void* dst = set.own(size_t(v.numel()) * rwkv::dtype_size(dt));
                    rwkv::convert_floats(v.data, v.dtype, dst, dt, v.numel());
                    v.dtype = dt;
                    v.data = dst;
                }
            }
            what = o->model + (hf ? " (Hugging Face names mapped to native)" : "");
        }
        const auto t1 = clock::now();

        std::vector<const TensorView*> list;
        uint64_t bytes = 0;
        for (const TensorView& v : set.views) {
            list.push_back(&v);
            bytes += v.nbytes();
        }
        if (format == "pth")
            rwkv::write_pth(o->out, list);
        else
            rwkv::write_safetensors(o->out, list);
        const auto t2 = clock::now();

        auto secs = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
        std::printf("wrote %s: %s, %zu tensors, %s of tensor data\n", o->out.c_str(), format.c_str(), list.size(),
                    human_bytes(double(bytes)).c_str());
        std::printf("from  %s\n", what.c_str());
        if (achieved >= 0) {
            if (o->ffn_sparsity >= 0)
                std::printf("ffn sparsity  target %.3f, achieved %.4f (held-out LayerNorm-like inputs)\n",
                            o->ffn_sparsity, achieved);
            else
                std::printf("ffn sparsity  natural, %.4f (held-out LayerNorm-like inputs)\n", achieved);
        }
        std::printf("time  %s %.2f s, write %.2f s\n", o->synthetic.empty() ? "read" : "generate", secs(t1 - t0),
                    secs(t2 - t1));
        return 0;
    };
}

}  // namespace cli
