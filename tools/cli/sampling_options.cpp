#include "sampling_options.h"

#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>

namespace cli {
namespace {

// One numeric sampling setting: its /set name, flag, range and field.
struct Setting {
    const char* name;   // for /set
    const char* flag;   // command-line flag
    const char* alias;  // another /set name, or ""
    const char* help;
    double lo, hi;
    double min_positive;  // a value in (0, min_positive) is refused (0 itself is allowed when lo is 0)
    bool integer;
    double (*get)(const rwkv_sampler_params&);
    void (*set)(rwkv_sampler_params&, double);
};

// The sampler refuses a positive temperature whose reciprocal overflows a float (0·inf = NaN in the tempered
// weights): below this, only 0 (greedy) is a valid temperature.
constexpr double kMinTemperature = 3e-39;

const Setting kSettings[] = {
    {"temp", "--temp", "temperature", "Temperature (0 = greedy)", 0.0, FLT_MAX, kMinTemperature, false,
     [](const rwkv_sampler_params& p) { return double(p.temperature); },
     [](rwkv_sampler_params& p, double v) { p.temperature = float(v); }},
    {"top-p", "--top-p", "top_p", "Nucleus sampling: keep the most likely tokens up to this mass (0 = greedy)", 0.0,
     1.0, 0.0, false, [](const rwkv_sampler_params& p) { return double(p.top_p); },
     [](rwkv_sampler_params& p, double v) { p.top_p = float(v); }},
    {"top-k", "--top-k", "top_k", "Keep only the K most likely tokens (0 = off)", 0.0, double(INT_MAX), 0.0, true,
     [](const rwkv_sampler_params& p) { return double(p.top_k); },
     [](rwkv_sampler_params& p, double v) { p.top_k = int(v); }},
    {"min-p", "--min-p", "min_p", "Drop tokens less likely than min-p times the most likely one (0 = off)", 0.0, 1.0,
     0.0, false, [](const rwkv_sampler_params& p) { return double(p.min_p); },
     [](rwkv_sampler_params& p, double v) { p.min_p = float(v); }},
    {"presence", "--presence-penalty", "presence-penalty",
     "Subtracted from the logit of every token already generated in this reply", -FLT_MAX, FLT_MAX, 0.0, false,
     [](const rwkv_sampler_params& p) { return double(p.presence_penalty); },
     [](rwkv_sampler_params& p, double v) { p.presence_penalty = float(v); }},
    {"frequency", "--frequency-penalty", "frequency-penalty",
     "Subtracted per (decayed) occurrence of a token already generated in this reply", -FLT_MAX, FLT_MAX, 0.0, false,
     [](const rwkv_sampler_params& p) { return double(p.frequency_penalty); },
     [](rwkv_sampler_params& p, double v) { p.frequency_penalty = float(v); }},
    {"decay", "--penalty-decay", "penalty-decay", "Occurrence counts are multiplied by this after each token", 0.0, 1.0,
     0.0, false, [](const rwkv_sampler_params& p) { return double(p.penalty_decay); },
     [](rwkv_sampler_params& p, double v) { p.penalty_decay = float(v); }},
};

std::string range_text(const Setting& s) {
    auto num = [&](double v) {
        if (v >= FLT_MAX) return std::string("inf");
        if (v <= -FLT_MAX) return std::string("-inf");
        char buf[32];
        std::snprintf(buf, sizeof buf, s.integer ? "%.0f" : "%g", v);
        return std::string(buf);
    };
    if (s.lo <= -FLT_MAX && s.hi >= FLT_MAX) return "a finite number";
    if (s.hi >= FLT_MAX && s.min_positive > 0) return num(s.lo) + " or a number >= " + num(s.min_positive);
    if (s.hi >= FLT_MAX) return (s.integer ? "an integer >= " : "a number >= ") + num(s.lo);
    return (s.integer ? "an integer in [" : "a number in [") + num(s.lo) + ", " + num(s.hi) + "]";
}

// Whether `v` is a value of `s`. The fields are floats: min_positive is compared after rounding to float, so that a
// value read back from the field (check_sampling) is judged as it was when it was parsed.
bool in_range(const Setting& s, double v) {
    return std::isfinite(v) && v >= s.lo && v <= s.hi && (v <= 0 || float(v) >= float(s.min_positive)) &&
           (!s.integer || v == std::floor(v));
}

// "" when `text` is a value of `s`, else why not; the value goes to *out.
std::string parse_value(const Setting& s, const std::string& text, double* out) {
    double v = 0;
    size_t used = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    const bool ok = used > 0 && used == text.size() && in_range(s, v);
    if (!ok) return std::string(s.name) + " must be " + range_text(s) + ", got '" + text + "'";
    *out = v;
    return "";
}

std::string format_value(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

bool parse_u64(const std::string& text, uint64_t* out) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return false;
    try {
        size_t used = 0;
        unsigned long long v = std::stoull(text, &used);
        if (used != text.size()) return false;
        *out = v;
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

rwkv_sampler_params chat_sampler_defaults() {
    rwkv_sampler_params p = rwkv_sampler_default_params();
    p.temperature = 1.0f;
    p.top_p = 0.3f;
    p.top_k = 0;
    p.min_p = 0.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.5f;
    p.penalty_decay = 0.996f;
    return p;
}

void SamplingOptions::add_to(CLI::App& app) {
    for (const Setting& s : kSettings) {
        const Setting* sp = &s;
        auto check = CLI::Validator(
            [sp](std::string& text) {
                double v = 0;
                return parse_value(*sp, text, &v);
            },
            range_text(s));
        double current = s.get(params_);
        // CLI11 writes the parsed value into a double; the callback stores it into the field.
        app.add_option_function<double>(
               s.flag, [this, sp](const double& v) { sp->set(params_, v); }, s.help)
            ->type_name(s.integer ? "INT" : "FLOAT")
            ->check(check)
            ->default_str(format_value(current));
    }
    seed_option_ = app.add_option("-s,--seed", seed_, "Random seed (default: a random one)");
}

rwkv_sampler_params SamplingOptions::params() const {
    rwkv_sampler_params p = params_;
    if (seed_option_ && seed_option_->count() > 0) {
        p.seed = seed_;
    } else {
        std::random_device rd;
        p.seed = (uint64_t(rd()) << 32) ^ rd();
    }
    return p;
}

std::string set_sampling_value(rwkv_sampler_params& params, const std::string& name, const std::string& value) {
    if (name == "seed") {
        uint64_t seed = 0;
        if (!parse_u64(value, &seed)) return "seed must be a non-negative integer, got '" + value + "'";
        params.seed = seed;
        return "";
    }
    for (const Setting& s : kSettings) {
        if (name != s.name && name != s.alias && name != std::string(s.flag).substr(2)) continue;
        double v = 0;
        std::string err = parse_value(s, value, &v);
        if (!err.empty()) return err;
        s.set(params, v);
        return "";
    }
    std::string names;
    for (const Setting& s : kSettings) names += std::string(s.name) + ", ";
    return "unknown setting '" + name + "' (settings: " + names + "seed, n)";
}

std::string describe_sampling(const rwkv_sampler_params& params) {
    std::string out;
    for (const Setting& s : kSettings) out += std::string(s.name) + " " + format_value(s.get(params)) + " | ";
    return out + "seed " + std::to_string(params.seed);
}

std::string check_sampling(const rwkv_sampler_params& params) {
    for (const Setting& s : kSettings) {
        double v = s.get(params);
        if (!in_range(s, v)) return std::string(s.name) + " must be " + range_text(s) + ", got " + format_value(v);
    }
    return "";
}

void RuntimeOptions::add_model_to(CLI::App& app) {
    auto* group = app.add_option_group("Model", "Exactly one of -m and --synthetic");
    group->add_option("-m,--model", model.model_path, "Model file (.pth or .safetensors)");
    group
        ->add_option("--synthetic", synthetic,
                     "Instead of -m: a model with deterministic random weights of this preset's shape and the full "
                     "65536-token vocabulary, built in memory (for tests and benchmarks)")
        ->check(CLI::IsMember({"tiny", "0.1b", "0.4b", "1.5b", "2.9b", "7.2b", "13.3b"}));
    group->require_option(1);
    app.add_option("--backend", model.backend, "Backend")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
        ->capture_default_str();
    app.add_option("--device", model.device, "CUDA device ordinal")->check(CLI::Range(0, 1023))->capture_default_str();
    app.add_option("-t,--threads", model.threads, "CPU threads (0 = all cores)")
        ->check(CLI::Range(0, 1024))
        ->capture_default_str();
}

void RuntimeOptions::add_vocab_to(CLI::App& app) {
    app.add_option("--vocab", vocab,
                   "Vocabulary file (rwkv_vocab_v20230424.txt). Default: $RWKV_VOCAB, then share/rwkv beside the "
                   "binary, then the install prefix");
}

ModelPtr RuntimeOptions::load_model() const {
    rwkv_model_params params = model.params();
    rwkv_model* m = nullptr;
    if (!synthetic.empty()) {
        rwkv_synthetic_params sp = rwkv_synthetic_default_params();
        sp.preset = synthetic.c_str();
        sp.n_vocab = 65536;
        rwkv::check(rwkv_model_load_synthetic(&sp, &params, &m));
        rwkv_model_info info;
        rwkv::check(rwkv_model_get_info(m, &info));
        if (info.n_vocab < 65530) {
            // This librwkv keeps "tiny" at 256 rows when asked for exactly 65536 (its internal default); 65530 rows
            // still give every World token id (0..65529) a row.
            rwkv_model_free(m);
            m = nullptr;
            sp.n_vocab = 65530;
            rwkv::check(rwkv_model_load_synthetic(&sp, &params, &m));
        }
    } else {
        rwkv::check(rwkv_model_load(model.model_path.c_str(), &params, &m));
    }
    return ModelPtr(m);
}

TokenizerPtr RuntimeOptions::load_tokenizer() const {
    rwkv_tokenizer* t = nullptr;
    rwkv::check(rwkv_tokenizer_load(vocab.empty() ? nullptr : vocab.c_str(), &t));
    return TokenizerPtr(t);
}

std::string RuntimeOptions::model_name() const {
    if (!synthetic.empty()) return "synthetic:" + synthetic;
    size_t slash = model.model_path.find_last_of('/');
    return slash == std::string::npos ? model.model_path : model.model_path.substr(slash + 1);
}

void load_initial_state(rwkv_state* state, const std::string& path) {
    char magic[8] = {};
    bool is_state = false;
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
        is_state = std::fread(magic, 1, 8, f) == 8 && std::string(magic, 8) == "RWKVSTAT";
        std::fclose(f);
    }
    rwkv::check(is_state ? rwkv_state_load(state, path.c_str()) : rwkv_state_load_tuning(state, path.c_str()));
}

std::string utf8_error(const std::string& text, const std::string& what) {
    size_t at = rwkv_utf8_check(text.data(), text.size());
    if (at >= text.size()) return "";
    char buf[96];
    std::snprintf(buf, sizeof buf, " is not valid UTF-8 (bad sequence at byte offset %zu, byte 0x%02X)", at,
                  unsigned(static_cast<unsigned char>(text[at])));
    return what + buf;
}

std::string speed_line(const rwkv_generate_result& r) {
    auto rate = [](size_t n, double s) {
        char buf[32];
        if (n == 0 || s <= 0)
            std::snprintf(buf, sizeof buf, "-");
        else
            std::snprintf(buf, sizeof buf, "%.1f", double(n) / s);
        return std::string(buf);
    };
    return "[prompt: " + rate(r.n_prompt_tokens, r.prompt_seconds) +
           " tok/s | generation: " + rate(r.n_generated_tokens, r.generate_seconds) + " tok/s]";
}

}  // namespace cli
