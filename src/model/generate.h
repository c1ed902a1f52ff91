// Text generation: prefill a prompt, then sample and decode token by token, streaming text through a callback
// and stopping at stop strings, stop tokens, a token limit or a cancel request (rwkv7.md §5).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "model/rwkv7.h"
#include "text/sampler.h"
#include "text/tokenizer.h"

namespace rwkv {

struct GenerateParams {
    int max_tokens = 256;                    // generated tokens at most
    std::vector<std::string> stop_strings;   // e.g. {"\n\n"}; the text stops before the first occurrence
    std::vector<int32_t> stop_tokens = {0};  // sampled, not fed to the model, not emitted
    std::function<bool()> cancelled;         // optional; checked before every token
};

enum class StopReason { Length, StopToken, StopString, Cancelled };
const char* stop_reason_name(StopReason r);

struct GenerateResult {
    std::vector<int32_t> tokens;  // every generated token fed to the model (stop strings' tokens included)
    std::string text;             // the emitted text (without the stop string)
    StopReason reason = StopReason::Length;
    int n_prompt = 0;
    double prompt_seconds = 0, generate_seconds = 0;
};

// Called with each newly generated token and the text it completes (may be empty while a UTF-8 character or a
// possible stop string is held back). Return false to stop (reason Cancelled). At the end, text that was held back
// and turned out not to start a stop string comes in one last call with token = -1.
using TokenCallback = std::function<bool(int32_t token, std::string_view text)>;

// Everything the loop needs from a context: one eval of T tokens with the last token's logits.
using EvalFn = std::function<void(const int32_t* tokens, int T, float* logits)>;

// The loop's view of a context when the logits stay where the context keeps them (a CUDA context samples on the
// device and copies one token id back): `eval` feeds T tokens, `sample` picks the next token from the logits
// after the last one, as TokenSampler::sample would (bans, bias, penalties, one RNG step).
struct GenerateStep {
    std::function<void(const int32_t* tokens, int T)> eval;
    std::function<int32_t(TokenSampler& sampler)> sample;
};

// The state advances by the prompt and every generated token except a stop token. Stop strings: every sampled
// token is fed into the state before the stop check, as the reference chat loop does, so after a "\n\n" stop the
// state already holds the closing "\n\n". `prompt` must not be empty. `tokenizer` may be null when the vocabulary
// is not the World one: then no text is produced and stop strings are not allowed.
GenerateResult generate(const EvalFn& eval, int n_vocab, const WorldTokenizer* tokenizer, TokenSampler& sampler,
                        const std::vector<int32_t>& prompt, const GenerateParams& params,
                        const TokenCallback& on_token);
// The same loop over a GenerateStep (the overload above is this one with host logits and TokenSampler::sample).
GenerateResult generate(const GenerateStep& step, const WorldTokenizer* tokenizer, TokenSampler& sampler,
                        const std::vector<int32_t>& prompt, const GenerateParams& params,
                        const TokenCallback& on_token);

}  // namespace rwkv
