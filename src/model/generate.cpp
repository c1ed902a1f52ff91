#include "model/generate.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "text/utf8.h"

namespace rwkv {

const char* stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::Length:
            return "length";
        case StopReason::StopToken:
            return "stop token";
        case StopReason::StopString:
            return "stop string";
        case StopReason::Cancelled:
            return "cancelled";
    }
    return "?";
}

namespace {

// Longest suffix of `text` that is a proper prefix of some stop string: it must be held back.
size_t held_back(std::string_view text, const std::vector<std::string>& stops) {
    size_t keep = 0;
    for (const std::string& s : stops)
        for (size_t n = std::min(text.size(), s.size() - 1); n > keep; n--)
            if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
                keep = n;
                break;
            }
    return keep;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

GenerateResult generate(const EvalFn& eval, int n_vocab, const WorldTokenizer* tokenizer, TokenSampler& sampler,
                        const std::vector<int32_t>& prompt, const GenerateParams& p, const TokenCallback& on_token) {
    std::vector<float> logits(n_vocab);  // once per call, not per token
    GenerateStep step;
    step.eval = [&](const int32_t* tokens, int T) { eval(tokens, T, logits.data()); };
    step.sample = [&](TokenSampler& s) { return s.sample(logits.data()); };
    return generate(step, tokenizer, sampler, prompt, p, on_token);
}

GenerateResult generate(const GenerateStep& step, const WorldTokenizer* tokenizer, TokenSampler& sampler,
                        const std::vector<int32_t>& prompt, const GenerateParams& p, const TokenCallback& on_token) {
    if (prompt.empty()) throw_invalid("generate: the prompt has no tokens");
    if (p.max_tokens < 0) throw_invalid("generate: max_tokens must be >= 0");
    for (const std::string& s : p.stop_strings)
        if (s.empty()) throw_invalid("generate: empty stop string");
    if (!tokenizer && !p.stop_strings.empty()) throw_invalid("generate: stop strings need a tokenizer");

    GenerateResult r;
    r.n_prompt = int(prompt.size());
    auto t0 = std::chrono::steady_clock::now();
    step.eval(prompt.data(), int(prompt.size()));
    r.prompt_seconds = seconds_since(t0);

    t0 = std::chrono::steady_clock::now();
    Utf8StreamDecoder utf8;
    std::string pending;  // decoded text not yet emitted (a possible stop-string prefix)
    r.reason = StopReason::Length;
    for (int i = 0; i < p.max_tokens; i++) {
        if (p.cancelled && p.cancelled()) {
            r.reason = StopReason::Cancelled;
            break;
        }
        const int32_t tok = step.sample(sampler);
        if (std::find(p.stop_tokens.begin(), p.stop_tokens.end(), tok) != p.stop_tokens.end()) {
            r.reason = StopReason::StopToken;
            break;
        }
        const std::string_view bytes = tokenizer ? tokenizer->token_bytes(tok) : std::string_view();
        sampler.accept(tok, bytes);
        step.eval(&tok, 1);  // fed before the stop check (reference chat loop)
        r.tokens.push_back(tok);

        utf8.feed(bytes, pending);
        std::string_view emit = pending;
        bool stop = false;
        for (const std::string& s : p.stop_strings) {
            size_t at = pending.find(s);
            if (at != std::string::npos && at < emit.size()) {
                emit = std::string_view(pending).substr(0, at);
                stop = true;
            }
        }
        if (!stop) emit = emit.substr(0, emit.size() - held_back(emit, p.stop_strings));
        r.text += emit;
        const bool go_on = !on_token || on_token(tok, emit);
        pending.erase(0, emit.size());
        if (stop) {
            r.reason = StopReason::StopString;
            break;
        }
        if (!go_on) {
            r.reason = StopReason::Cancelled;
            break;
        }
    }
    if (r.reason != StopReason::StopString) {  // the held-back tail was not a stop string after all
        utf8.flush(pending);
        if (!pending.empty()) {
            r.text += pending;
            if (on_token) on_token(-1, pending);
        }
    }
    r.generate_seconds = seconds_since(t0);
    return r;
}

}  // namespace rwkv
