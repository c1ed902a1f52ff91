// Options shared by the commands that generate text (generate, chat): the sampling flags, where the model comes
// from (-m or --synthetic), the vocabulary, the initial state, and small helpers (UTF-8 checks, the speed line).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "common.h"
#include "rwkv/rwkv.hpp"

namespace cli {

using ModelPtr = std::unique_ptr<rwkv_model, rwkv::ModelDeleter>;
using ContextPtr = std::unique_ptr<rwkv_context, rwkv::ContextDeleter>;
using StatePtr = std::unique_ptr<rwkv_state, rwkv::StateDeleter>;
using TokenizerPtr = std::unique_ptr<rwkv_tokenizer, rwkv::TokenizerDeleter>;
using SamplerPtr = std::unique_ptr<rwkv_sampler, rwkv::SamplerDeleter>;

// The sampling defaults of the G1 chat demo (rwkv7.md §5, CR/API_DEMO_CHAT): temperature 1.0, top-p 0.3,
// presence 0.5, frequency 0.5, decay 0.996; top-k and min-p off.
rwkv_sampler_params chat_sampler_defaults();

// The sampling flags (--temp, --top-p, --top-k, --min-p, --presence-penalty, --frequency-penalty,
// --penalty-decay, -s/--seed) with range checks. Without -s the seed is drawn at random.
class SamplingOptions {
  public:
    explicit SamplingOptions(const rwkv_sampler_params& defaults) : params_(defaults) {}
    void add_to(CLI::App& app);
    // The parameters as given on the command line, with a random seed when -s was not given.
    rwkv_sampler_params params() const;

  private:
    rwkv_sampler_params params_;
    uint64_t seed_ = 0;
    CLI::Option* seed_option_ = nullptr;
};

// One sampling setting by its /set name ("temp", "top-p", "top-k", "min-p", "presence", "frequency",
// "decay", "seed"; the flag names without "--" and "temperature" are accepted too). Returns "" on success, else
// a message naming the setting and the allowed range; `params` is unchanged on error.
std::string set_sampling_value(rwkv_sampler_params& params, const std::string& name, const std::string& value);
// The /set names, in order, with their current values: "temp 1 | top-p 0.3 | ...".
std::string describe_sampling(const rwkv_sampler_params& params);
// Range check of every field (for values read back from a file). "" when all are valid.
std::string check_sampling(const rwkv_sampler_params& params);

// Where the model comes from (exactly one of -m FILE and --synthetic PRESET), the backend, the threads and the
// vocabulary file.
struct RuntimeOptions {
    ModelOptions model;     // model_path, backend, threads
    std::string synthetic;  // a preset of rwkv_model_load_synthetic, with the full 65536 vocabulary
    std::string vocab;      // "" = the default search
    void add_model_to(CLI::App& app);
    void add_vocab_to(CLI::App& app);
    ModelPtr load_model() const;
    TokenizerPtr load_tokenizer() const;
    // The model file's name, or "synthetic:PRESET".
    std::string model_name() const;
};

// Sets `state` from FILE: a librwkv state file (starts with "RWKVSTAT") or else a state-tuning checkpoint.
void load_initial_state(rwkv_state* state, const std::string& path);

// "" when `text` is well-formed UTF-8, else "<what> is not valid UTF-8 (bad sequence at byte offset K, byte 0xNN)".
std::string utf8_error(const std::string& text, const std::string& what);

// "[prompt: X tok/s | generation: Y tok/s]".
std::string speed_line(const rwkv_generate_result& r);

}  // namespace cli
