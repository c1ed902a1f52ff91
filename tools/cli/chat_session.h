// The logic of `rwkv-cli chat`, apart from its terminal I/O: RWKV's chat template, feeding each turn into one
// carried state, snapshots for /undo and /regen, the conversation file of /save and /load, and the filter that
// separates a think-mode reply's reasoning from its answer. See docs/cli.md and rwkv7.md §5.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rwkv/rwkv.hpp"

namespace cli {
// Also in sampling_options.h (this header stays free of the CLI's other headers so that tests can include it).
rwkv_sampler_params chat_sampler_defaults();
using StatePtr = std::unique_ptr<rwkv_state, rwkv::StateDeleter>;
using SamplerPtr = std::unique_ptr<rwkv_sampler, rwkv::SamplerDeleter>;
}  // namespace cli

namespace cli::chat {

// ---- text (inline, so that tests/unit/test_chat.cpp checks it without linking the CLI) -------------------------

namespace detail {
// Python's str.strip() whitespace, ASCII part: space, \t \n \v \f \r and the separators \x1c..\x1f.
inline bool is_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}
inline std::string_view lstrip(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    return s;
}
inline std::string_view strip(std::string_view s) {
    s = lstrip(s);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}
// Length of the longest suffix of `text` that is a proper prefix of `tag`.
inline size_t partial_suffix(std::string_view text, std::string_view tag) {
    for (size_t n = std::min(text.size(), tag.size() - 1); n > 0; n--)
        if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
    return 0;
}
}  // namespace detail

// User and system text cleaned as the RWKV templates want (rwkv7.md §5): "\r\n" -> "\n", every run of two or more
// "\n" -> one "\n" ("\n\n" separates turns), then leading and trailing whitespace removed (Python's str.strip()).
inline std::string clean_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); i++) {
        const char c = text[i];
        if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;  // "\r\n" -> "\n"
        if (c == '\n' && !out.empty() && out.back() == '\n') continue;          // "\n\n+" -> "\n"
        out += c;
    }
    return std::string(detail::strip(out));
}

// The text one turn feeds: ["\n\n" when the previous reply did not end with "\n\n"] + "User: " + message +
// "\n\nAssistant:" [+ " <think" in think mode]. `message` must already be cleaned. No space after the colon.
inline std::string turn_text(const std::string& message, bool think, bool needs_separator) {
    std::string text = needs_separator ? "\n\n" : "";
    text += "User: " + message + "\n\nAssistant:";
    if (think) text += " <think";
    return text;
}

// "System: " + clean(text) + "\n\n".
inline std::string system_text(const std::string& text) {
    return "System: " + clean_text(text) + "\n\n";
}

// Splits a streamed reply into reasoning (think mode: everything before "</think>", without the ">" that
// completes the prompt's "<think") and answer, both with leading whitespace removed; the reasoning's trailing
// whitespace is dropped. The tag may be split across pieces. Without think mode everything is answer.
class ThinkFilter {
  public:
    struct Piece {
        enum Kind { Reasoning, ReasoningEnd, Answer } kind;
        std::string text;
        bool operator==(const Piece&) const = default;
    };
    explicit ThinkFilter(bool think) : phase_(think ? Phase::Start : Phase::Answer) {}

    std::vector<Piece> feed(std::string_view text) {
        static constexpr std::string_view kEnd = "</think>";
        std::vector<Piece> out;
        if (phase_ == Phase::Answer) {
            answer(text, out);
            return out;
        }
        held_ += text;
        if (phase_ == Phase::Start) {
            if (held_.empty()) return out;
            if (held_[0] == '>') held_.erase(0, 1);  // completes the prompt's "<think"
            phase_ = Phase::Reasoning;
        }
        if (size_t at = held_.find(kEnd); at != std::string::npos) {
            const std::string rest = held_.substr(at + kEnd.size());
            std::string_view r(held_.data(), at);
            while (!r.empty() && detail::is_space(r.back())) r.remove_suffix(1);
            reasoning(r, out);
            out.push_back({Piece::ReasoningEnd, ""});
            held_.clear();
            phase_ = Phase::Answer;
            answer(rest, out);
            return out;
        }
        // Hold back a possible start of "</think>" and trailing whitespace (dropped if the tag follows).
        size_t end = held_.size() - detail::partial_suffix(held_, kEnd);
        while (end > 0 && detail::is_space(held_[end - 1])) end--;
        reasoning(std::string_view(held_.data(), end), out);
        held_.erase(0, end);
        return out;
    }

    // End of the reply: closes an unterminated reasoning section (ReasoningEnd).
    std::vector<Piece> finish() {
        std::vector<Piece> out;
        if (phase_ == Phase::Answer) return out;
        std::string_view r = held_;
        while (!r.empty() && detail::is_space(r.back())) r.remove_suffix(1);
        reasoning(r, out);
        out.push_back({Piece::ReasoningEnd, ""});
        held_.clear();
        phase_ = Phase::Answer;
        return out;
    }

  private:
    void reasoning(std::string_view r, std::vector<Piece>& out) {
        if (!reasoning_started_) r = detail::lstrip(r);
        if (r.empty()) return;
        reasoning_started_ = true;
        out.push_back({Piece::Reasoning, std::string(r)});
    }
    void answer(std::string_view text, std::vector<Piece>& out) {
        if (!answer_started_) text = detail::lstrip(text);
        if (text.empty()) return;
        answer_started_ = true;
        out.push_back({Piece::Answer, std::string(text)});
    }

    enum class Phase { Start, Reasoning, Answer } phase_;
    std::string held_;
    bool answer_started_ = false;
    bool reasoning_started_ = false;
};

// ---- session ---------------------------------------------------------------------------------------------------

struct Settings {
    rwkv_sampler_params sampling = chat_sampler_defaults();
    int max_tokens = 4096;   // per reply; -1 = no limit
    bool think = false;      // end the prompt with "Assistant: <think"
    bool show_think = true;  // print the reasoning (dimmed or framed)
    bool stats = true;       // the speed line after each reply
};

struct Turn {
    std::string user;   // the cleaned message
    std::string reply;  // the generated text as decoded (reasoning included), without the final "\n\n"
    bool think = false;
    rwkv_stop_reason stop = RWKV_STOP_STRING;
};

// Everything a conversation file holds, parsed and checked (Session::load).
struct ConversationFile;

class Session {
  public:
    // Borrows the model, context and tokenizer; they must outlive the session.
    Session(const rwkv_model* model, rwkv_context* ctx, const rwkv_tokenizer* tokenizer, std::string model_name,
            const Settings& settings);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Called with every text fed to the model and its tokens (for --prompt-log).
    std::function<void(const std::string& text, const std::vector<int32_t>& tokens)> on_feed;

    // The initial state: FILE (state file or state-tuning checkpoint, may be ""), then "System: ..." when `system`
    // is not empty. /reset comes back here.
    void start(const std::string& state_file, const std::string& system);

    using Stream = std::function<void(std::string_view text)>;
    // One turn: feeds turn_text(message) into the carried state (only the new text) and generates the reply,
    // streaming its text. `message` must be cleaned and not empty. On error the state is restored and the error
    // thrown. `cancel` (may be NULL) stops the reply when it becomes non-zero; the turn is kept.
    rwkv_generate_result send(const std::string& message, const Stream& stream, const volatile int* cancel);
    // Back to the state before the last turn. False when there is no snapshot left.
    bool undo();
    // The last message answered again from the state before it. False when there is nothing to regenerate.
    bool regen(const Stream& stream, const volatile int* cancel, rwkv_generate_result* result);
    // Back to the initial state; the transcript is cleared.
    void reset();

    // Writes the conversation file atomically (temporary file in the same directory, fsync, rename).
    void save(const std::string& path) const;
    // Reads and checks everything first; on any error throws std::runtime_error and leaves the session as it
    // was. Returns warnings (e.g. saved with a model file of another name), possibly empty.
    std::string load(const std::string& path);

    const std::vector<Turn>& transcript() const { return transcript_; }
    const Settings& settings() const { return settings_; }
    // Replaces the settings (the sampling parameters are checked; throws on error, nothing changed).
    void set_settings(const Settings& settings);
    const std::string& system() const { return system_; }
    bool needs_separator() const { return needs_separator_; }
    size_t undo_depth() const { return snapshots_.size(); }
    // How many snapshots are kept for /undo (each is one state: rwkv_model_info.state_bytes). Default 16.
    void set_max_undo(size_t n) { max_undo_ = n; }

  private:
    struct Snapshot {
        StatePtr state;
        bool needs_separator;
    };
    StatePtr new_state() const;
    std::vector<int32_t> encode(const std::string& text) const;
    void commit(ConversationFile&& file);

    const rwkv_model* model_;
    rwkv_context* ctx_;
    const rwkv_tokenizer* tokenizer_;
    std::string model_name_;
    rwkv_model_info info_;
    Settings settings_;
    SamplerPtr sampler_;
    StatePtr state_, initial_;
    bool initial_zero_ = true;  // the initial state is the zero state (nothing to save)
    std::string system_;
    bool needs_separator_ = false;
    std::vector<Turn> transcript_;
    std::deque<Snapshot> snapshots_;  // the state before each of the last turns, oldest first
    size_t max_undo_ = 16;
};

// The conversation file (format in docs/cli.md): magic "RWKVCHAT", version, a JSON header, state blobs, CRC-32.
constexpr char kConversationMagic[8] = {'R', 'W', 'K', 'V', 'C', 'H', 'A', 'T'};
constexpr uint32_t kConversationVersion = 1;

// CRC-32 (IEEE 802.3, as zlib's crc32).
uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);

}  // namespace cli::chat
