// The slash-command parser of `rwkv-cli chat` (tools/cli/chat_command.h), in process: every command, its usage
// errors, and the promise the terminal loop relies on: settings a command returns are accepted by the library's
// sampler, for every value the parser lets through (edge values of each setting included).
#include "chat_command.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rwkv/rwkv.h"

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

}  // namespace
