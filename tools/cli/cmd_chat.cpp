// rwkv-cli chat: an interactive conversation in RWKV's format, one carried state, slash commands. The session
// logic is in chat_session.{h,cpp}; this file is the terminal I/O loop.
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "chat_command.h"
#include "chat_session.h"
#include "commands.h"
#include "common.h"
#include "sampling_options.h"

namespace cli {
namespace {

static_assert(std::is_same_v<sig_atomic_t, int>, "the cancel flag is passed to librwkv as a volatile int");

volatile sig_atomic_t g_cancel = 0;      // set by SIGINT during a reply
volatile sig_atomic_t g_generating = 0;  // a reply is being generated

// During a reply, Ctrl-C stops it (a second Ctrl-C before it has stopped exits). Anywhere else, it exits with
// 130 like llama.cpp.
void on_sigint(int) {
    if (g_generating && !g_cancel) {
        g_cancel = 1;
        return;
    }
    const char nl = '\n';
    ssize_t ignored = ::write(STDOUT_FILENO, &nl, 1);
    (void)ignored;
    _exit(130);
}

void install_sigint() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
}

const char* kHelp =
    "Commands:\n"
    "  /help                 this help\n"
    "  /reset                start over from the initial state (after --state and --system)\n"
    "  /undo                 forget the last exchange (back to the state before it)\n"
    "  /regen                answer the last message again, from the state before it\n"
    "  /save FILE            save the conversation: state, transcript, settings (atomic)\n"
    "  /load FILE            load a conversation saved with /save (same model)\n"
    "  /think on|off         think mode: the prompt ends with \"Assistant: <think\"\n"
    "  /think show|hide      show or hide the reasoning\n"
    "  /set                  show the settings\n"
    "  /set NAME VALUE       temp, top-p, top-k, min-p, presence, frequency, decay, seed, n (max tokens per reply)\n"
    "  /stats on|off         the speed line after each reply\n"
    "  /quit                 leave (also /exit, or end of input)\n"
    "Ctrl-C stops the current reply and keeps the session; at the prompt it exits.\n"
    "A line ending with \\ continues on the next line. Start a message with // to send a text beginning with /.\n";

void out(std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
}

// Messages about the session (not the reply) go to stderr.
void note(const std::string& s) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s\n", s.c_str());
    std::fflush(stderr);
}

// Prints a reply: the reasoning dimmed (terminal) or between <think> and </think> lines (otherwise), or hidden.
class ReplyPrinter {
  public:
    ReplyPrinter(bool tty, bool think, bool show_think) : tty_(tty), show_(show_think), filter_(think) {}
    void feed(std::string_view text) {
        for (const auto& p : filter_.feed(text)) print(p);
    }
    void finish() {
        for (const auto& p : filter_.finish()) print(p);
        out("\n");
    }

  private:
    void print(const chat::ThinkFilter::Piece& p) {
        using K = chat::ThinkFilter::Piece::Kind;
        switch (p.kind) {
            case K::Reasoning:
                if (!show_) {
                    if (tty_ && !note_) out("\x1b[2m(thinking...)\x1b[0m");
                    note_ = true;
                    return;
                }
                if (!open_) out(tty_ ? "\x1b[2m" : "<think>\n");
                open_ = true;
                out(p.text);
                return;
            case K::ReasoningEnd:
                if (open_) out(tty_ ? "\x1b[0m\n\n" : "\n</think>\n");
                if (note_ && tty_) out("\r\x1b[K");
                open_ = note_ = false;
                return;
            case K::Answer:
                out(p.text);
                return;
        }
    }
    bool tty_, show_;
    chat::ThinkFilter filter_;
    bool open_ = false, note_ = false;
};

struct ChatOptions {
    RuntimeOptions rt;
    SamplingOptions sampling{chat_sampler_defaults()};
    int max_tokens = 4096;
    bool think = false, hide_think = false, no_stats = false;
    std::string system, state, prompt_log;
};

class ChatLoop {
  public:
    ChatLoop(chat::Session& session, bool tty_in, bool tty_out)
        : session_(session), tty_in_(tty_in), tty_out_(tty_out) {}

    int run() {
        if (tty_in_) note("Type a message, /help for commands. Ctrl-C stops a reply; /quit or Ctrl-D leaves.");
        std::string line;
        while (true) {
            if (tty_in_) out(session_.settings().think ? "think> " : "> ");
            if (!read_message(line)) {
                if (tty_in_) out("\n");
                return 0;
            }
            if (chat::is_command(line)) {
                if (!command(line)) return 0;
                continue;
            }
            const std::string_view text = chat::message_of(line);
            if (std::string err = utf8_error(std::string(text), "message"); !err.empty()) {
                note("refused: " + err);
                continue;
            }
            std::string message = chat::clean_text(text);
            if (message.empty()) continue;
            reply([&](const chat::Session::Stream& stream, rwkv_generate_result* r) {
                *r = session_.send(message, stream, &g_cancel);
                return true;
            });
        }
    }

  private:
    // One line, or several joined when they end with a backslash. False at the end of input.
    bool read_message(std::string& line) {
        line.clear();
        std::string part;
        while (std::getline(std::cin, part)) {
            if (!part.empty() && part.back() == '\r') part.pop_back();
            if (!part.empty() && part.back() == '\\') {
                part.pop_back();
                line += part + "\n";
                continue;
            }
            line += part;
            return true;
        }
        return !line.empty();
    }

    // Runs one reply through `generate`, printing it and the speed line.
    template <class F>
    void reply(F&& generate) {
        const chat::Settings& s = session_.settings();
        ReplyPrinter printer(tty_out_, s.think, s.show_think);
        rwkv_generate_result r{};
        g_cancel = 0;
        g_generating = 1;
        bool done = false;
        try {
            done = generate([&](std::string_view text) { printer.feed(text); }, &r);
        } catch (const std::exception& e) {
            g_generating = 0;
            printer.finish();
            note(std::string("error: ") + e.what());
            return;
        }
        g_generating = 0;
        if (!done) return;
        printer.finish();
        if (r.stop_reason == RWKV_STOP_CANCELLED) note("[stopped]");
        if (r.stop_reason == RWKV_STOP_LENGTH) note("[stopped at the token limit]");
        if (session_.settings().stats) note(speed_line(r));
    }

    // Runs one slash command. False when the session should end.
    bool command(const std::string& line) {
        using chat::Command;
        const Command c = chat::parse_command(line, session_.settings());
        switch (c.kind) {
            case Command::Quit:
                return false;
            case Command::Help:
                if (!c.note.empty()) note(c.note);
                std::fflush(stdout);
                std::fputs(kHelp, stderr);
                break;
            case Command::Reset:
                session_.reset();
                note("[reset]");
                break;
            case Command::Undo:
                if (session_.undo())
                    note("[undone: " + std::to_string(session_.transcript().size()) + " turns left]");
                else
                    note("nothing to undo");
                break;
            case Command::Regen: {
                bool had = true;
                reply([&](const chat::Session::Stream& stream, rwkv_generate_result* r) {
                    had = session_.regen(stream, &g_cancel, r);
                    return had;
                });
                if (!had) note("nothing to regenerate");
                break;
            }
            case Command::Save:
                try {
                    session_.save(c.path);
                    note("[saved " + c.path + "]");
                } catch (const std::exception& e) {
                    note(std::string("error: ") + e.what());
                }
                break;
            case Command::Load:
                try {
                    std::string warning = session_.load(c.path);
                    if (!warning.empty()) note("warning: " + warning);
                    note("[loaded " + c.path + ": " + std::to_string(session_.transcript().size()) + " turns]");
                } catch (const std::exception& e) {
                    note(std::string("refused: ") + e.what() + " (the session is unchanged)");
                }
                break;
            case Command::Configure:
                try {
                    session_.set_settings(c.settings);
                } catch (const std::exception& e) {  // the parser checked them: not expected, but never fatal
                    note(std::string("error: ") + e.what());
                    break;
                }
                if (!c.note.empty()) note(c.note);
                break;
            case Command::Print:
                note(c.note);
                break;
        }
        return true;
    }

    chat::Session& session_;
    bool tty_in_, tty_out_;
};

}  // namespace

Runner add_chat(CLI::App& root) {
    auto* cmd = root.add_subcommand("chat", "Chat with a model in RWKV's User:/Assistant: format");
    auto o = std::make_shared<ChatOptions>();
    o->rt.add_model_to(*cmd);
    o->rt.add_vocab_to(*cmd);
    o->sampling.add_to(*cmd);
    cmd->add_option("-n,--n-predict", o->max_tokens, "Maximum tokens per reply (-1 = no limit)")
        ->check(CLI::Range(-1, INT_MAX))
        ->capture_default_str();
    cmd->add_flag("--think", o->think, "Think mode: end each prompt with \"Assistant: <think\"");
    cmd->add_flag("--hide-think", o->hide_think, "Do not print the reasoning of think mode");
    cmd->add_option("--system", o->system, "A system prompt, fed first as \"System: TEXT\\n\\n\"");
    cmd->add_option("--state", o->state,
                    "Initial state: a librwkv state file or a state-tuning checkpoint (RWKV-PEFT time_state)")
        ->check(CLI::ExistingFile);
    cmd->add_flag("--no-stats", o->no_stats, "Do not print the speed line after each reply");
    cmd->add_option("--prompt-log", o->prompt_log,
                    "Append every text fed to the model (and its tokens) to FILE, one JSON object a line");
    return [o] {
        install_sigint();
        TokenizerPtr tokenizer = o->rt.load_tokenizer();
        ModelPtr model = o->rt.load_model();
        rwkv_context* c = nullptr;
        rwkv::check(rwkv_context_init(model.get(), nullptr, &c));
        ContextPtr ctx(c);

        chat::Settings settings;
        settings.sampling = o->sampling.params();
        settings.max_tokens = o->max_tokens;
        settings.think = o->think;
        settings.show_think = !o->hide_think;
        settings.stats = !o->no_stats;
        chat::Session session(model.get(), ctx.get(), tokenizer.get(), o->rt.model_name(), settings);

        std::shared_ptr<std::ofstream> log;
        if (!o->prompt_log.empty()) {
            log = std::make_shared<std::ofstream>(o->prompt_log, std::ios::app | std::ios::binary);
            if (!*log) throw std::runtime_error(o->prompt_log + ": cannot open for writing");
            session.on_feed = [log](const std::string& text, const std::vector<int32_t>& tokens) {
                nlohmann::json j = {{"text", text}, {"tokens", tokens}};
                *log << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
                log->flush();
            };
        }
        if (std::string err = utf8_error(o->system, "--system"); !err.empty()) throw std::runtime_error(err);
        session.start(o->state, o->system);

        ChatLoop loop(session, isatty(STDIN_FILENO) != 0, isatty(STDOUT_FILENO) != 0);
        return loop.run();
    };
}

}  // namespace cli
