// rwkv-cli generate: continue a prompt, streaming the text (or the token ids with --ids).
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <type_traits>

#include "commands.h"
#include "common.h"
#include "sampling_options.h"

namespace cli {
namespace {

static_assert(std::is_same_v<sig_atomic_t, int>, "the cancel flag is passed to librwkv as a volatile int");
volatile sig_atomic_t g_cancel = 0;

// The first Ctrl-C stops the generation (what was generated is printed, exit code 130); a second one exits.
void on_sigint(int) {
    if (g_cancel) _exit(130);
    g_cancel = 1;
}

struct GenerateOptions {
    RuntimeOptions rt;
    SamplingOptions sampling{rwkv_sampler_default_params()};
    std::string prompt, file, tokens, state;
    std::vector<std::string> stop;
    int n_predict = 256;
    bool ids = false, ignore_eos = false, no_stats = false;
};

struct Printer {
    bool ids;
    bool first = true;
    static int callback(int32_t token, const char* text, size_t n, void* user) {
        auto* p = static_cast<Printer*>(user);
        if (p->ids) {
            if (token < 0) return 0;  // the held-back text at the end: no new token
            std::printf("%s%d", p->first ? "[" : ",", token);
            p->first = false;
        } else {
            std::fwrite(text, 1, n, stdout);
        }
        std::fflush(stdout);
        return 0;
    }
};

}  // namespace

Runner add_generate(CLI::App& root) {
    auto* cmd = root.add_subcommand("generate", "Continue a prompt, streaming the text");
    auto o = std::make_shared<GenerateOptions>();
    o->rt.add_model_to(*cmd);
    o->rt.add_vocab_to(*cmd);
    auto* input = cmd->add_option_group("Prompt", "Exactly one of -p, -f and --tokens");
    input->add_option("-p,--prompt", o->prompt, "The prompt text");
    input->add_option("-f,--file", o->file, "A file holding the prompt text (all of its bytes)")
        ->check(CLI::ExistingFile);
    input->add_option("--tokens", o->tokens, "The prompt as token ids, comma separated");
    input->require_option(1);
    cmd->add_option("-n,--n-predict", o->n_predict, "Number of tokens to generate (-1 = until a stop)")
        ->check(CLI::Range(-1, INT_MAX))
        ->capture_default_str();
    o->sampling.add_to(*cmd);
    cmd->add_option("--state", o->state,
                    "Initial state: a librwkv state file or a state-tuning checkpoint (RWKV-PEFT time_state)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--stop", o->stop, "Stop when this text appears (repeatable; it is not printed)");
    cmd->add_flag("--ignore-eos", o->ignore_eos, "Do not stop at token 0 (end of text)");
    cmd->add_flag("--ids", o->ids,
                  "Print the generated token ids as a JSON array instead of text (no vocabulary needed with "
                  "--tokens)");
    cmd->add_flag("--no-stats", o->no_stats, "Do not print the speed line to stderr");
    return [o] {
        std::string text = o->prompt;
        if (!o->file.empty()) {
            std::ifstream f(o->file, std::ios::binary);
            if (!f) throw std::runtime_error(o->file + ": cannot open");
            text.assign(std::istreambuf_iterator<char>(f), {});
        }
        const bool text_prompt = o->tokens.empty();
        std::vector<int32_t> prompt;
        if (!text_prompt) prompt = parse_id_list(o->tokens);
        if (text_prompt) {
            if (std::string err = utf8_error(text, "the prompt"); !err.empty()) throw std::runtime_error(err);
            if (text.empty()) throw std::runtime_error("the prompt is empty");
        }

        // A vocabulary is needed to tokenize a text prompt, to print text and to find stop strings.
        TokenizerPtr tokenizer;
        if (text_prompt || !o->ids || !o->stop.empty()) tokenizer = o->rt.load_tokenizer();
        if (text_prompt) {
            prompt.resize(text.size());
            size_t n = 0;
            rwkv::check(
                rwkv_tokenizer_encode(tokenizer.get(), text.data(), text.size(), prompt.data(), prompt.size(), &n));
            prompt.resize(n);
        }

        ModelPtr model = o->rt.load_model();
        rwkv_model_info info;
        rwkv::check(rwkv_model_get_info(model.get(), &info));
        rwkv_context* c = nullptr;
        rwkv::check(rwkv_context_init(model.get(), nullptr, &c));
        ContextPtr ctx(c);
        rwkv_state* s = nullptr;
        rwkv::check(rwkv_state_init(model.get(), &s));
        StatePtr state(s);
        if (!o->state.empty()) load_initial_state(state.get(), o->state);
        const rwkv_sampler_params sp = o->sampling.params();
        rwkv_sampler* smp = nullptr;
        rwkv::check(rwkv_sampler_init(&sp, info.n_vocab, &smp));
        SamplerPtr sampler(smp);

        std::vector<const char*> stops;
        for (const std::string& st : o->stop) {
            if (st.empty()) throw std::runtime_error("--stop: empty stop string");
            stops.push_back(st.c_str());
        }
        static const int32_t kEndOfText = 0;
        rwkv_generate_params gp = rwkv_generate_default_params();
        gp.max_tokens = o->n_predict < 0 ? INT_MAX : o->n_predict;
        gp.stop_strings = stops.data();
        gp.n_stop_strings = stops.size();
        gp.stop_tokens = &kEndOfText;
        gp.n_stop_tokens = o->ignore_eos ? 0 : 1;
        gp.cancel = &g_cancel;

        struct sigaction sa {};
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(SIGINT, &sa, nullptr);

        Printer printer{o->ids};
        rwkv_generate_result r{};
        rwkv_status status = rwkv_generate(ctx.get(), state.get(), tokenizer.get(), sampler.get(), prompt.data(),
                                           prompt.size(), &gp, Printer::callback, &printer, &r);
        if (status != RWKV_STATUS_OK) {  // the error goes on a line of its own
            std::printf(o->ids && !printer.first ? "]\n" : "\n");
            std::fflush(stdout);
            rwkv::check(status);
        }
        std::printf(o->ids ? (printer.first ? "[]\n" : "]\n") : "\n");
        std::fflush(stdout);
        if (!o->no_stats) std::fprintf(stderr, "%s\n", speed_line(r).c_str());
        return r.stop_reason == RWKV_STOP_CANCELLED && g_cancel ? 130 : 0;
    };
}

}  // namespace cli
