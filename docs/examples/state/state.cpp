// state: save a conversation, then fork it two ways. An RWKV conversation is its recurrent state: a fixed-size
// block of floats (no KV cache), so saving, loading and copying it is cheap and exact.
//
//   state MODEL.pth [DIR]      (DIR: where to write conversation.state; default ".")
//
// Uses the C++ wrapper (rwkv/rwkv.hpp): RAII handles, errors thrown as rwkv::Error.
#include <rwkv/rwkv.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

// Feeds `prompt` into `state` and returns the reply, up to a blank line (greedy: the same state gives the same
// reply). Afterwards `state` holds the prompt and the reply, ended by the blank line.
std::string reply(rwkv::Context& ctx, rwkv::State& state, const rwkv::Tokenizer& tokenizer, rwkv::Sampler& sampler,
                  const std::string& prompt) {
    std::vector<int32_t> ids = tokenizer.encode(prompt);
    const char* stop[] = {"\n\n"};
    rwkv_generate_params gen = rwkv_generate_default_params();
    gen.max_tokens = 60;
    gen.stop_strings = stop;
    gen.n_stop_strings = 1;
    std::string text;
    auto append = [](int32_t, const char* bytes, size_t n, void* out) {
        static_cast<std::string*>(out)->append(bytes, n);
        return 0;
    };
    rwkv_generate_result result;
    rwkv::check(rwkv_generate(ctx.get(), state.get(), tokenizer.get(), sampler.get(), ids.data(), ids.size(), &gen,
                              append, &text, &result));
    // A stop string is fed to the state; after any other stop, end the turn ourselves.
    if (result.stop_reason != RWKV_STOP_STRING) ctx.eval(state, tokenizer.encode("\n\n"));
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MODEL [DIR]\n", argv[0]);
        return 2;
    }
    const std::string path = std::string(argc > 2 ? argv[2] : ".") + "/conversation.state";
    try {
        rwkv::Model model(argv[1]);
        rwkv::Context ctx(model);
        rwkv::Tokenizer tokenizer;  // the World vocabulary: $RWKV_VOCAB, else share/rwkv
        rwkv_sampler_params greedy = rwkv_sampler_default_params();
        greedy.temperature = 0;
        rwkv::Sampler sampler(greedy, model.info().n_vocab);

        // 1. A conversation, saved to a file (a game's save slot, a server's session store, ...).
        rwkv::State conversation(model);
        std::string first = reply(ctx, conversation, tokenizer, sampler, "User: Plan a weekend trip.\n\nAssistant:");
        std::printf("[shared] Assistant:%s\n", first.c_str());
        conversation.save(path);
        std::printf("saved %zu floats of state to %s\n", conversation.data().size(), path.c_str());

        // 2. Fork A: loaded back from the file. Fork B: copied in memory. Both start exactly where we stopped.
        rwkv::State fork_a(model), fork_b(model);
        fork_a.load(path);
        fork_b.copy_from(conversation);
        if (fork_a.data() != fork_b.data()) {
            std::fprintf(stderr, "the loaded state differs from the copy\n");
            return 1;
        }

        // 3. Each fork goes its own way; the saved conversation is untouched.
        rwkv_sampler_reset(sampler.get());
        std::string a = reply(ctx, fork_a, tokenizer, sampler, "User: Make it by the sea.\n\nAssistant:");
        rwkv_sampler_reset(sampler.get());
        std::string b = reply(ctx, fork_b, tokenizer, sampler, "User: Make it in the mountains.\n\nAssistant:");
        std::printf("[fork A] Assistant:%s\n[fork B] Assistant:%s\n", a.c_str(), b.c_str());
    } catch (const rwkv::Error& e) {
        std::fprintf(stderr, "error (%s): %s\n", rwkv_status_string(e.status()), e.what());
        return 1;
    }
    return 0;
}
