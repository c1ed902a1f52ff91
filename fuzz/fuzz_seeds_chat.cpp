// The fuzz_chat seeds, for fuzz_seeds: a separate file, compiled only when the CLI's chat sources are there.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "chat_session.h"
#include "testutil/tiny_model.h"

using Bytes = std::vector<uint8_t>;

// fuzz_chat: text lines (mode byte 0), slash commands (mode byte 2) and conversation files (mode byte 7: fuzz_chat
// appends the zero state and the CRC), the latter from Session::save on the synthetic tiny model, with a transcript
// added to its header.
void write_chat_seeds(const std::function<void(const std::string&, const Bytes&)>& write, const std::string& tmp_dir) {
    auto text = [&](const std::string& name, const std::string& t) {
        std::string s = std::string(1, '\0') + t;
        write(name, Bytes(s.begin(), s.end()));
    };
    text("line", "  Hello there!\r\n\r\n\n  How are you?  ");
    text("think", "> Let me think.\n\n</think>\n\nThe answer is 42.\n\n");
    text("split_tag", "reasoning </thi");
    text("ids", "1, 2,3 ,65535");
    auto command = [&](const std::string& name, const std::string& line) {
        std::string s = std::string(1, '\x02') + line;
        write(name, Bytes(s.begin(), s.end()));
    };
    for (const char* c : {"/quit", "/help", "/reset", "/undo", "/regen", "/stats off", "/think on", "/think hide"}) {
        std::string name = std::string("cmd_") + (c + 1);
        std::replace(name.begin(), name.end(), ' ', '_');
        command(name, c);
    }
    command("cmd_save", "/save  my chat.rwkvchat \t");
    command("cmd_set", "/set");
    command("cmd_set_temp", "/set temp 0.7");
    command("cmd_set_tiny_temp", "/set temp 3e-39");
    command("cmd_set_n", "/set n -1");
    command("cmd_set_seed", "/set seed 18446744073709551615");

    const std::string path = tmp_dir + "/conversation.tmp";
    {
        const rwkv::test::TinyModel tiny;
        cli::chat::Session session(tiny.model(), tiny.ctx(), nullptr, "fuzz", cli::chat::Settings{});
        session.save(path);
    }
    std::ifstream f(path, std::ios::binary);
    Bytes saved((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    f.close();
    std::remove(path.c_str());
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= uint64_t(saved.at(12 + i)) << (8 * i);
    auto header = nlohmann::ordered_json::parse(saved.begin() + 20, saved.begin() + 20 + std::ptrdiff_t(n));
    auto file = [&](const std::string& name, const nlohmann::ordered_json& h) {
        std::string js = h.dump();
        Bytes b{7};
        b.insert(b.end(), saved.begin(), saved.begin() + 12);
        for (int i = 0; i < 8; i++) b.push_back(static_cast<uint8_t>(uint64_t(js.size()) >> (8 * i)));
        b.insert(b.end(), js.begin(), js.end());
        write(name, b);
    };
    file("conversation_empty", header);
    header["system"] = "You are helpful.";
    header["transcript"] = nlohmann::ordered_json::array(
        {{{"user", "hi"}, {"reply", "<think>hm</think> Hello!"}, {"think", true}, {"stop", "string"}},
         {{"user", "bye"}, {"reply", "Bye."}, {"think", false}, {"stop", "length"}}});
    file("conversation_turns", header);
}
