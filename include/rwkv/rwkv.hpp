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
    rwkv_context* get() const { return handle_.get(); }

  private:
    int n_vocab_;
    std::unique_ptr<rwkv_context, ContextDeleter> handle_;
};

}  // namespace rwkv
