// Fuzzes the chat's input handling (tools/cli/chat_command.{h,cpp}, chat_session.{h,cpp}, common.cpp). The first
// input byte picks the mode; the rest is the input:
//   bit 0 set   a conversation file for Session::load on the synthetic "tiny" model. Bit 1: append a valid "state"
//               blob (the zero state, which the header must then announce); bit 2: append the CRC-32. A refused
//               file leaves the session as it was.
//   bit 1 set   a slash command (a "/" is put in front when missing) for parse_command: it never throws; a
//               command that changes settings returns settings the library's sampler accepts, and applying it
//               again to them changes nothing (every command is idempotent); a path is never empty or padded.
//   neither     a line of user text: clean_text() never leaves a "\n\n" or outer whitespace; ThinkFilter gives the
//               same reasoning and answer whether the reply arrives whole or in pieces (cut where the input says);
//               parse_id_list() (--tokens) returns ids or throws, nothing else.
// Seeds: chat lines, slash commands, and a conversation saved by Session::save without its blob and CRC
// (fuzz_seeds); dictionary: chat.dict.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chat_command.h"
#include "chat_session.h"
#include "common.h"
#include "fuzz_common.h"
#include "testutil/tiny_model.h"
#include "testutil/writers.h"

namespace {

const rwkv::test::TinyModel* g_tiny = nullptr;
std::string g_zero_state;  // rwkv_state_serialize of a zero state

void check_text(std::string_view text) {
    using cli::chat::detail::is_space;
    const std::string clean = cli::chat::clean_text(text);
    RWKV_FUZZ_CHECK(clean.find("\n\n") == std::string::npos);
    RWKV_FUZZ_CHECK(clean.empty() || (!is_space(clean.front()) && !is_space(clean.back())));
    const std::string turn = cli::chat::turn_text(clean, true, true);
    RWKV_FUZZ_CHECK(turn.compare(0, 8, "\n\nUser: ") == 0 && turn.compare(8, clean.size(), clean) == 0);

    // The reply whole, then in pieces whose lengths come from the text's own bytes.
    for (bool think : {false, true}) {
        auto run = [&](bool pieces) {
            cli::chat::ThinkFilter f(think);
            std::string reasoning, answer;
            int ends = 0;
            auto take = [&](const std::vector<cli::chat::ThinkFilter::Piece>& out) {
                for (const auto& p : out) {
                    if (p.kind == cli::chat::ThinkFilter::Piece::Reasoning) reasoning += p.text;
                    if (p.kind == cli::chat::ThinkFilter::Piece::Answer) answer += p.text;
                    if (p.kind == cli::chat::ThinkFilter::Piece::ReasoningEnd) ends++;
                }
            };
            if (!pieces) {
                take(f.feed(text));
            } else {
                for (size_t at = 0; at < text.size();) {
                    size_t n = 1 + static_cast<uint8_t>(text[at]) % 7;
                    take(f.feed(text.substr(at, std::min(n, text.size() - at))));
                    at += n;
                }
            }
            take(f.finish());
            RWKV_FUZZ_CHECK(ends == (think ? 1 : 0));
            return std::make_pair(reasoning, answer);
        };
        RWKV_FUZZ_CHECK(run(false) == run(true));
    }

    try {
        for (int32_t id : cli::parse_id_list(std::string(text))) RWKV_FUZZ_CHECK(id >= 0);
    } catch (const std::exception&) {
    }
}

std::string settings_text(const cli::chat::Settings& s) {
    return cli::chat::describe_settings(s) + (s.think ? " think" : "") + (s.show_think ? " show" : "") +
           (s.stats ? " stats" : "");
}

void check_command(std::string_view input) {
    using cli::chat::Command;
    std::string line(input);
    if (line.empty() || line[0] != '/') line.insert(0, "/");
    RWKV_FUZZ_CHECK(cli::chat::is_command(line) == (line.compare(0, 2, "//") != 0));
    if (!cli::chat::is_command(line)) {
        RWKV_FUZZ_CHECK(cli::chat::message_of(line) == std::string_view(line).substr(1));
        return;
    }
    const cli::chat::Settings current;
    const Command c = cli::chat::parse_command(line, current);
    switch (c.kind) {
        case Command::Save:
        case Command::Load:
            RWKV_FUZZ_CHECK(!c.path.empty() && c.path.front() != ' ' && c.path.front() != '\t' &&
                            c.path.back() != ' ' && c.path.back() != '\t');
            break;
        case Command::Print:
            RWKV_FUZZ_CHECK(!c.note.empty());
            break;
        case Command::Configure: {
            RWKV_FUZZ_CHECK(c.settings.max_tokens >= -1);
            rwkv_sampler* sampler = nullptr;
            RWKV_FUZZ_CHECK(rwkv_sampler_init(&c.settings.sampling, 65536, &sampler) == RWKV_STATUS_OK);
            rwkv_sampler_free(sampler);
            const Command again = cli::chat::parse_command(line, c.settings);
            RWKV_FUZZ_CHECK(again.kind == Command::Configure);
            RWKV_FUZZ_CHECK(settings_text(again.settings) == settings_text(c.settings));
            break;
        }
        default:
            break;
    }
}

void check_conversation(uint8_t mode, const uint8_t* data, size_t size) {
    static rwkv::test::MemFile file;
    std::string bytes(reinterpret_cast<const char*>(data), size);
    if (mode & 2) bytes += g_zero_state;
    if (mode & 4) {
        uint32_t crc = cli::chat::crc32(bytes.data(), bytes.size());
        for (int i = 0; i < 4; i++) bytes += static_cast<char>(crc >> (8 * i));
    }
    file.write(rwkv::test::Bytes(bytes.begin(), bytes.end()));
    cli::chat::Session session(g_tiny->model(), g_tiny->ctx(), nullptr, "fuzz", cli::chat::Settings{});
    try {
        session.load(file.path());
    } catch (const std::exception& e) {
        RWKV_FUZZ_CHECK(e.what()[0] != '\0');
        RWKV_FUZZ_CHECK(session.transcript().empty() && session.system().empty() && session.undo_depth() == 0);
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    rwkv_state* state = nullptr;
    size_t n = 0;
    try {
        g_tiny = new rwkv::test::TinyModel(1);  // lives as long as the process
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_chat: %s\n", e.what());
        std::exit(1);
    }
    if (rwkv_state_init(g_tiny->model(), &state) || rwkv_state_serialize(state, nullptr, 0, &n)) {
        std::fprintf(stderr, "fuzz_chat: cannot make the zero state: %s\n", rwkv_last_error_message());
        std::exit(1);
    }
    g_zero_state.resize(n);
    rwkv_state_serialize(state, g_zero_state.data(), n, &n);
    rwkv_state_free(state);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    if (data[0] & 1)
        check_conversation(data[0], data + 1, size - 1);
    else if (data[0] & 2)
        check_command(rest);
    else
        check_text(rest);
    return 0;
}
