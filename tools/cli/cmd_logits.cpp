// rwkv-cli logits: the logits after every token of a token list, as a [T, V] float32 .npy file.
#include <spdlog/spdlog.h>

#include "commands.h"
#include "common.h"

namespace cli {

Runner add_logits(CLI::App& root) {
    auto* cmd = root.add_subcommand("logits", "Write the logits after every token as a [T, V] float32 .npy file");
    struct Opts {
        ModelOptions model;
        std::string tokens, tokens_file, state, out, mode = "seq";
    };
    auto o = std::make_shared<Opts>();
    o->model.add_to(*cmd);
    auto* tok = cmd->add_option("--tokens", o->tokens, "Token ids, comma separated");
    auto* tok_file = cmd->add_option("--tokens-file", o->tokens_file, "File of token ids")->check(CLI::ExistingFile);
    tok->excludes(tok_file);
    cmd->add_option("--state", o->state, "Initial state: a state file saved by librwkv, or a state-tuning checkpoint")
        ->check(CLI::ExistingFile);
    cmd->add_option("--out", o->out, "Output .npy path")->required();
    cmd->add_option("--mode", o->mode, "seq: prefill in sequence mode; rnn: one token at a time")
        ->check(CLI::IsMember({"seq", "rnn"}));
    return [o] {
        if (o->tokens.empty() && o->tokens_file.empty())
            throw std::runtime_error("logits: give the tokens with --tokens or --tokens-file");
        std::vector<int32_t> tokens = o->tokens.empty() ? read_id_file(o->tokens_file) : parse_id_list(o->tokens);
        rwkv::Model model(o->model.model_path, o->model.params());
        rwkv::State state(model);
        if (!o->state.empty()) {
            // A librwkv state file starts with its magic; anything else is read as a state-tuning checkpoint.
            std::FILE* f = std::fopen(o->state.c_str(), "rb");
            char magic[8] = {};
            bool is_state = f && std::fread(magic, 1, 8, f) == 8 && std::string(magic, 8) == "RWKVSTAT";
            if (f) std::fclose(f);
            if (is_state)
                state.load(o->state);
            else
                state.load_tuning(o->state);
        }
        rwkv::Context ctx(model);
        const int64_t V = model.info().n_vocab, T = int64_t(tokens.size());
        std::vector<float> logits;
        if (o->mode == "seq") {
            logits = ctx.eval_all(state, tokens);
        } else {
            for (int32_t t : tokens) {
                std::vector<float> row = ctx.decode(state, t);
                logits.insert(logits.end(), row.begin(), row.end());
            }
        }
        write_npy(o->out, {T, V}, logits.data());
        spdlog::info("wrote {} x {} logits to {}", T, V, o->out);
        return 0;
    };
}

}  // namespace cli
