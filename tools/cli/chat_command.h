// The slash commands of `rwkv-cli chat` (docs/cli.md), parsed apart from the terminal loop (cmd_chat.cpp) so that
// the unit tests and fuzz_chat reach them. Parsing changes nothing: it says what to do, and for the commands that
// change settings, the settings to apply (already checked).
#pragma once

#include <string>
#include <string_view>

#include "chat_session.h"

namespace cli::chat {

struct Command {
    enum Kind {
        Quit,       // /quit, /exit
        Help,       // /help, or an unknown command (`note` says which)
        Reset,      // /reset
        Undo,       // /undo
        Regen,      // /regen
        Save,       // /save FILE
        Load,       // /load FILE
        Configure,  // /think, /stats, /set NAME VALUE: apply `settings`, then print `note` when not empty
        Print,      // /set alone, or a usage or value error: print `note`, change nothing
    } kind = Print;
    std::string path;   // Save, Load: the rest of the line without its outer blanks, never empty
    Settings settings;  // Configure: the settings after the command; Session::set_settings accepts them
    std::string note;   // what to tell the user ("usage: /save FILE", "[think on, reasoning shown]", ...)
};

// A line is a command when it starts with "/" but not with "//".
inline bool is_command(std::string_view line) {
    return !line.empty() && line[0] == '/' && line.substr(0, 2) != "//";
}

// The message a line that is not a command sends: "//text" sends "/text".
inline std::string_view message_of(std::string_view line) {
    return line.substr(0, 2) == "//" ? line.substr(1) : line;
}

// Parses a command line (is_command(line)) against the current settings. Never throws.
Command parse_command(std::string_view line, const Settings& current);

// "[temp 1 | top-p 0.3 | ... | n 4096]": the sampling settings and the reply limit, as /set shows them.
std::string describe_settings(const Settings& settings);

}  // namespace cli::chat
