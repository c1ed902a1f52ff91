// The chat's logic in process (tools/cli/chat_command.h, chat_session.h), on the synthetic tiny model:
// - the slash-command parser: every command, its usage errors, and the promise the terminal loop relies on
//   (settings a command returns are accepted by the library's sampler, for every value the parser lets through);
// - conversation files whose header numbers are of the wrong kind or out of range: refused by name, the session
//   unchanged (nlohmann's get<T>() would cast them, undefined behaviour for out-of-range values).
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chat_command.h"
#include "chat_session.h"
#include "rwkv/rwkv.h"
#include "testutil/testutil.h"
#include "testutil/tiny_model.h"

namespace {

using cli::chat::Command;
using cli::chat::parse_command;
using cli::chat::Settings;

bool sampler_accepts(const rwkv_sampler_params& p) {
    rwkv_sampler* s = nullptr;
    const rwkv_status st = rwkv_sampler_init(&p, 65536, &s);
    rwkv_sampler_free(s);
    return st == RWKV_STATUS_OK;
}

TEST(ChatCommand, CommandLinesAndMessages) {
    EXPECT_TRUE(cli::chat::is_command("/help"));
    EXPECT_TRUE(cli::chat::is_command("/"));
    EXPECT_FALSE(cli::chat::is_command("//path"));
    EXPECT_FALSE(cli::chat::is_command(""));
    EXPECT_FALSE(cli::chat::is_command(" /help"));
    EXPECT_EQ(cli::chat::message_of("//path"), "/path");
    EXPECT_EQ(cli::chat::message_of("hello"), "hello");
    EXPECT_EQ(cli::chat::message_of("/"), "/");
}

TEST(ChatCommand, EachCommandAndItsUsage) {
    const Settings s;
    EXPECT_EQ(parse_command("/quit", s).kind, Command::Quit);
    EXPECT_EQ(parse_command("/exit now", s).kind, Command::Quit);
    EXPECT_EQ(parse_command("/help", s).kind, Command::Help);
    EXPECT_EQ(parse_command("/help", s).note, "");
    EXPECT_EQ(parse_command("/reset", s).kind, Command::Reset);
    EXPECT_EQ(parse_command("/undo", s).kind, Command::Undo);
    EXPECT_EQ(parse_command("/regen", s).kind, Command::Regen);

    Command c = parse_command("/save \t my chat.rwkvchat  ", s);
    EXPECT_EQ(c.kind, Command::Save);
    EXPECT_EQ(c.path, "my chat.rwkvchat");
    c = parse_command("/load x", s);
    EXPECT_EQ(c.kind, Command::Load);
    EXPECT_EQ(c.path, "x");
    for (const char* line : {"/save", "/save   ", "/load\t"}) {
        c = parse_command(line, s);
        EXPECT_EQ(c.kind, Command::Print) << line;
        EXPECT_EQ(c.note.rfind("usage: /", 0), 0u) << line << ": " << c.note;
        EXPECT_NE(c.note.find("FILE"), std::string::npos) << c.note;
    }

    c = parse_command("/frobnicate x", s);
    EXPECT_EQ(c.kind, Command::Help);
    EXPECT_EQ(c.note, "unknown command '/frobnicate'");
    c = parse_command("/", s);
    EXPECT_EQ(c.kind, Command::Help);
    EXPECT_EQ(c.note, "unknown command '/'");
    EXPECT_EQ(parse_command("/Quit", s).kind, Command::Help) << "commands are case-sensitive";
}

TEST(ChatCommand, ThinkAndStatsChangeOnlyTheirSetting) {
    Settings s;
    s.think = false;
    s.show_think = true;
    s.stats = true;
    Command c = parse_command("/think on", s);
    ASSERT_EQ(c.kind, Command::Configure);
    EXPECT_TRUE(c.settings.think);
    EXPECT_TRUE(c.settings.show_think);
    EXPECT_EQ(c.note, "[think on, reasoning shown]");
    c = parse_command("/think hide", c.settings);
    ASSERT_EQ(c.kind, Command::Configure);
    EXPECT_TRUE(c.settings.think);
    EXPECT_FALSE(c.settings.show_think);
    EXPECT_EQ(c.note, "[think on, reasoning hidden]");
    c = parse_command("/stats off", s);
    ASSERT_EQ(c.kind, Command::Configure);
    EXPECT_FALSE(c.settings.stats);
    EXPECT_EQ(c.note, "");
    EXPECT_EQ(c.settings.think, s.think);
    for (const char* line : {"/think", "/think maybe", "/think ON", "/stats", "/stats yes"}) {
        c = parse_command(line, s);
        EXPECT_EQ(c.kind, Command::Print) << line;
        EXPECT_EQ(c.note.rfind("usage: ", 0), 0u) << line << ": " << c.note;
    }
}

TEST(ChatCommand, SetShowsChangesOrExplains) {
    Settings s;
    s.sampling.temperature = 1.0f;
    s.max_tokens = 4096;
    Command c = parse_command("/set", s);
    EXPECT_EQ(c.kind, Command::Print);
    EXPECT_EQ(c.note, cli::chat::describe_settings(s));
    EXPECT_NE(c.note.find("temp 1 |"), std::string::npos) << c.note;
    EXPECT_NE(c.note.find("| n 4096]"), std::string::npos) << c.note;

    c = parse_command("/set temp 0.7", s);
    ASSERT_EQ(c.kind, Command::Configure);
    EXPECT_EQ(c.settings.sampling.temperature, 0.7f);
    EXPECT_EQ(c.note, cli::chat::describe_settings(c.settings));
    EXPECT_EQ(s.sampling.temperature, 1.0f) << "parsing changes nothing";
    c = parse_command("/set  temperature\t0 ", s);
    ASSERT_EQ(c.kind, Command::Configure);
    EXPECT_EQ(c.settings.sampling.temperature, 0.0f);
    c = parse_command("/set n -1", s);
    ASSERT_EQ(c.kind, Command::Configure);
    EXPECT_EQ(c.settings.max_tokens, -1);
    c = parse_command("/set seed 18446744073709551615", s);
    ASSERT_EQ(c.kind, Command::Configure);
    EXPECT_EQ(c.settings.sampling.seed, 18446744073709551615ull);

    const std::vector<std::pair<std::string, std::string>> refused = {
        {"/set temp", "usage: /set NAME VALUE"},
        {"/set temp 1 2", "usage: /set NAME VALUE"},
        {"/set temp -1", "error: temp must be 0 or a number >= 3e-39, got '-1'"},
        {"/set temp 1e-39", "error: temp must be 0 or a number >= 3e-39, got '1e-39'"},
        {"/set top-p 1.5", "error: top-p must be a number in [0, 1], got '1.5'"},
        {"/set top-k 2.5", "error: top-k must be an integer in [0, 2147483647], got '2.5'"},
        {"/set n -2", "error: n must be an integer >= -1 (-1 = no limit), got '-2'"},
        {"/set n 3x", "error: n must be an integer >= -1 (-1 = no limit), got '3x'"},
        {"/set n 99999999999", "error: n must be an integer >= -1 (-1 = no limit), got '99999999999'"},
        {"/set seed -1", "error: seed must be a non-negative integer, got '-1'"},
    };
    for (const auto& [line, note] : refused) {
        c = parse_command(line, s);
        EXPECT_EQ(c.kind, Command::Print) << line;
        EXPECT_EQ(c.note, note) << line;
    }
    c = parse_command("/set bogus 1", s);
    EXPECT_EQ(c.kind, Command::Print);
    EXPECT_EQ(c.note.rfind("error: unknown setting 'bogus'", 0), 0u) << c.note;
}

// The loop applies a Configure command's settings without another check: each must be valid for the library's
// sampler. Edge values of every setting: each is either refused by the parser or accepted by the sampler.
TEST(ChatCommand, EverySettingTheParserLetsThroughTheSamplerAccepts) {
    const std::vector<std::string> names = {"temp", "top-p", "top-k", "min-p", "presence", "frequency", "decay"};
    const std::vector<std::string> values = {"0",
                                             "-0",
                                             "1",
                                             "0.5",
                                             "1e-39",
                                             "2.9e-39",
                                             "2.94e-39",
                                             "3e-39",
                                             "3.1e-39",
                                             "1e-38",
                                             "1e-45",
                                             "1.4e-45",
                                             "1e-46",
                                             "1e-300",
                                             "3.4028234e38",
                                             "3.4028235e38",
                                             "3.5e38",
                                             "1e39",
                                             "-1",
                                             "-3.4028234e38",
                                             "-3.5e38",
                                             "nan",
                                             "inf",
                                             "-inf",
                                             "0x1p-128",
                                             "0x1p-127",
                                             "1.0000001",
                                             "2147483647",
                                             "2147483648",
                                             "4294967296",
                                             "0.9999999999",
                                             "1e-7"};
    int accepted = 0, refused = 0;
    for (const std::string& name : names) {
        for (const std::string& value : values) {
            const Command c = parse_command("/set " + name + " " + value, Settings{});
            if (c.kind == Command::Configure) {
                EXPECT_TRUE(sampler_accepts(c.settings.sampling))
                    << name << " " << value << ": let through, but " << rwkv_last_error_message();
                accepted++;
            } else {
                EXPECT_EQ(c.kind, Command::Print) << name << " " << value;
                EXPECT_EQ(c.note.rfind("error: " + name + " must be ", 0), 0u) << c.note;
                refused++;
            }
        }
    }
    EXPECT_GT(accepted, 40);
    EXPECT_GT(refused, 40);
}

// A conversation file split into its header (JSON) and the rest, and put back together with a valid checksum.
struct ConversationBytes {
    nlohmann::json header;
    std::string blobs;  // the state blobs, without the CRC

    static ConversationBytes read(const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        uint64_t n = 0;
        for (int i = 0; i < 8; i++) n |= uint64_t(uint8_t(bytes.at(12 + i))) << (8 * i);
        return {nlohmann::json::parse(bytes.substr(20, n)), bytes.substr(20 + n, bytes.size() - 24 - n)};
    }
    void write(const std::string& path) const {
        const std::string js = header.dump();
        std::string bytes(cli::chat::kConversationMagic, 8);
        for (int i = 0; i < 4; i++) bytes += char(cli::chat::kConversationVersion >> (8 * i));
        for (int i = 0; i < 8; i++) bytes += char(uint64_t(js.size()) >> (8 * i));
        bytes += js + blobs;
        const uint32_t crc = cli::chat::crc32(bytes.data(), bytes.size());
        for (int i = 0; i < 4; i++) bytes += char(crc >> (8 * i));
        std::ofstream(path, std::ios::binary) << bytes;
    }
};

TEST(ChatConversation, HeaderNumbersOfTheWrongKindOrRangeAreRefusedByName) {
    const rwkv::test::TinyModel tiny;
    const std::string dir = rwkv::test::temp_dir();
    {
        cli::chat::Session session(tiny.model(), tiny.ctx(), nullptr, "tiny", cli::chat::Settings{});
        session.save(dir + "/good.chat");
        EXPECT_EQ(session.load(dir + "/good.chat"), "") << "the file as saved loads";
    }
    const ConversationBytes good = ConversationBytes::read(dir + "/good.chat");

    using nlohmann::json;
    struct Case {
        std::vector<std::string> where;  // the path of the value in the header
        json value;
        std::string phrase;  // in the message
    };
    const std::vector<Case> cases = {
        {{"settings", "seed"}, json(6.8e36), "seed must be an integer"},
        {{"settings", "seed"}, json(-1), "seed is out of range"},
        {{"settings", "seed"}, json(1.5), "seed must be an integer"},
        {{"settings", "top_k"}, json(3000000000ll), "top_k is out of range"},
        {{"settings", "top_k"}, json(1e300), "top_k must be an integer"},
        {{"settings", "top_k"}, json("3"), "top_k must be an integer"},
        {{"settings", "max_tokens"}, json(-2147483649ll), "max_tokens is out of range"},
        {{"settings", "max_tokens"}, json(-2), "max_tokens must be >= -1"},
        {{"settings", "temperature"}, json(1e39), "temperature is out of range"},
        {{"settings", "temperature"}, json(1e-39), "temp must be 0 or a number >= 3e-39"},
        {{"settings", "top_p"}, json(nullptr), "top_p must be a number"},
        {{"settings", "presence_penalty"}, json(-1e300), "presence_penalty is out of range"},
        {{"model", "n_layer"}, json(2.0), "n_layer must be an integer"},
        {{"model", "n_params"}, json(18446744073709551615ull), "n_params is out of range"},
        {{"blobs", "0", "bytes"}, json(-1), "bytes is out of range"},
        {{"blobs", "0", "bytes"}, json(1e20), "bytes must be an integer"},
    };
    cli::chat::Session session(tiny.model(), tiny.ctx(), nullptr, "tiny", cli::chat::Settings{});
    const std::string before = cli::chat::describe_settings(session.settings());
    for (const Case& c : cases) {
        ConversationBytes bad = good;
        json* slot = &bad.header;
        for (const std::string& key : c.where) slot = slot->is_array() ? &slot->at(std::stoul(key)) : &slot->at(key);
        *slot = c.value;
        bad.write(dir + "/bad.chat");
        try {
            session.load(dir + "/bad.chat");
            ADD_FAILURE() << c.where.back() << " = " << c.value.dump() << " was accepted";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find(c.phrase), std::string::npos)
                << c.where.back() << " = " << c.value.dump() << ": " << e.what();
        }
        EXPECT_EQ(cli::chat::describe_settings(session.settings()), before);
        EXPECT_TRUE(session.transcript().empty());
    }
}

}  // namespace
