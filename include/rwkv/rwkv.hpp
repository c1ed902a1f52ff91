// librwkv: RAII C++ wrapper over the C API (rwkv.h). Failures throw rwkv::Error with the status and the message.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rwkv/error.hpp"
#include "rwkv/rwkv.h"

namespace rwkv {

inline void check(rwkv_status status) {
    if (status != RWKV_STATUS_OK) throw Error(status, rwkv_last_error_message());
}

struct ModelDeleter {
    void operator()(rwkv_model* m) const { rwkv_model_free(m); }
};
struct ContextDeleter {
    void operator()(rwkv_context* c) const { rwkv_context_free(c); }
};
struct StateDeleter {
    void operator()(rwkv_state* s) const { rwkv_state_free(s); }
};
struct TokenizerDeleter {
    void operator()(rwkv_tokenizer* t) const { rwkv_tokenizer_free(t); }
};
struct SamplerDeleter {
    void operator()(rwkv_sampler* s) const { rwkv_sampler_free(s); }
};

class Model {
  public:
    explicit Model(const std::string& path, const rwkv_model_params& params = rwkv_model_default_params()) {
        rwkv_model* m = nullptr;
        check(rwkv_model_load(path.c_str(), &params, &m));
        handle_.reset(m);
    }
    rwkv_model_info info() const {
        rwkv_model_info i;
        check(rwkv_model_get_info(handle_.get(), &i));
        return i;
    }
    rwkv_memory_info memory() const {
        rwkv_memory_info m;
        check(rwkv_model_get_memory(handle_.get(), &m));
        return m;
    }
    const rwkv_model* get() const { return handle_.get(); }

  private:
    std::unique_ptr<rwkv_model, ModelDeleter> handle_;
};

class State {
  public:
    explicit State(const Model& model) {
        rwkv_state* s = nullptr;
        check(rwkv_state_init(model.get(), &s));
        handle_.reset(s);
    }
    void reset() { check(rwkv_state_reset(get())); }
    void copy_from(const State& other) { check(rwkv_state_copy(get(), other.get())); }
    void save(const std::string& path) const { check(rwkv_state_save(get(), path.c_str())); }
    void load(const std::string& path) { check(rwkv_state_load(get(), path.c_str())); }
    void load_tuning(const std::string& path) { check(rwkv_state_load_tuning(get(), path.c_str())); }
    std::vector<float> data() const {
        std::vector<float> out(rwkv_state_size(get()));
        check(rwkv_state_get_data(get(), out.data(), out.size()));
        return out;
    }
    rwkv_state* get() const { return handle_.get(); }

  private:
    std::unique_ptr<rwkv_state, StateDeleter> handle_;
};

class Context {
  public:
    explicit Context(const Model& model, const rwkv_context_params& params = rwkv_context_default_params())
        : n_vocab_(model.info().n_vocab) {
        rwkv_context* c = nullptr;
        check(rwkv_context_init(model.get(), &params, &c));
        handle_.reset(c);
    }
    // Logits after the last token (n_vocab floats).
    std::vector<float> eval(State& state, const std::vector<int32_t>& tokens) {
        std::vector<float> logits(static_cast<size_t>(n_vocab_));
        check(rwkv_eval(get(), state.get(), tokens.data(), tokens.size(), RWKV_LOGITS_LAST, logits.data(),
                        logits.size()));
        return logits;
    }
    // Logits after every token ([n_tokens, n_vocab], row-major).
    std::vector<float> eval_all(State& state, const std::vector<int32_t>& tokens) {
        std::vector<float> logits(tokens.size() * size_t(n_vocab_));
        check(
            rwkv_eval(get(), state.get(), tokens.data(), tokens.size(), RWKV_LOGITS_ALL, logits.data(), logits.size()));
        return logits;
    }
    std::vector<float> decode(State& state, int32_t token) {
        std::vector<float> logits(static_cast<size_t>(n_vocab_));
        check(rwkv_decode(get(), state.get(), token, logits.data(), logits.size()));
        return logits;
    }
    rwkv_memory_info memory() const {
        rwkv_memory_info m;
        check(rwkv_context_get_memory(get(), &m));
        return m;
    }
    rwkv_context* get() const { return handle_.get(); }

  private:
    int n_vocab_;
    std::unique_ptr<rwkv_context, ContextDeleter> handle_;
};

class Tokenizer {
  public:
    // path "" = the default search ($RWKV_VOCAB, share/rwkv beside the executable, the install prefix).
    explicit Tokenizer(const std::string& path = "") {
        rwkv_tokenizer* t = nullptr;
        check(rwkv_tokenizer_load(path.empty() ? nullptr : path.c_str(), &t));
        handle_.reset(t);
    }
    std::vector<int32_t> encode(const std::string& text) const {
        size_t n = 0;
        std::vector<int32_t> ids(text.size());  // never more ids than bytes
        check(rwkv_tokenizer_encode(get(), text.data(), text.size(), ids.data(), ids.size(), &n));
        ids.resize(n);
        return ids;
    }
    std::string decode(const std::vector<int32_t>& ids) const {
        size_t n = 0;
        check(rwkv_tokenizer_decode(get(), ids.data(), ids.size(), nullptr, 0, &n));  // size query
        std::string text(n, '\0');
        check(rwkv_tokenizer_decode(get(), ids.data(), ids.size(), text.data(), text.size(), &n));
        return text;
    }
    const rwkv_tokenizer* get() const { return handle_.get(); }

  private:
    std::unique_ptr<rwkv_tokenizer, TokenizerDeleter> handle_;
};

class Sampler {
  public:
    Sampler(const rwkv_sampler_params& params, int n_vocab) {
        rwkv_sampler* s = nullptr;
        check(rwkv_sampler_init(&params, n_vocab, &s));
        handle_.reset(s);
    }
    void set_params(const rwkv_sampler_params& params) { check(rwkv_sampler_set_params(get(), &params)); }
    rwkv_sampler* get() const { return handle_.get(); }

  private:
    std::unique_ptr<rwkv_sampler, SamplerDeleter> handle_;
};

}  // namespace rwkv
