// rwkv-cli tokenize, detokenize, generate and chat, end to end (the binary in RWKV_BIN_DIR), plus the chat's text
// logic in process (tools/cli/chat_session.h: template, cleaning, think filter).
//
// Tests marked "real vocabulary" need rwkv_vocab_v20230424.txt, found like tests/unit/test_tokenizer.cpp finds it:
// $RWKV_VOCAB, then the build's share/rwkv/ (tools/setup_vocab.sh puts it there), then ../shared/vocab. Without it
// they skip with a message. Chat and generate with text run on `--synthetic tiny` (random weights, the full 65536
// vocabulary), mostly greedy (--temp 0) so that runs can be compared token for token.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "../../tools/cli/chat_session.h"
#include "testutil/testutil.h"

// A child that exits early (an error test) closes its stdin: writing to it must give EPIPE, not kill the test.
static const bool kSigpipeIgnored = (std::signal(SIGPIPE, SIG_IGN), true);

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Strings = std::vector<std::string>;

constexpr const char* kVocabName = "rwkv_vocab_v20230424.txt";

std::string find_vocab() {
    if (const char* env = std::getenv("RWKV_VOCAB"); env && *env) return fs::is_regular_file(env) ? env : "";
    const fs::path built = (fs::path(RWKV_BIN_DIR) / "../share/rwkv" / kVocabName).lexically_normal();
    if (fs::is_regular_file(built)) return built.string();
    if (const std::string shared = rwkv::test::shared_dir(); !shared.empty()) {
        const std::string path = shared + "/vocab/" + kVocabName;
        if (fs::is_regular_file(path)) return path;
    }
    return "";
}

const std::string& vocab() {
    static const std::string path = find_vocab();
    return path;
}

#define REQUIRE_VOCAB()                                                                                     \
    if (vocab().empty())                                                                                    \
    GTEST_SKIP() << kVocabName << " not found: set RWKV_VOCAB, run tools/setup_vocab.sh (installs it into " \
                 << "build/share/rwkv), or provide ../shared/vocab"

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

size_t count(const std::string& s, const std::string& part) {
    size_t n = 0;
    for (size_t at = s.find(part); at != std::string::npos; at = s.find(part, at + part.size())) n++;
    return n;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---- running rwkv-cli ------------------------------------------------------------------------------------------

// rwkv-cli as a child process, with its stdin/stdout/stderr on pipes or all three on a pseudo-terminal.
class Child {
  public:
    Child(const Strings& args, bool pty, const Strings& env = {}) {
        const std::string bin = std::string(RWKV_BIN_DIR) + "/rwkv-cli";
        std::vector<std::string> argv_s = {bin};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
        std::string slave;
        if (pty) {
            master_ = posix_openpt(O_RDWR | O_NOCTTY);
            if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0) throw std::runtime_error("no pty");
            slave = ptsname(master_);
        } else if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) {
            throw std::runtime_error("pipe failed");
        }
        pid_ = fork();
        if (pid_ == 0) {
            for (const std::string& kv : env) {
                const size_t eq = kv.find('=');
                setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
            }
            if (pty) {
                setsid();
                const int fd = open(slave.c_str(), O_RDWR);  // becomes the controlling terminal
                if (fd < 0) _exit(126);
                ioctl(fd, TIOCSCTTY, 0);
                dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
                if (fd > 2) close(fd);
                close(master_);
            } else {
                dup2(in[0], 0), dup2(out[1], 1), dup2(err[1], 2);
                for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
            }
            std::vector<char*> argv;
            for (std::string& a : argv_s) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(bin.c_str(), argv.data());
            _exit(127);
        }
        if (pty) {
            in_ = out_ = master_;
        } else {
            close(in[0]), close(out[1]), close(err[1]);
            in_ = in[1], out_ = out[0], err_ = err[0];
        }
    }
    ~Child() {
        if (pid_ > 0 && !exited_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        for (int fd : {in_, out_, err_})
            if (fd >= 0 && fd != master_) close(fd);
        if (master_ >= 0) close(master_);
    }

    void write(const std::string& s) {
        size_t done = 0;
        while (done < s.size()) {
            ssize_t n = ::write(in_, s.data() + done, s.size() - done);
            if (n <= 0) return;
            done += size_t(n);
        }
    }
    void close_input() {
        if (in_ >= 0 && in_ != master_) close(in_);
        in_ = in_ == master_ ? in_ : -1;
    }
    void signal(int sig) { kill(pid_, sig); }

    // Reads output until `done()` holds (true) or `timeout` seconds pass (false).
    bool read_until(const std::function<bool()>& done, double timeout = 120) {
        const auto t0 = std::chrono::steady_clock::now();
        while (!done()) {
            const double left = timeout - seconds_since(t0);
            if (left <= 0 || !pump(int(left * 1000) + 1)) return done();
        }
        return true;
    }
    // Output so far: stdout (everything, on a pty) and stderr (pipes only).
    const std::string& out() const { return out_buf_; }
    const std::string& err() const { return err_buf_; }

    // Reads to the end of the output and returns the exit code (128 + signal when killed, -1 on timeout).
    int wait(double timeout = 300) {
        const auto t0 = std::chrono::steady_clock::now();
        close_input();
        read_until([] { return false; }, timeout);
        int status = 0;
        while (waitpid(pid_, &status, WNOHANG) == 0) {
            if (seconds_since(t0) > timeout) {
                kill(pid_, SIGKILL);
                waitpid(pid_, &status, 0);
                exited_ = true;
                return -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

  private:
    // One poll; false when every output is closed or the time ran out.
    bool pump(int timeout_ms) {
        pollfd fds[2];
        int n = 0;
        if (out_open_) fds[n++] = {out_, POLLIN, 0};
        if (err_ >= 0 && err_open_) fds[n++] = {err_, POLLIN, 0};
        if (n == 0) return false;
        const int r = poll(fds, nfds_t(n), timeout_ms);
        if (r <= 0) return false;
        char buf[4096];
        for (int i = 0; i < n; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t got = read(fds[i].fd, buf, sizeof buf);
            const bool is_out = fds[i].fd == out_;
            if (got <= 0) {  // EOF (pipe) or EIO (pty without a process)
                (is_out ? out_open_ : err_open_) = false;
                continue;
            }
            (is_out ? out_buf_ : err_buf_).append(buf, size_t(got));
        }
        return true;
    }

    pid_t pid_ = -1;
    int master_ = -1, in_ = -1, out_ = -1, err_ = -1;
    bool out_open_ = true, err_open_ = true, exited_ = false;
    std::string out_buf_, err_buf_;
};

struct CliResult {
    int code;
    std::string out, err;
};

// Runs rwkv-cli with `input` on a pipe as its stdin.
CliResult run_cli(const Strings& args, const std::string& input = "", const Strings& env = {}) {
    Child c(args, false, env);
    c.write(input);
    const int code = c.wait();
    return {code, c.out(), c.err()};
}

Strings env_vocab() {
    return {"RWKV_VOCAB=" + vocab()};
}

// The chat on the synthetic model, greedy, a few tokens per reply.
Strings chat_args(const Strings& extra = {}, const std::string& max_tokens = "8") {
    Strings a = {"chat", "--synthetic", "tiny", "--temp", "0", "-s", "1", "-n", max_tokens, "-t", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}

std::string lines(const Strings& l) {
    std::string s;
    for (const std::string& x : l) s += x + "\n";
    return s;
}

// The JSON header of a conversation file (magic, u32 version, u64 header length, header, ...).
json conversation_header(const std::string& path) {
    std::vector<uint8_t> b = rwkv::test::read_file(path);
    if (b.size() < 20 || std::string(b.begin(), b.begin() + 8) != "RWKVCHAT") return json();
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = (len << 8) | b[12 + size_t(i)];
    if (20 + len > b.size()) return json();
    return json::parse(b.begin() + 20, b.begin() + 20 + std::ptrdiff_t(len));
}

// (user, reply) of every turn.
std::vector<std::pair<std::string, std::string>> transcript(const std::string& path) {
    std::vector<std::pair<std::string, std::string>> t;
    const json header = conversation_header(path);
    for (const json& turn : header.at("transcript"))
        t.emplace_back(turn.at("user").get<std::string>(), turn.at("reply").get<std::string>());
    return t;
}

std::vector<json> read_jsonl(const std::string& path) {
    std::vector<json> out;
    std::ifstream f(path);
    std::string line;
    while (std::getline(f, line))
        if (!line.empty()) out.push_back(json::parse(line));
    return out;
}

// ---- the chat's text logic, in process -------------------------------------------------------------------------

using cli::chat::ThinkFilter;
using Piece = ThinkFilter::Piece;

TEST(ChatText, CleanTextFollowsTheTemplatesRule) {
    using cli::chat::clean_text;
    EXPECT_EQ(clean_text("  hello  "), "hello");
    EXPECT_EQ(clean_text("a\n\nb"), "a\nb");
    EXPECT_EQ(clean_text("a\r\n\r\n\r\nb"), "a\nb");
    EXPECT_EQ(clean_text("a\n\n\n\nb\nc"), "a\nb\nc");
    EXPECT_EQ(clean_text("a\rb"), "a\rb");  // a lone \r is kept, as in the reference
    EXPECT_EQ(clean_text("\n\n \t\n"), "");
    EXPECT_EQ(clean_text("é\n\nü "), "é\nü");
}

TEST(ChatText, TurnTextHasExactlyTheTemplatesBytes) {
    using cli::chat::turn_text;
    EXPECT_EQ(turn_text("hi", false, false), "User: hi\n\nAssistant:");
    EXPECT_EQ(turn_text("hi", true, false), "User: hi\n\nAssistant: <think");
    EXPECT_EQ(turn_text("hi", false, true), "\n\nUser: hi\n\nAssistant:");
    EXPECT_EQ(cli::chat::system_text(" Be brief.\n\n\nReally. "), "System: Be brief.\nReally.\n\n");
}

struct Split {
    std::string reasoning, answer;
    int ends = 0;
};

Split run_filter(bool think, const Strings& pieces) {
    ThinkFilter f(think);
    Split s;
    auto take = [&](const std::vector<Piece>& ps) {
        for (const Piece& p : ps) {
            if (p.kind == Piece::Reasoning) {
                EXPECT_EQ(s.ends, 0) << "reasoning after its end";
                s.reasoning += p.text;
            } else if (p.kind == Piece::Answer) {
                s.answer += p.text;
            } else {
                s.ends++;
            }
        }
    };
    for (const std::string& p : pieces) take(f.feed(p));
    take(f.finish());
    return s;
}

TEST(ChatText, ThinkFilterSeparatesReasoningFromAnswerWhereverThePiecesSplit) {
    const std::string reply = ">\nLet me see: 1 < 2 and </b> is no tag.\n</think>\n\nThe answer is 3.";
    const Split whole = run_filter(true, {reply});
    EXPECT_EQ(whole.reasoning, "Let me see: 1 < 2 and </b> is no tag.");
    EXPECT_EQ(whole.answer, "The answer is 3.");
    EXPECT_EQ(whole.ends, 1);
    // Every split into two and three pieces, and one byte at a time.
    for (size_t i = 0; i <= reply.size(); i++) {
        EXPECT_EQ(run_filter(true, {reply.substr(0, i), reply.substr(i)}).reasoning, whole.reasoning) << i;
        EXPECT_EQ(run_filter(true, {reply.substr(0, i), reply.substr(i)}).answer, whole.answer) << i;
        for (size_t j = i; j <= reply.size(); j += 3) {
            Split s = run_filter(true, {reply.substr(0, i), reply.substr(i, j - i), reply.substr(j)});
            EXPECT_EQ(s.reasoning, whole.reasoning) << i << " " << j;
            EXPECT_EQ(s.answer, whole.answer) << i << " " << j;
            EXPECT_EQ(s.ends, 1);
        }
    }
    Strings bytes;
    for (char c : reply) bytes.emplace_back(1, c);
    EXPECT_EQ(run_filter(true, bytes).reasoning, whole.reasoning);
    EXPECT_EQ(run_filter(true, bytes).answer, whole.answer);
}

TEST(ChatText, ThinkFilterEdgeCases) {
    // Unterminated reasoning (token limit, Ctrl-C) is closed by finish().
    Split s = run_filter(true, {">thinking", " more </thi"});
    EXPECT_EQ(s.reasoning, "thinking more </thi");
    EXPECT_EQ(s.ends, 1);
    EXPECT_EQ(s.answer, "");
    // Empty reasoning ("fake think").
    s = run_filter(true, {"></think> Hi"});
    EXPECT_EQ(s.reasoning, "");
    EXPECT_EQ(s.answer, "Hi");
    // Without think mode everything is answer, even a "</think>", and the leading space goes.
    s = run_filter(false, {" Hello", " </think> world"});
    EXPECT_EQ(s.answer, "Hello </think> world");
    EXPECT_EQ(s.ends, 0);
}

// ---- tokenize / detokenize -------------------------------------------------------------------------------------

TEST(TextCli, TokenizeAndDetokenizeTheSpecVectors) {  // real vocabulary
    REQUIRE_VOCAB();
    const std::string dir = rwkv::test::temp_dir();
    const std::string text = "User: hi\n\nAssistant:";
    rwkv::test::write_file(dir + "/p.txt", std::vector<uint8_t>(text.begin(), text.end()));
    CliResult r = run_cli({"tokenize", "--vocab", vocab(), "-f", dir + "/p.txt"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "[24281,59,4571,261,5585,41693,59]\n");
    r = run_cli({"tokenize", "--text", "Assistant: <think"}, "", env_vocab());  // found through $RWKV_VOCAB
    EXPECT_EQ(r.out, "[5585,41693,59,295,35762]\n") << r.err;
    r = run_cli({"detokenize", "--ids", "24281,59,4571,261,5585,41693,59", "--raw"}, "", env_vocab());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, text);
    r = run_cli({"detokenize", "--ids", "3319, 153,129"}, "", env_vocab());  // one character split over 3 tokens
    EXPECT_EQ(r.out, "😀\n");
    r = run_cli({"tokenize", "--text", ""}, "", env_vocab());
    EXPECT_EQ(r.out, "[]\n");
    r = run_cli({"detokenize", "--ids", "65536"}, "", env_vocab());
    EXPECT_EQ(r.code, 1);
}

TEST(TextCli, MissingOrCorruptVocabularyIsOneClearMessage) {
    const std::string dir = rwkv::test::temp_dir();
    const std::string bad = "1 '\\x00' 1\n2 '\\x01 1\n";  // line 2: unterminated literal
    rwkv::test::write_file(dir + "/bad_vocab.txt", std::vector<uint8_t>(bad.begin(), bad.end()));
    struct Case {
        Strings args, env;
        std::string phrase;
    };
    const std::vector<Case> cases = {
        {{"tokenize", "--vocab", dir + "/bad_vocab.txt", "--text", "x"}, {}, "bad_vocab.txt:2"},
        {{"tokenize", "--vocab", dir + "/none.txt", "--text", "x"}, {}, "none.txt"},
        {{"detokenize", "--ids", "1"}, {"RWKV_VOCAB=" + dir + "/env_none.txt"}, "env_none.txt"},
        {chat_args({"--vocab", dir + "/bad_vocab.txt"}), {}, "bad_vocab.txt:2"},
        {chat_args(), {"RWKV_VOCAB=" + dir + "/env_none.txt"}, "env_none.txt"},
        {{"generate", "--synthetic", "tiny", "-p", "hi", "--vocab", dir + "/bad_vocab.txt"}, {}, "bad_vocab.txt:2"},
    };
    for (const Case& c : cases) {
        CliResult r = run_cli(c.args, "hi\n", c.env);
        const std::string all = r.out + r.err;  // the error is logged (spdlog)
        EXPECT_EQ(r.code, 1) << c.args[0] << "\n" << all;
        EXPECT_TRUE(contains(all, c.phrase)) << c.args[0] << "\n" << all;
        EXPECT_FALSE(contains(all, "terminate called")) << all;
    }
}

// ---- generate --------------------------------------------------------------------------------------------------

TEST(GenerateCli, IdsWithTheFixtureModelAreGreedyAndReproducible) {
    const std::string model = rwkv::test::fixture("tiny-bf16.pth");
    const Strings args = {"generate",
                          "-m",
                          model,
                          "--tokens",
                          "1,2,3",
                          "-n",
                          "6",
                          "--ids",
                          "--temp",
                          "0",
                          "--presence-penalty",
                          "0",
                          "--frequency-penalty",
                          "0",
                          "--ignore-eos",
                          "--no-stats"};
    CliResult r = run_cli(args);
    ASSERT_EQ(r.code, 0) << r.err;
    json ids = json::parse(r.out);
    ASSERT_EQ(ids.size(), 6u) << r.out;
    for (const json& id : ids) EXPECT_LT(id.get<int>(), 256);
    EXPECT_EQ(run_cli(args).out, r.out);
    // Greedy: the first token is the argmax of the logits after the prompt.
    const std::string npy = rwkv::test::temp_path("gen_logits.npy");
    ASSERT_EQ(run_cli({"logits", "-m", model, "--tokens", "1,2,3", "--out", npy}).code, 0);
    rwkv::test::NpyArray logits = rwkv::test::read_npy(npy);
    const float* last = logits.data.data() + 2 * 256;
    EXPECT_EQ(ids[0].get<int>(), int(std::max_element(last, last + 256) - last));
    // A seed gives the same sample; the speed line goes to stderr.
    const Strings sampled = {"generate", "-m", model, "--tokens", "1,2,3", "-n", "12", "--ids", "-s", "7"};
    CliResult a = run_cli(sampled), b = run_cli(sampled);
    EXPECT_EQ(a.out, b.out);
    EXPECT_TRUE(contains(a.err, "[prompt: ") && contains(a.err, " tok/s | generation: ")) << a.err;
}

TEST(GenerateCli, TextFromTheSyntheticModel) {  // real vocabulary
    REQUIRE_VOCAB();
    CliResult r =
        run_cli({"generate", "--synthetic", "tiny", "-p", "The Eiffel tower is in", "-n", "5", "-s", "3", "-t", "1"},
                "", env_vocab());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(r.out.empty());
    EXPECT_TRUE(contains(r.err, "[prompt: ")) << r.err;
    // The same run with --ids gives ids that decode to the same text.
    CliResult ids = run_cli(
        {"generate", "--synthetic", "tiny", "-p", "The Eiffel tower is in", "-n", "5", "-s", "3", "-t", "1", "--ids"},
        "", env_vocab());
    ASSERT_EQ(ids.code, 0) << ids.err;
    std::string list = ids.out.substr(1, ids.out.find(']') - 1);
    CliResult text = run_cli({"detokenize", "--ids", list}, "", env_vocab());
    EXPECT_EQ(text.out, r.out) << ids.out;
}

TEST(GenerateCli, APromptWithInvalidUtf8IsRefusedWithTheOffset) {
    const std::string dir = rwkv::test::temp_dir();
    rwkv::test::write_file(dir + "/bad.txt", {'a', 'b', 0xC3, 0x28, 'x'});
    CliResult r = run_cli({"generate", "--synthetic", "tiny", "-f", dir + "/bad.txt"});
    const std::string all = r.out + r.err;  // the error is logged (spdlog)
    EXPECT_EQ(r.code, 1) << all;
    EXPECT_TRUE(contains(all, "not valid UTF-8") && contains(all, "byte offset 2")) << all;
}

TEST(GenerateCli, UsageErrorsExitWithTwo) {
    const std::string m = rwkv::test::fixture("tiny-bf16.pth");
    const std::vector<Strings> cases = {
        {"generate", "-m", m, "--tokens", "1", "--temp", "-1"},
        {"generate", "-m", m, "--tokens", "1", "--temp", "nan"},
        {"generate", "-m", m, "--tokens", "1", "--top-p", "1.5"},
        {"generate", "-m", m, "--tokens", "1", "--top-k", "-1"},
        {"generate", "-m", m, "--tokens", "1", "--top-k", "2.5"},
        {"generate", "-m", m, "--tokens", "1", "--min-p", "2"},
        {"generate", "-m", m, "--tokens", "1", "--penalty-decay", "1.01"},
        {"generate", "-m", m, "--tokens", "1", "--presence-penalty", "inf"},
        {"generate", "-m", m, "--tokens", "1", "-n", "-2"},
        {"generate", "-m", m, "--tokens", "1", "-t", "-1"},
        {"generate", "-m", m, "--tokens", "1", "--backend", "tpu"},
        {"generate", "-m", m, "--tokens", "1", "--bogus"},
        {"generate", "-m", m},                                    // no prompt
        {"generate", "-m", m, "--tokens", "1", "-p", "x"},        // two prompts
        {"generate", "--tokens", "1"},                            // no model
        {"generate", "-m", m, "--synthetic", "tiny", "-p", "x"},  // two models
        {"generate", "--synthetic", "huge", "-p", "x"},           // unknown preset
        {"tokenize"},                                             // no input
        {"detokenize", "--ids", "1", "-f", m},                    // two inputs
        {"chat", "--synthetic", "tiny", "--temp", "-0.5"},
        {"chat", "--synthetic", "tiny", "--top-p", "2"},
        {"chat", "--synthetic", "tiny", "-n", "-5"},
        {"chat", "--synthetic", "tiny", "--state", "/nonexistent/state"},
        {"chat", "--synthetic", "tiny", "--frobnicate"},
        {"chat"},
    };
    for (const Strings& args : cases) {
        CliResult r = run_cli(args);
        std::string cmd;
        for (const std::string& a : args) cmd += a + " ";
        EXPECT_EQ(r.code, 2) << cmd << "\n" << r.out << r.err;
        EXPECT_FALSE(r.err.empty()) << cmd;
    }
}

// ---- chat through a pipe ---------------------------------------------------------------------------------------

TEST(ChatCli, MultiTurnThroughAPipeFeedsOnlyTheNewText) {  // real vocabulary
    REQUIRE_VOCAB();
    const std::string log = rwkv::test::temp_path("multi.jsonl");
    const std::string saved = rwkv::test::temp_path("multi.chat");
    CliResult r =
        run_cli(chat_args({"--system", "You are\n\n helpful.  ", "--prompt-log", log}),
                lines({"hi", "  how\\", "\\", "are you?  \r", "", "tell me more", "/save " + saved}), env_vocab());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(count(r.err, "[prompt: "), 3u) << r.err;  // one speed line per reply; the blank line is skipped
    EXPECT_FALSE(contains(r.out, "> ")) << "no prompt decoration when stdin is not a terminal";

    const std::vector<json> fed = read_jsonl(log);
    ASSERT_EQ(fed.size(), 4u);
    EXPECT_EQ(fed[0]["text"], "System: You are\n helpful.\n\n");  // only newline runs collapse
    EXPECT_EQ(fed[1]["text"], "User: hi\n\nAssistant:");
    EXPECT_EQ(fed[1]["tokens"], json({24281, 59, 4571, 261, 5585, 41693, 59}));
    // Later turns feed only their own text: "\n\n" first when the previous reply did not end with it.
    const json header = conversation_header(saved);
    const json& turns = header.at("transcript");
    ASSERT_EQ(turns.size(), 3u);
    const Strings users = {"hi", "how\nare you?", "tell me more"};
    for (size_t i = 0; i < 3; i++) {
        EXPECT_EQ(turns[i]["user"], users[i]);
        const bool sep = i > 0 && turns[i - 1]["stop"] != "string";
        EXPECT_EQ(fed[i + 1]["text"], cli::chat::turn_text(users[i], false, sep)) << i;
    }
    // The replies are on stdout, each followed by a newline (leading whitespace removed).
    for (const json& t : turns) {
        std::string reply = t["reply"];
        reply.erase(0, reply.find_first_not_of(" \t\n"));
        EXPECT_TRUE(contains(r.out, reply + "\n")) << reply;
    }
}

TEST(ChatCli, UndoAndRegenComeBackToTheStateBeforeTheTurn) {  // real vocabulary
    REQUIRE_VOCAB();
    const std::string dir = rwkv::test::temp_dir();
    // Reference: two turns.
    CliResult a = run_cli(chat_args(), lines({"hi", "what now", "/save " + dir + "/ref.chat"}), env_vocab());
    ASSERT_EQ(a.code, 0) << a.err;
    const auto ref = transcript(dir + "/ref.chat");
    ASSERT_EQ(ref.size(), 2u);
    // A detour undone, then the same second turn: the same reply, token for token.
    CliResult b = run_cli(
        chat_args(), lines({"hi", "something else", "/undo", "what now", "/save " + dir + "/undo.chat"}), env_vocab());
    ASSERT_EQ(b.code, 0) << b.err;
    EXPECT_TRUE(contains(b.err, "[undone")) << b.err;
    EXPECT_EQ(transcript(dir + "/undo.chat"), ref);
    // /regen answers the last message again from the state before it (greedy: the same reply).
    CliResult c =
        run_cli(chat_args(), lines({"hi", "what now", "/regen", "/save " + dir + "/regen.chat"}), env_vocab());
    ASSERT_EQ(c.code, 0) << c.err;
    EXPECT_EQ(count(c.err, "[prompt: "), 3u) << c.err;
    EXPECT_EQ(transcript(dir + "/regen.chat"), ref);
    // Nothing to undo or regenerate at the start; /reset empties the conversation.
    CliResult d =
        run_cli(chat_args(),
                lines({"/undo", "/regen", "hi", "/reset", "/undo", "hi", "what now", "/save " + dir + "/reset.chat"}),
                env_vocab());
    ASSERT_EQ(d.code, 0) << d.err;
    EXPECT_EQ(count(d.err, "nothing to undo"), 2u) << d.err;
    EXPECT_TRUE(contains(d.err, "nothing to regenerate")) << d.err;
    EXPECT_EQ(transcript(dir + "/reset.chat"), ref);
}

TEST(ChatCli, SaveAndLoadContinueExactlyAsIfNeverStopped) {  // real vocabulary
    REQUIRE_VOCAB();
    const std::string dir = rwkv::test::temp_dir();
    const Strings extra = {"--system", "Be brief."};
    CliResult whole =
        run_cli(chat_args(extra), lines({"hi", "second", "third", "/save " + dir + "/whole.chat"}), env_vocab());
    ASSERT_EQ(whole.code, 0) << whole.err;
    CliResult first = run_cli(chat_args(extra), lines({"hi", "/save " + dir + "/half.chat"}), env_vocab());
    ASSERT_EQ(first.code, 0) << first.err;
    EXPECT_TRUE(contains(first.err, "[saved ")) << first.err;
    EXPECT_FALSE(fs::exists(dir + "/half.chat.tmp")) << "no temporary left";
    // Another process, other flags (the file's settings win), continues the conversation.
    CliResult rest =
        run_cli({"chat", "--synthetic", "tiny", "-t", "1"},
                lines({"/load " + dir + "/half.chat", "second", "third", "/save " + dir + "/rest.chat"}), env_vocab());
    ASSERT_EQ(rest.code, 0) << rest.err;
    EXPECT_TRUE(contains(rest.err, "[loaded ")) << rest.err;
    EXPECT_EQ(transcript(dir + "/rest.chat"), transcript(dir + "/whole.chat"));
    EXPECT_EQ(whole.out, first.out + rest.out);
    // Same states, same snapshot, same settings: the same bytes.
    EXPECT_EQ(rwkv::test::read_file(dir + "/rest.chat"), rwkv::test::read_file(dir + "/whole.chat"));
    // The snapshot travels too: /undo after /load, then /reset back to the system prompt.
    CliResult undo = run_cli({"chat", "--synthetic", "tiny"},
                             lines({"/load " + dir + "/whole.chat", "/undo", "third", "/reset", "hi", "second", "third",
                                    "/save " + dir + "/again.chat"}),
                             env_vocab());
    ASSERT_EQ(undo.code, 0) << undo.err;
    EXPECT_EQ(transcript(dir + "/again.chat"), transcript(dir + "/whole.chat"));
}

TEST(ChatCli, LoadRefusesBadFilesAndLeavesTheSessionUntouched) {  // real vocabulary
    REQUIRE_VOCAB();
    const std::string dir = rwkv::test::temp_dir();
    ASSERT_EQ(run_cli(chat_args(), lines({"hi", "/save " + dir + "/good.chat"}), env_vocab()).code, 0);
    const std::vector<uint8_t> good = rwkv::test::read_file(dir + "/good.chat");
    ASSERT_GT(good.size(), 1000u);
    rwkv::test::write_file(dir + "/truncated.chat", std::vector<uint8_t>(good.begin(), good.end() - 1000));
    rwkv::test::write_file(dir + "/short.chat", std::vector<uint8_t>(good.begin(), good.begin() + 30));
    std::vector<uint8_t> flipped = good;
    flipped[flipped.size() - 500] ^= 0x40;
    rwkv::test::write_file(dir + "/flipped.chat", flipped);
    rwkv::test::write_file(dir + "/garbage.chat", {'h', 'e', 'l', 'l', 'o'});
    // A conversation of another model: the V=256 fixture.
    CliResult other = run_cli({"chat", "-m", rwkv::test::fixture("tiny-bf16.pth")},
                              lines({"/save " + dir + "/other.chat"}), env_vocab());
    ASSERT_EQ(other.code, 0) << other.err;

    CliResult ref = run_cli(chat_args(), lines({"hi", "next", "/save " + dir + "/ref.chat"}), env_vocab());
    ASSERT_EQ(ref.code, 0) << ref.err;
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"truncated.chat", "truncated"}, {"short.chat", "truncated"},
        {"flipped.chat", "checksum"},    {"garbage.chat", "not a conversation file"},
        {"other.chat", "another model"}, {"missing.chat", "cannot open"},
    };
    for (const auto& [file, phrase] : cases) {
        CliResult r =
            run_cli(chat_args(), lines({"hi", "/load " + dir + "/" + file, "next", "/save " + dir + "/after.chat"}),
                    env_vocab());
        ASSERT_EQ(r.code, 0) << file << "\n" << r.err;
        EXPECT_TRUE(contains(r.err, "refused") && contains(r.err, phrase)) << file << "\n" << r.err;
        EXPECT_EQ(r.out, ref.out) << file;
        EXPECT_EQ(rwkv::test::read_file(dir + "/after.chat"), rwkv::test::read_file(dir + "/ref.chat")) << file;
    }
}

TEST(ChatCli, ThinkModePromptBytesAndDisplay) {  // real vocabulary
    REQUIRE_VOCAB();
    const std::string dir = rwkv::test::temp_dir();
    CliResult r = run_cli(chat_args({"--think", "--prompt-log", dir + "/think.jsonl"}),
                          lines({"hi", "/think off", "plain", "/think on", "again", "/save " + dir + "/think.chat"}),
                          env_vocab());
    ASSERT_EQ(r.code, 0) << r.err;
    const std::vector<json> fed = read_jsonl(dir + "/think.jsonl");
    ASSERT_EQ(fed.size(), 3u);
    EXPECT_EQ(fed[0]["text"], "User: hi\n\nAssistant: <think");
    // rwkv7.md §4: "Assistant: <think" is 5585, 41693, 59, 295 ' <', 35762 'think'.
    EXPECT_EQ(fed[0]["tokens"], json({24281, 59, 4571, 261, 5585, 41693, 59, 295, 35762}));
    const json turns = conversation_header(dir + "/think.chat").at("transcript");
    const bool sep1 = turns[0]["stop"] != "string", sep2 = turns[1]["stop"] != "string";
    EXPECT_EQ(fed[1]["text"], cli::chat::turn_text("plain", false, sep1));
    EXPECT_EQ(fed[2]["text"], cli::chat::turn_text("again", true, sep2));
    // Not a terminal: the reasoning is framed by <think> and </think> lines (the random model never closes it).
    EXPECT_EQ(count(r.out, "<think>\n"), 2u) << r.out;
    EXPECT_EQ(count(r.out, "\n</think>\n"), 2u) << r.out;
    // Hidden reasoning is not printed at all.
    CliResult hidden = run_cli(chat_args({"--think", "--hide-think"}), lines({"hi"}), env_vocab());
    ASSERT_EQ(hidden.code, 0) << hidden.err;
    EXPECT_FALSE(contains(hidden.out, "<think>")) << hidden.out;
    CliResult shown_then_hidden = run_cli(chat_args({"--think"}), lines({"/think hide", "hi"}), env_vocab());
    EXPECT_FALSE(contains(shown_then_hidden.out, "<think>")) << shown_then_hidden.out;
}

TEST(ChatCli, BadMessagesAndUnknownCommandsKeepTheSession) {  // real vocabulary
    REQUIRE_VOCAB();
    CliResult r = run_cli(chat_args(),
                          lines({"hi", "ok \xE2\x82", "abc\xFF", "/frobnicate", "/set temp -1", "/set bogus 1",
                                 "/think maybe", "/save", "still here", "/quit", "never sent"}),
                          env_vocab());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "byte offset 3")) << r.err;
    EXPECT_TRUE(contains(r.err, "unknown command '/frobnicate'")) << r.err;
    EXPECT_TRUE(contains(r.err, "/help")) << "the unknown command prints the help\n" << r.err;
    EXPECT_TRUE(contains(r.err, "temp must be 0 or a number >= 3e-39")) << r.err;
    EXPECT_TRUE(contains(r.err, "unknown setting 'bogus'")) << r.err;
    EXPECT_TRUE(contains(r.err, "usage: /think")) << r.err;
    EXPECT_TRUE(contains(r.err, "usage: /save FILE")) << r.err;
    EXPECT_EQ(count(r.err, "[prompt: "), 2u) << "two replies, nothing after /quit\n" << r.err;
    // /set changes a setting, /stats off drops the speed line, // escapes a leading slash.
    const std::string log = rwkv::test::temp_path("slash.jsonl");
    CliResult s =
        run_cli(chat_args({"--prompt-log", log}), lines({"/set n 3", "/stats off", "//path", "/set"}), env_vocab());
    ASSERT_EQ(s.code, 0) << s.err;
    EXPECT_FALSE(contains(s.err, "[prompt: ")) << s.err;
    EXPECT_TRUE(contains(s.err, "| n 3]")) << s.err;
    ASSERT_EQ(read_jsonl(log).size(), 1u);
    EXPECT_EQ(read_jsonl(log)[0]["text"], "User: /path\n\nAssistant:");
}

TEST(ChatCli, CtrlCStopsTheReplyAndKeepsTheSessionThroughAPipe) {  // real vocabulary
    REQUIRE_VOCAB();
    const std::string saved = rwkv::test::temp_path("sigint.chat");
    Child c(chat_args({}, "-1"), false, env_vocab());
    c.write("hi\n");
    ASSERT_TRUE(c.read_until([&] { return c.out().size() >= 40; })) << c.err();
    ASSERT_FALSE(contains(c.err(), "[prompt: ")) << "the reply ended before the signal; pick a longer one";
    c.signal(SIGINT);
    ASSERT_TRUE(c.read_until([&] { return contains(c.err(), "[stopped]"); }, 60)) << c.err();
    c.write("/set n 4\nnext\n/save " + saved + "\n/quit\n");
    ASSERT_EQ(c.wait(), 0) << c.err();
    EXPECT_EQ(count(c.err(), "[prompt: "), 2u) << c.err();
    const json turns = conversation_header(saved).at("transcript");
    ASSERT_EQ(turns.size(), 2u);
    EXPECT_EQ(turns[0]["stop"], "cancelled");
}

// ---- chat through a pseudo-terminal ----------------------------------------------------------------------------

TEST(ChatCli, InteractiveSessionThroughAPseudoTerminal) {  // real vocabulary
    REQUIRE_VOCAB();
    Child c(chat_args({}, "6"), true, env_vocab());
    size_t seen = 0;
    // Waits for the next prompt after what was seen so far.
    auto next_prompt = [&](const std::string& prompt) {
        const bool ok = c.read_until([&] { return c.out().find(prompt, seen) != std::string::npos; }, 120);
        if (ok) seen = c.out().find(prompt, seen) + prompt.size();
        return ok;
    };
    ASSERT_TRUE(next_prompt("> ")) << c.out();
    EXPECT_TRUE(contains(c.out(), "/help")) << "a terminal gets a greeting";
    c.write("hi\n");
    ASSERT_TRUE(next_prompt("> ")) << c.out();
    EXPECT_TRUE(contains(c.out(), "[prompt: ")) << c.out();
    // Think mode on a terminal: the reasoning is dimmed.
    c.write("/think on\n");
    ASSERT_TRUE(next_prompt("think> ")) << c.out();
    c.write("why\n");
    ASSERT_TRUE(next_prompt("think> ")) << c.out();
    EXPECT_TRUE(contains(c.out(), "\x1b[2m")) << c.out();
    EXPECT_TRUE(contains(c.out(), "\x1b[0m")) << c.out();
    // Ctrl-C (the terminal's interrupt character) during a long reply stops it and keeps the session.
    c.write("/think off\n");
    ASSERT_TRUE(next_prompt("> "));
    c.write("/set n -1\n");
    ASSERT_TRUE(next_prompt("> "));
    c.write("hi\n");
    const size_t before = c.out().size();
    ASSERT_TRUE(c.read_until([&] { return c.out().size() >= before + 60; })) << c.out();
    c.write("\x03");
    ASSERT_TRUE(c.read_until([&] { return contains(c.out().substr(before), "[stopped]"); }, 60)) << c.out();
    ASSERT_TRUE(next_prompt("> ")) << c.out();
    c.write("/set n 3\n");
    ASSERT_TRUE(next_prompt("> "));
    c.write("still there?\n");
    ASSERT_TRUE(next_prompt("> ")) << c.out();
    EXPECT_EQ(count(c.out(), "[prompt: "), 4u) << c.out();
    // Ctrl-C at the prompt leaves with 130, like llama.cpp.
    c.write("\x03");
    EXPECT_EQ(c.wait(60), 130) << c.out();
}

TEST(ChatCli, EndOfInputOnATerminalLeavesCleanly) {  // real vocabulary
    REQUIRE_VOCAB();
    for (const char* quit : {"/quit\n", "\x04"}) {  // the command, or Ctrl-D at the start of a line
        Child c(chat_args(), true, env_vocab());
        ASSERT_TRUE(c.read_until([&] { return contains(c.out(), "> "); })) << c.out();
        c.write(quit);
        EXPECT_EQ(c.wait(60), 0) << c.out();
    }
}

}  // namespace
