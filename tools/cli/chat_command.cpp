#include "chat_command.h"

#include <climits>
#include <sstream>

#include "sampling_options.h"

namespace cli::chat {
namespace {

std::string_view trim_blanks(std::string_view s) {
    const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string_view::npos ? std::string_view() : s.substr(b, e - b + 1);
}

bool on_off(std::string_view arg, bool* value) {
    if (arg != "on" && arg != "off") return false;
    *value = arg == "on";
    return true;
}

Command print(std::string note) {
    Command c;
    c.kind = Command::Print;
    c.note = std::move(note);
    return c;
}

Command configure(const Settings& settings, std::string note) {
    Command c;
    c.kind = Command::Configure;
    c.settings = settings;
    c.note = std::move(note);
    return c;
}

// The reply limit of /set n: an integer >= -1 (-1 = no limit).
std::string set_max_tokens(Settings& s, const std::string& value) {
    long long v = 0;
    size_t used = 0;
    try {
        v = std::stoll(value, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (value.empty() || used != value.size() || v < -1 || v > INT_MAX)
        return "n must be an integer >= -1 (-1 = no limit), got '" + value + "'";
    s.max_tokens = int(v);
    return "";
}

// /set, /set NAME VALUE.
Command set(std::string_view arg, Settings s) {
    if (arg.empty()) return print(describe_settings(s));
    std::istringstream words{std::string(arg)};
    std::string name, value, extra;
    words >> name >> value;
    if (value.empty() || (words >> extra)) return print("usage: /set NAME VALUE");
    const std::string err = name == "n" || name == "max-tokens" || name == "n-predict"
                                ? set_max_tokens(s, value)
                                : set_sampling_value(s.sampling, name, value);
    if (!err.empty()) return print("error: " + err);
    return configure(s, describe_settings(s));
}

}  // namespace

std::string describe_settings(const Settings& settings) {
    return "[" + describe_sampling(settings.sampling) + " | n " + std::to_string(settings.max_tokens) + "]";
}

Command parse_command(std::string_view line, const Settings& current) {
    std::string_view cmd = line, arg;
    if (size_t sp = line.find_first_of(" \t"); sp != std::string_view::npos) {
        cmd = line.substr(0, sp);
        arg = trim_blanks(line.substr(sp + 1));
    }
    Command c;
    Settings s = current;
    if (cmd == "/quit" || cmd == "/exit") {
        c.kind = Command::Quit;
    } else if (cmd == "/help") {
        c.kind = Command::Help;
    } else if (cmd == "/reset") {
        c.kind = Command::Reset;
    } else if (cmd == "/undo") {
        c.kind = Command::Undo;
    } else if (cmd == "/regen") {
        c.kind = Command::Regen;
    } else if (cmd == "/save" || cmd == "/load") {
        if (arg.empty()) return print("usage: " + std::string(cmd) + " FILE");
        c.kind = cmd == "/save" ? Command::Save : Command::Load;
        c.path = arg;
    } else if (cmd == "/think") {
        if (arg == "show" || arg == "hide")
            s.show_think = arg == "show";
        else if (!on_off(arg, &s.think))
            return print("usage: /think on|off|show|hide");
        return configure(s, std::string("[think ") + (s.think ? "on" : "off") + ", reasoning " +
                                (s.show_think ? "shown" : "hidden") + "]");
    } else if (cmd == "/stats") {
        if (!on_off(arg, &s.stats)) return print("usage: /stats on|off");
        return configure(s, "");
    } else if (cmd == "/set") {
        return set(arg, s);
    } else {
        c.kind = Command::Help;
        c.note = "unknown command '" + std::string(cmd) + "'";
    }
    return c;
}

}  // namespace cli::chat
